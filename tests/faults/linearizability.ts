/**
 * A linearizability checker for recorded key/value histories
 * ({@linkcode KvOperation}s from `history.ts`).
 *
 * The model is one register per key: absent, or `{ value, version }`, where
 * the version is the backend's `lastIndex` as the operations reported it (a
 * put's or CAS's returned `lastIndex`, a read's pair). Versions are chosen by
 * the backend, so the model never invents one: a write whose new version was
 * not reported (an `atomic()` commit, an operation of unknown outcome) leaves
 * the version unknown until a read or a successful CAS reports it. A read
 * must see the latest write's value (and its version, once known); a CAS
 * succeeds exactly when its expected version is the current one.
 *
 * The search is Wing & Gong's, with Lowe's improvements, as in Porcupine:
 * the calls and returns in time order in a linked list; depth-first, it
 * linearizes a call whose predecessors allow it, lifting it and its return
 * out of the list, and backtracks when it meets a return whose call could not
 * be linearized; every (set of linearized operations, model state) it has
 * been at is remembered and never explored twice.
 *
 * The history is split into independent partitions first: one per key, or
 * one per group of keys that some `atomic()` touched together, so a
 * multi-key commit is checked jointly with every operation on its keys.
 *
 * Unknown outcomes: an operation that timed out completes at `Infinity`, so
 * it may be linearized anywhere after its invocation, including after
 * everything else, which is the same as never taking effect. An unknown read
 * says nothing and is dropped, as is an operation rejected as invalid.
 *
 * @module
 */

import {
  type AtomicWrite,
  describeOperation,
  type KvInput,
  type KvOperation,
} from "./history.ts";

/** One key's state in the model: absent, or a value at a version. */
export type KeyState = null | { value: string; version: string | null };

/** What the check of one partition found. */
export interface PartitionResult {
  /** The keys of the partition. */
  keys: string[];
  /** How many operations were checked in it. */
  operations: number;
  /** `true`/`false`, or `null` when the step budget ran out first. */
  linearizable: boolean | null;
  /** Search steps taken. */
  steps: number;
  /** Why it is not linearizable, when it is not. */
  explanation?: string;
}

/** What the check of a whole history found. */
export interface CheckResult {
  /** All partitions linearizable (`null`: some ran out of budget). */
  linearizable: boolean | null;
  partitions: PartitionResult[];
  /** Operations checked (after dropping unknown reads and invalid calls). */
  operations: number;
  /** Operations of unknown outcome among them. */
  unknown: number;
  /** How long the check took, in milliseconds (for reports only). */
  ms: number;
}

/** Options of {@linkcode checkLinearizable}. */
export interface CheckOptions {
  /** Search steps allowed per partition (default 5 000 000). */
  maxSteps?: number;
}

/** The keys an operation reads or writes. */
function keysOf(input: KvInput): string[] {
  if (input.type !== "atomic") return [input.key];
  return [
    ...new Set([
      ...input.checks.map((check) => check.key),
      ...input.writes.map((write) => write.key),
    ]),
  ];
}

type Verdict = "pass" | "fail" | "maybe";

/** Does `state` have version `expected` (`null`: absent)? */
function versionCheck(state: KeyState, expected: bigint | null): Verdict {
  if (expected === null) return state === null ? "pass" : "fail";
  if (state === null) return "fail";
  if (state.version === null) return "maybe";
  return state.version === String(expected) ? "pass" : "fail";
}

/** `state` with its version learnt to be `version`. */
function learn(state: KeyState, version: bigint): KeyState {
  return state && { value: state.value, version: String(version) };
}

/**
 * The states the model may be in after `operation` ran on `state` (the
 * partition's keys at `slots`); none when the operation's outcome is
 * impossible there. More than one when an unknown outcome or an unknown
 * version leaves several possible.
 */
