/**
 * A random key/value workload for linearizability runs: many clients, each
 * one operation at a time, on a few keys, with values unique per write; every
 * operation recorded by a {@linkcode HistoryRecorder}. Bounded by a count of
 * operations, not by time.
 *
 * @module
 */

import { deadline } from "../../core/abort.ts";
import type { Store } from "../../core/types.ts";
import {
  type AtomicWrite,
  HistoryRecorder,
  type KvInput,
  type KvOperation,
  type KvOutcome,
  type SeenPair,
} from "./history.ts";

/** What one client can do; each workload client has its own. */
export interface KvClient {
  get(key: string): Promise<SeenPair | null>;
  /** Resolves the new `lastIndex`. */
  put(key: string, value: string): Promise<bigint>;
  delete(key: string): Promise<void>;
  /** `atomicPut` from `expected` (`null`: create); resolves the new index. */
  cas(key: string, value: string, expected: bigint | null): Promise<bigint>;
  /** `atomicDelete` from `expected`; absent when the client cannot. */
  casDelete?(key: string, expected: bigint): Promise<void>;
  /** `atomic()` commit; absent when the client cannot. */
  atomic?(
    checks: { key: string; lastIndex: bigint | null }[],
    writes: AtomicWrite[],
  ): Promise<{ ok: true; lastIndex: bigint } | { ok: false }>;
}

/**
 * A client over a {@linkcode Store}. With `timeoutMs`, every call gets a
 * signal that aborts after that long (the outcome is then unknown).
 */
export function storeClient(store: Store, timeoutMs?: number): KvClient {
  const text = new TextDecoder();
  const bounded = async <T>(
    run: (signal: AbortSignal | undefined) => Promise<T>,
  ): Promise<T> => {
    if (timeoutMs === undefined) return await run(undefined);
    const limit = deadline(timeoutMs);
    try {
      return await run(limit.signal);
    } finally {
      limit.dispose();
    }
  };
  const previous = (key: string, lastIndex: bigint) => ({
    key,
    value: new Uint8Array(),
    lastIndex,
  });
  return {
    get: (key) =>
      bounded(async (signal) => {
        const pair = await store.get(key, { signal });
        return pair &&
          { value: text.decode(pair.value), lastIndex: pair.lastIndex };
      }),
    put: (key, value) => bounded((signal) => store.put(key, value, { signal })),
    delete: (key) => bounded((signal) => store.delete(key, { signal })),
    cas: (key, value, expected) =>
      bounded(async (signal) =>
        (await store.atomicPut(
          key,
          value,
          expected === null ? null : previous(key, expected),
          { signal },
        )).lastIndex
      ),
    casDelete: (key, expected) =>
      bounded((signal) =>
        store.atomicDelete(key, previous(key, expected), { signal })
      ),
    atomic: (checks, writes) =>
      bounded((signal) => {
        const operation = store.atomic();
        for (const check of checks) operation.check(check.key, check.lastIndex);
        for (const write of writes) {
          if (write.type === "put") operation.put(write.key, write.value);
          else operation.delete(write.key);
        }
        return operation.commit({ signal });
      }),
  };
}

/** A small seeded random source (mulberry32), so runs can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Options of {@linkcode runWorkload}. */
export interface WorkloadOptions {
  /** One client per workload client (at least 8 in the backend runs). */
  clients: KvClient[];
  /** The keys (3–5). */
  keys: string[];
  /** How many operations in all. */
  operations: number;
  /** The random seed. */
  seed: number;
  /** Two keys that `atomic()` commits write together (when clients can). */
  atomicKeys?: [string, string];
  /** Called before each operation with how many were invoked before it. */
  beforeOperation?: (invoked: number) => void | Promise<void>;
  /**
   * After an unknown outcome, the client waits this long (default 0), twice
   * as long after each further unknown one in a row, up to 8 times as long:
   * a client backs off from a server it cannot reach, as real ones do. So a
   * fault leaves a few unknown writes per client, however fast calls fail
   * (a cut that refuses connections at once left 56 on DynamoDB, and the
   * checker ran out of its step budget on them).
   */
  pauseAfterUnknownMs?: number;
}

