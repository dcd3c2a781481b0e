/**
 * `valkeyrie txn`: an atomic operation read from standard input, one step per
 * line, as `etcdctl txn` reads its compares and requests:
 *
 * ```text
 * check config/mode 42        the key is still at index 42
 * check config/lock absent    the key does not exist
 * put config/mode blue-green  write the rest of the line
 * put-ttl session/x 5000 on   write with a TTL in milliseconds
 * delete config/old
 * incr stats/deploys 1        add to a counter
 * ```
 *
 * Blank lines and lines starting with `#` are skipped. Every line is checked
 * before anything is sent.
 *
 * @module
 */

import type { AtomicOperation } from "../mod.ts";

/** One parsed step. */
export type TxnStep =
  | { op: "check"; key: string; index: bigint | null }
  | { op: "put"; key: string; value: string; ttl?: number }
  | { op: "delete"; key: string }
  | { op: "incr"; key: string; delta: bigint };

/** A line that is not a step: says which and why. */
export class TxnSyntaxError extends Error {
  override name = "TxnSyntaxError";
}

/**
 * Parses the steps of a transaction.
 *
 * @param text The whole input.
 * @returns The steps, in order.
 * @throws {TxnSyntaxError} On the first line that is not a step.
 */
export function parseTxn(text: string): TxnStep[] {
  const steps: TxnStep[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "" || line.trimStart().startsWith("#")) return;
    const bad = (why: string) =>
      new TxnSyntaxError(`txn line ${i + 1}: ${why}: ${JSON.stringify(line)}`);
    const [op, key] = line.trim().split(/\s+/, 2);
    if (key === undefined) throw bad(`${op} needs a key`);
    // The value is the rest of the line after "put KEY ", spaces and all.
    const after = (words: number) =>
      line.trimStart().split(/(\s+)/).slice(words * 2).join("");
    switch (op) {
      case "check": {
        const index = after(2).trim();
        if (index === "absent") steps.push({ op, key, index: null });
        else if (/^[0-9]+$/.test(index)) {
          steps.push({ op, key, index: BigInt(index) });
        } else throw bad('check needs an index or "absent"');
        return;
      }
      case "put":
        steps.push({ op, key, value: after(2) });
        return;
      case "put-ttl": {
        const ttl = after(2).split(/\s+/, 1)[0];
        if (!/^[1-9][0-9]*$/.test(ttl)) throw bad("put-ttl needs a TTL in ms");
        steps.push({ op: "put", key, value: after(3), ttl: Number(ttl) });
        return;
      }
      case "delete":
        if (after(2).trim() !== "") throw bad("delete takes only a key");
        steps.push({ op, key });
        return;
      case "incr": {
        const delta = after(2).trim() || "1";
        if (!/^-?[0-9]+$/.test(delta)) throw bad("incr needs a whole number");
        steps.push({ op, key, delta: BigInt(delta) });
        return;
      }
      default:
        throw bad(`unknown step "${op}" (check, put, put-ttl, delete, incr)`);
    }
  });
  if (steps.length === 0) throw new TxnSyntaxError("txn read no steps");
  return steps;
}

/**
 * Adds the steps to an atomic operation.
 *
 * @param operation The operation.
 * @param steps The steps.
 * @returns The operation.
 */
export function applyTxn(
  operation: AtomicOperation,
  steps: readonly TxnStep[],
): AtomicOperation {
  for (const step of steps) {
    if (step.op === "check") operation.check(step.key, step.index);
    else if (step.op === "put") {
      operation.put(step.key, step.value, { ttl: step.ttl });
    } else if (step.op === "delete") operation.delete(step.key);
    else operation.sum(step.key, step.delta);
  }
  return operation;
}