export function step(
  state: readonly KeyState[],
  slots: ReadonlyMap<string, number>,
  operation: KvOperation,
): KeyState[][] {
  const input = operation.input;
  const outcome = operation.outcome;
  const with_ = (changes: [string, KeyState][]) => {
    const next = state.slice();
    for (const [key, value] of changes) next[slots.get(key)!] = value;
    return next;
  };
  const single = input.type === "atomic" ? null : state[slots.get(input.key)!];
  switch (input.type) {
    case "get": {
      if (outcome.status !== "ok") return [state.slice()];
      const read = outcome.read ?? null;
      if (read === null) return single === null ? [state.slice()] : [];
      if (single === null || single.value !== read.value) return [];
      if (
        single.version !== null && single.version !== String(read.lastIndex)
      ) {
        return [];
      }
      return [with_([[input.key, learn(single, read.lastIndex)]])];
    }
    case "put": {
      if (outcome.status === "failed") return [state.slice()];
      const version = outcome.status === "ok" && outcome.lastIndex !== undefined
        ? String(outcome.lastIndex)
        : null;
      return [with_([[input.key, { value: input.value, version }]])];
    }
    case "delete":
      if (outcome.status === "failed") return [state.slice()];
      return [with_([[input.key, null]])];
    case "cas":
    case "casDelete": {
      const verdict = versionCheck(single, input.expected);
      const written: KeyState = input.type === "casDelete" ? null : {
        value: input.value,
        version: outcome.status === "ok" && outcome.lastIndex !== undefined
          ? String(outcome.lastIndex)
          : null,
      };
      const applied = with_([[input.key, written]]);
      if (outcome.status === "ok") return verdict === "fail" ? [] : [applied];
      if (outcome.status === "unknown") {
        if (verdict === "pass") return [applied];
        if (verdict === "fail") return [state.slice()];
        return [applied, state.slice()];
      }
      // Failed: the reason must be what the state gives.
      if (verdict === "pass") return [];
      const fine = outcome.reason === "exists"
        ? input.expected === null && single !== null
        : outcome.reason === "notFound"
        ? input.expected !== null && single === null
        : outcome.reason === "modified"
        ? input.expected !== null && single !== null
        : false;
      return fine ? [state.slice()] : [];
    }
    case "atomic": {
      const verdicts = input.checks.map((check) =>
        versionCheck(state[slots.get(check.key)!], check.lastIndex)
      );
      const verdict: Verdict = verdicts.includes("fail")
        ? "fail"
        : verdicts.includes("maybe")
        ? "maybe"
        : "pass";
      const changes: [string, KeyState][] = input.checks.map((check) => [
        check.key,
        check.lastIndex === null
          ? null
          : learn(state[slots.get(check.key)!], check.lastIndex),
      ]);
      for (const write of input.writes as AtomicWrite[]) {
        changes.push([
          write.key,
          write.type === "put" ? { value: write.value, version: null } : null,
        ]);
      }
      const applied = with_(changes);
      if (outcome.status === "ok") return verdict === "fail" ? [] : [applied];
      if (outcome.status === "unknown") {
        if (verdict === "pass") return [applied];
        if (verdict === "fail") return [state.slice()];
        return [applied, state.slice()];
      }
      if (outcome.reason !== "checkFailed") return [];
      return verdict === "pass" ? [] : [state.slice()];
    }
  }
}

function stateKey(state: readonly KeyState[]): string {
  let text = "";
  for (const key of state) {
    text += key === null
      ? "-|"
      : `${key.value.length}:${key.value}@${key.version ?? "?"}|`;
  }
  return text;
}

function describeState(keys: string[], state: readonly KeyState[]): string {
  return keys.map((key, i) => {
    const s = state[i];
    return `${key}=${s === null ? "absent" : `${s.value}@${s.version ?? "?"}`}`;
  }).join(", ");
}

interface Node {
  /** The operation's index in the partition; -1 for the head. */
  op: number;
  /** A call's return node; `null` for a return node. */
  match: Node | null;
  prev: Node | null;
  next: Node | null;
}

function lift(call: Node): void {
  call.prev!.next = call.next;
  call.next!.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next) ret.next.prev = ret.prev;
}

function unlift(call: Node): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next) ret.next.prev = ret;
  call.prev!.next = call;
  call.next!.prev = call;
}