/** Runs the workload; resolves the recorded history. */
export async function runWorkload(
  options: WorkloadOptions,
): Promise<KvOperation[]> {
  const recorder = new HistoryRecorder();
  const random = seededRandom(options.seed);
  const pick = <T>(items: readonly T[]): T =>
    items[Math.floor(random() * items.length)];
  let invoked = 0;
  const runClient = async (client: KvClient, index: number) => {
    // What this client last saw of each key: its version, or absent.
    const seen = new Map<string, bigint | null>();
    let generation = 0;
    let writes = 0;
    // Unknown outcomes in a row, for the back-off after them.
    let unknownInRow = 0;
    while (invoked < options.operations) {
      await options.beforeOperation?.(invoked);
      if (invoked >= options.operations) break;
      invoked++;
      const name = `c${index}${generation ? `.${generation}` : ""}`;
      const value = () => `${name}-${++writes}`;
      const key = pick(options.keys);
      const roll = random();
      let input: KvInput;
      let run: () => Promise<KvOutcome>;
      const known = seen.get(key);
      if (roll < 0.35) {
        input = { type: "get", key };
        run = async () => {
          const read = await client.get(key);
          seen.set(key, read?.lastIndex ?? null);
          return { status: "ok", read };
        };
      } else if (roll < 0.55) {
        const v = value();
        input = { type: "put", key, value: v };
        run = async () => {
          const lastIndex = await client.put(key, v);
          seen.set(key, lastIndex);
          return { status: "ok", lastIndex };
        };
      } else if (roll < 0.62) {
        input = { type: "delete", key };
        run = async () => {
          await client.delete(key);
          seen.set(key, null);
          return { status: "ok" };
        };
      } else if (
        roll < 0.70 && client.casDelete && known !== undefined &&
        known !== null
      ) {
        input = { type: "casDelete", key, expected: known };
        run = async () => {
          await client.casDelete!(key, known);
          seen.set(key, null);
          return { status: "ok" };
        };
      } else if (roll >= 0.85 && client.atomic && options.atomicKeys) {
        const [a, b] = options.atomicKeys;
        const checks = [a, b].map((k) => ({
          key: k,
          lastIndex: seen.get(k) ?? null,
        }));
        const writes: AtomicWrite[] = random() < 0.75
          ? [{ type: "put", key: a, value: value() }, {
            type: "put",
            key: b,
            value: value(),
          }]
          : [{ type: "put", key: pick([a, b]), value: value() }];
        if (writes.length === 1) {
          writes.push({ type: "delete", key: writes[0].key === a ? b : a });
        }
        input = { type: "atomic", checks, writes };
        run = async () => {
          const result = await client.atomic!(checks, writes);
          if (!result.ok) return { status: "failed", reason: "checkFailed" };
          // The new versions are not reported per key: read them again.
          for (const write of writes) seen.delete(write.key);
          return { status: "ok", lastIndex: result.lastIndex };
        };
      } else {
        const expected = known === undefined ? null : known;
        const v = value();
        input = { type: "cas", key, value: v, expected };
        run = async () => {
          const lastIndex = await client.cas(key, v, expected);
          seen.set(key, lastIndex);
          return { status: "ok", lastIndex };
        };
      }
      const outcome = await recorder.record(name, input, run);
      if (outcome.status === "unknown") {
        // The open operation belongs to the old name; carry on as a new one.
        generation++;
        seen.clear();
        if (options.pauseAfterUnknownMs) {
          const pause = options.pauseAfterUnknownMs *
            2 ** Math.min(unknownInRow, 3);
          await new Promise((resolve) => setTimeout(resolve, pause));
        }
        unknownInRow++;
        continue;
      }
      unknownInRow = 0;
      if (outcome.status === "failed") seen.delete(key);
    }
  };
  await Promise.all(options.clients.map(runClient));
  return [...recorder.operations];
}

/** Counts of a history's outcomes, for reports. */
export function tally(history: readonly KvOperation[]): {
  ok: number;
  failed: number;
  unknown: number;
} {
  const count = { ok: 0, failed: 0, unknown: 0 };
  for (const operation of history) count[operation.outcome.status]++;
  return count;
}