/** Checks one partition's operations (all on `keys`). */
export function checkPartition(
  keys: string[],
  operations: readonly KvOperation[],
  maxSteps = 5_000_000,
): PartitionResult {
  const slots = new Map(keys.map((key, i) => [key, i]));
  const events: { at: number; call: boolean; op: number }[] = [];
  operations.forEach((operation, op) => {
    events.push({ at: operation.invokedAt, call: true, op });
    events.push({ at: operation.completedAt, call: false, op });
  });
  // Time order; at a tie, calls first (the operations overlap).
  events.sort((a, b) =>
    a.at - b.at || (a.call === b.call ? 0 : a.call ? -1 : 1)
  );
  const head: Node = { op: -1, match: null, prev: null, next: null };
  const calls = new Map<number, Node>();
  let last = head;
  for (const event of events) {
    const node: Node = { op: event.op, match: null, prev: last, next: null };
    // A call's `match` is its return, which comes later in time order.
    if (event.call) calls.set(event.op, node);
    else calls.get(event.op)!.match = node;
    last.next = node;
    last = node;
  }
  const words = new Uint32Array(Math.ceil(operations.length / 32) || 1);
  const bits = () => words.join(",");
  const seen = new Set<string>();
  const stack: { node: Node; state: KeyState[]; alternative: number }[] = [];
  let state: KeyState[] = keys.map(() => null);
  let entry: Node | null = head.next;
  let resume: { node: Node; alternative: number } | null = null;
  let steps = 0;
  let best: { prefix: number[]; blocked: number; state: KeyState[] } | null =
    null;
  const result = (linearizable: boolean | null): PartitionResult => ({
    keys,
    operations: operations.length,
    linearizable,
    steps,
  });
  while (head.next !== null) {
    if (++steps > maxSteps) return result(null);
    const node: Node = entry!;
    if (node.match !== null) {
      const operation = operations[node.op];
      const candidates = step(state, slots, operation);
      let alternative = resume?.node === node ? resume.alternative : 0;
      resume = null;
      let moved = false;
      words[node.op >> 5] |= 1 << (node.op & 31);
      for (; alternative < candidates.length; alternative++) {
        const key = `${bits()}#${stateKey(candidates[alternative])}`;
        if (seen.has(key)) continue;
        seen.add(key);
        stack.push({ node, state, alternative });
        state = candidates[alternative];
        lift(node);
        entry = head.next;
        moved = true;
        break;
      }
      if (!moved) {
        words[node.op >> 5] &= ~(1 << (node.op & 31));
        entry = node.next;
      }
    } else {
      if (!best || stack.length > best.prefix.length) {
        best = {
          prefix: stack.map((s) => s.node.op),
          blocked: node.op,
          state,
        };
      }
      const top = stack.pop();
      if (!top) {
        const failed = result(false);
        failed.explanation = explain(keys, operations, best!);
        return failed;
      }
      state = top.state;
      words[top.node.op >> 5] &= ~(1 << (top.node.op & 31));
      unlift(top.node);
      resume = { node: top.node, alternative: top.alternative + 1 };
      entry = top.node;
    }
  }
  return result(true);
}

function explain(
  keys: string[],
  operations: readonly KvOperation[],
  best: { prefix: number[]; blocked: number; state: KeyState[] },
): string {
  const tail = best.prefix.slice(-6).map((op) =>
    `    ${describeOperation(operations[op])}`
  );
  return [
    `keys ${keys.join(", ")}: not linearizable. The longest linearizable ` +
    `prefix has ${best.prefix.length} of ${operations.length} operations, ` +
    `ending with:`,
    ...tail,
    `  leaving ${describeState(keys, best.state)}; then this operation fits ` +
    `no order:`,
    `    ${describeOperation(operations[best.blocked])}`,
  ].join("\n");
}

/**
 * Checks a whole history: drops what constrains nothing, splits it into
 * partitions of keys touched together, checks each.
 */
export function checkLinearizable(
  history: readonly KvOperation[],
  options: CheckOptions = {},
): CheckResult {
  const started = performance.now();
  const operations = history.filter((operation) =>
    !(operation.input.type === "get" &&
      operation.outcome.status === "unknown") &&
    !(operation.outcome.status === "failed" &&
      operation.outcome.reason === "invalid")
  );
  // Union-find over keys: an atomic() joins the keys it touches.
  const parent = new Map<string, string>();
  const find = (key: string): string => {
    let root = key;
    while (parent.get(root) !== root) root = parent.get(root)!;
    parent.set(key, root);
    return root;
  };
  for (const operation of operations) {
    const keys = keysOf(operation.input);
    for (const key of keys) if (!parent.has(key)) parent.set(key, key);
    for (const key of keys.slice(1)) parent.set(find(key), find(keys[0]));
  }
  const groups = new Map<string, { keys: Set<string>; ops: KvOperation[] }>();
  for (const key of parent.keys()) {
    const root = find(key);
    if (!groups.has(root)) groups.set(root, { keys: new Set(), ops: [] });
    groups.get(root)!.keys.add(key);
  }
  for (const operation of operations) {
    groups.get(find(keysOf(operation.input)[0]))!.ops.push(operation);
  }
  const partitions = [...groups.values()].map((group) =>
    checkPartition([...group.keys].sort(), group.ops, options.maxSteps)
  );
  const verdicts = partitions.map((p) => p.linearizable);
  return {
    linearizable: verdicts.includes(false)
      ? false
      : verdicts.includes(null)
      ? null
      : true,
    partitions,
    operations: operations.length,
    unknown: operations.filter((op) => op.outcome.status === "unknown").length,
    ms: performance.now() - started,
  };
}

/** The explanations of a check's failures, or a budget note; `""` if none. */
export function describeResult(result: CheckResult): string {
  return result.partitions.map((p) =>
    p.linearizable === false
      ? p.explanation!
      : p.linearizable === null
      ? `keys ${p.keys.join(", ")}: step budget ran out after ${p.steps} steps`
      : ""
  ).filter(Boolean).join("\n");
}
