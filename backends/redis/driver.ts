/**
 * The Redis driver: reads, writes, trees and atomic commits over the command
 * connection (one server, or a cluster's client, which routes each command
 * to the master of its hash slot); watches and locks over the store's
 * notifications.
 *
 * On a cluster a command or script may only take names of one hash slot:
 * batches of keys are split by slot, trees are scanned on every master, and
 * an `atomic()` over keys of several slots is refused before any I/O, and so
 * is a fenced commit whose lock lies in another slot than its keys (its
 * record could not be checked in the commit's script).
 *
 * @module
 */

import type {
  AtomicStep,
  CommitOutcome,
  Driver,
  DriverCommitOptions,
  DriverLockOptions,
  DriverReadOptions,
  DriverSignalOptions,
  DriverTryLockOptions,
  DriverWriteOptions,
  Entry,
  KeySink,
  LockLease,
  TreeSink,
} from "../../core/driver.ts";
import { delay } from "../../core/abort.ts";
import { InvalidArgumentError, StoreError } from "../../core/errors.ts";
import { translating } from "../../core/translate.ts";
import type { StoreLimits } from "../../core/types.ts";
import { digest, readEntries, toBuffer, withCompanions } from "./entries.ts";
import { isConnectionClosed, translateError } from "./errors.ts";
import { acquireLock, type LockFence, lockFence, tryLock } from "./lock.ts";
import {
  companionsPattern,
  counterKey,
  decodeName,
  isStoreKey,
  keyOfCompanion,
  startsWithPattern,
  versionKey,
} from "./names.ts";
import { Notifications } from "./notifications.ts";
import { COMMIT, PRUNE, type ScriptArg } from "./scripts.ts";
import { keySlot } from "./slots.ts";
import type { Topology } from "./topology.ts";
import { watchKey, type WatchSource, watchTree } from "./watch.ts";

/**
 * What a Redis store accepts.
 */
export const REDIS_LIMITS: StoreLimits = Object.freeze({
  // Redis takes keys up to 512 MiB, but a key also travels in every
  // notification channel name and SCAN reply, and its bookkeeping names are
  // a few bytes longer: 64 KiB is far above any path and cheap to move.
  maxKeyBytes: 64 * 1024,
  // Redis takes strings up to 512 MiB (proto-max-bulk-len), but reads and
  // writes pass the value through Lua, which costs the server about 3 ms per
  // MiB while it serves no one else (measured on Redis 7.0): a 16 MiB value
  // holds it for about 50 ms.
  maxValueBytes: 16 * 1024 * 1024,
  // Reads see a TTL to the millisecond (Redis checks it on every access) and
  // watches and lock waiters learn the expiry time from PTTL, so only
  // network and timer delays remain.
  ttlGranularityMs: 100,
  // A commit is one script that blocks the server while it runs; 1024
  // writes of small values take about 3 ms of server time.
  maxAtomicOperations: 1024,
});

/**
 * Keys asked for per SCAN step: Redis's default is 10, which makes a tree
 * of thousands of keys take hundreds of round trips.
 */
const SCAN_COUNT = 1_000;

/** Scans of a cluster tried, each on the layout read again after a failure. */
const SCAN_ATTEMPTS = 4;
/** The pause before reading the layout again (a failover settling). */
const SCAN_RETRY_MS = 250;

/** Keys read per round trip by `list`. */
const READ_BATCH = 256;

/**
 * Keys deleted per `UNLINK` by `deleteTree`: one command for any tree of
 * common size, and a bounded one for huge trees.
 */
const DELETE_BATCH = 10_000;

/** The driver of one Redis store. */
export class RedisDriver implements Driver, WatchSource {
  readonly backend = "redis";
  readonly limits: StoreLimits = REDIS_LIMITS;
  readonly notifications: Notifications;
  readonly maxKeyBytes: number = REDIS_LIMITS.maxKeyBytes;
  readonly #topology: Topology;

  /**
   * @param topology The servers, with the command connection, ready.
   * @param db The database number.
   */
  constructor(topology: Topology, db: number) {
    this.#topology = topology;
    this.notifications = new Notifications(topology, db);
  }

  get(key: string, _options: DriverReadOptions): Promise<Entry | null> {
    return this.#run("get", async () => (await this.read([key]))[0]);
  }

  put(
    key: string,
    value: Uint8Array,
    options: DriverWriteOptions,
  ): Promise<bigint> {
    // The commit script answers the version it gave the key.
    return this.#run("put", async () => {
      const outcome = await this.#commit([
        { type: "put", key, value, ttl: options.ttl },
      ]);
      if (!outcome.ok) throw new StoreError("Redis refused an unchecked put");
      return outcome.lastIndex;
    });
  }

  delete(key: string, _options: DriverSignalOptions): Promise<void> {
    return this.#run("delete", async () => {
      await this.#topology.client.unlink(key, versionKey(key));
    });
  }

  async read(keys: readonly string[]): Promise<(Entry | null)[]> {
    const client = this.#topology.client;
    const batches = this.#batches(keys, READ_BATCH);
    if (batches.length === 1) return await readEntries(client, batches[0]);
    const found = new Map<string, Entry | null>();
    await Promise.all(batches.map(async (batch) => {
      const entries = await readEntries(client, batch);
      batch.forEach((key, i) => found.set(key, entries[i]));
    }));
    return keys.map((key) => found.get(key) ?? null);
  }

  list(dir: string, options?: DriverReadOptions): Promise<Entry[]> {
    return this.#run("list", () => this.#list(dir, options));
  }

  async #list(dir: string, options?: DriverReadOptions): Promise<Entry[]> {
    const reads: Promise<(Entry | null)[]>[] = [];
    const seen = new Set<string>();
    await this.#scan(startsWithPattern(dir), options, (names) => {
      const keys = this.#storeKeys(names, seen);
      for (const batch of this.#batches(keys, READ_BATCH)) {
        reads.push(readEntries(this.#topology.client, batch));
      }
    });
    const entries: Entry[] = [];
    for (const batch of await Promise.all(reads)) {
      for (const entry of batch) if (entry) entries.push(entry);
    }
    return entries;
  }

  deleteTree(
    key: string | null,
    dir: string,
    options: DriverSignalOptions,
  ): Promise<void> {
    return this.#run("deleteTree", () => this.#deleteTree(key, dir, options));
  }

  async #deleteTree(
    key: string | null,
    dir: string,
    options: DriverSignalOptions,
  ): Promise<void> {
    const client = this.#topology.client;
    // Every key first, then one UNLINK per batch: a watch of the tree hears
    // the deletion as one burst, not SCAN step by SCAN step.
    const keys = key === null ? [] : [key];
    const seen = new Set<string>();
    await this.#scan(startsWithPattern(dir), options, (names) => {
      keys.push(...this.#storeKeys(names, seen));
    });
    await Promise.all(
      this.#batches(keys, DELETE_BATCH).map((batch) =>
        client.unlink(...withCompanions(batch))
      ),
    );
    // Companions whose key another client deleted go too: the tree leaves
    // nothing behind.
    const orphans = new Set<string>();
    await this.#scan(companionsPattern(dir), options, (names) => {
      for (const raw of names) {
        const name = decodeName(raw);
        const owner = name === undefined ? undefined : keyOfCompanion(name);
        if (owner !== undefined) orphans.add(owner);
      }
    });
    await Promise.all(
      this.#batches([...orphans], DELETE_BATCH).map((batch) =>
        PRUNE.run(client, withCompanions(batch), [])
      ),
    );
  }

  commit(
    steps: readonly AtomicStep[],
    options: DriverCommitOptions,
  ): Promise<CommitOutcome> {
    return this.#run("atomic", () => this.#commit(steps, options.fences));
  }

  async #commit(
    steps: readonly AtomicStep[],
    leases: readonly LockLease[] = [],
  ): Promise<CommitOutcome> {
    const fences: LockFence[] = [];
    for (const lease of leases) {
      // The store hands over only leases of this driver; anything else
      // names no record to check, so it holds nothing.
      const fence = lockFence(lease);
      if (fence === undefined) return { ok: false, fenced: true };
      fences.push(fence);
    }
    if (this.#topology.isCluster) checkOneSlot(steps, fences);
    const keys: string[] = fences.map((fence) => fence.record);
    const checks: string[] = [];
    const writes: ScriptArg[] = [];
    for (const step of steps) {
      keys.push(counterKey(step.key), step.key, versionKey(step.key));
      if (step.type === "check") {
        checks.push(step.lastIndex === null ? "" : step.lastIndex.toString());
      } else if (step.type === "put") {
        const ttl = step.ttl === undefined ? "" : String(Math.ceil(step.ttl));
        writes.push("p", toBuffer(step.value), digest(step.value), ttl);
      } else {
        writes.push("d", "", "", "");
      }
    }
    const [applied, detail, current] = await COMMIT.run(
      this.#topology.client,
      keys,
      [
        String(checks.length),
        String(fences.length),
        ...fences.map((fence) => fence.token),
        ...checks,
        ...writes,
      ],
    ) as [number, unknown, unknown];
    if (applied === 1) return { ok: true, lastIndex: BigInt(String(detail)) };
    if (applied === -1) return { ok: false, fenced: true };
    return {
      ok: false,
      key: steps[Number(detail) - 1].key,
      current: current === null ? null : BigInt(String(current)),
    };
  }

  watchKey(key: string, sink: KeySink, signal: AbortSignal): void {
    watchKey(this, key, sink, signal);
  }

  watchTree(dir: string, sink: TreeSink, signal: AbortSignal): void {
    watchTree(this, dir, sink, signal);
  }

  lock(key: string, options: DriverLockOptions): Promise<LockLease> {
    return this.#run(
      "lock",
      () =>
        acquireLock(this.#topology.client, this.notifications, key, options),
    );
  }

  tryLock(
    key: string,
    options: DriverTryLockOptions,
  ): Promise<LockLease | null> {
    return this.#run(
      "tryLock",
      () => tryLock(this.#topology.client, key, options),
    );
  }

  // Locks are released and watches ended by now, so nothing is waiting for
  // a reply: the connections are dropped at once, without a QUIT round trip,
  // and close() settles in the same tick as the store's own work.
  close(): Promise<void> {
    this.notifications.close();
    this.#topology.close();
    return Promise.resolve();
  }

  // The same, minus the store's goodbyes, which BaseStore leaves out.
  abandon(): Promise<void> {
    return this.close();
  }

  #run<T>(op: string, call: () => Promise<T>): Promise<T> {
    return translating(
      translateError,
      { op, server: this.#topology.what },
      call,
    );
  }

  // Every name matching `pattern`, a SCAN step at a time, on every master
  // at once (each holds only the names of its own slots). A master that
  // died since the layout was learnt closes its connection: the layout is
  // read again and the scan starts over (callers drop names seen twice),
  // which after a failover finds the replica that took over.
  async #scan(
    pattern: string,
    options: DriverSignalOptions | undefined,
    found: (names: Uint8Array[]) => void,
  ): Promise<void> {
    for (let attempt = 1;; attempt++) {
      try {
        return await this.#scanMasters(pattern, options, found);
      } catch (error) {
        const retry = this.#topology.isCluster && isConnectionClosed(error) &&
          attempt < SCAN_ATTEMPTS;
        if (!retry) throw error;
        await delay(SCAN_RETRY_MS, options?.signal);
        await this.#topology.refreshed();
      }
    }
  }

  async #scanMasters(
    pattern: string,
    options: DriverSignalOptions | undefined,
    found: (names: Uint8Array[]) => void,
  ): Promise<void> {
    const masters = await this.#topology.masters();
    await Promise.all(masters.map(async (master) => {
      let cursor = "0";
      do {
        options?.signal?.throwIfAborted();
        const [next, names] = await master.scanBuffer(
          cursor,
          "MATCH",
          pattern,
          "COUNT",
          SCAN_COUNT,
        );
        cursor = next.toString();
        if (names.length > 0) found(names);
      } while (cursor !== "0");
    }));
  }

  // Keys in batches one command may take: at most `size` keys, and on a
  // cluster only keys of one hash slot.
  #batches(keys: readonly string[], size: number): string[][] {
    const batches: string[][] = [];
    for (const group of this.#topology.bySlot(keys)) {
      for (let i = 0; i < group.length; i += size) {
        batches.push(group.slice(i, i + size));
      }
    }
    return batches;
  }

  // The names that are keys of the store, each once (SCAN may repeat one).
  #storeKeys(names: readonly Uint8Array[], seen: Set<string>): string[] {
    const keys: string[] = [];
    for (const raw of names) {
      const name = decodeName(raw);
      if (name === undefined || seen.has(name)) continue;
      seen.add(name);
      if (isStoreKey(name, this.maxKeyBytes)) keys.push(name);
    }
    return keys;
  }
}

// Redis Cluster runs a script on the one node that owns its keys' slot, so
// an atomic() over several slots cannot run at all: refused before any I/O.
// A fence's record lives in its lock's slot, so a fenced commit must keep to
// that slot too; checking the record apart from the commit (a read first, or
// a second script) would let the lock change hands in between, so it is
// refused rather than checked out of the commit.
function checkOneSlot(
  steps: readonly AtomicStep[],
  fences: readonly LockFence[],
): void {
  const first = steps[0]?.key ?? fences[0]?.key;
  if (first === undefined) return;
  const slot = keySlot(first);
  const other = steps.find((step) => keySlot(step.key) !== slot);
  if (other !== undefined) {
    throw new InvalidArgumentError(
      `An atomic operation on Redis Cluster must keep to one hash slot, but ${
        JSON.stringify(first)
      } (slot ${slot}) and ${JSON.stringify(other.key)} (slot ${
        keySlot(other.key)
      }) differ: put its keys under one {hashtag}, as in "{user42}/a" and "{user42}/b" (or open the store with a prefix such as "{app}")`,
    );
  }
  const fence = fences.find((fence) => keySlot(fence.key) !== slot);
  if (fence === undefined) return;
  throw new InvalidArgumentError(
    `A fenced write on Redis Cluster must keep its lock in the hash slot of its keys (the server checks the lock in the same script, which runs on one slot), but the lock on ${
      JSON.stringify(fence.key)
    } (slot ${keySlot(fence.key)}) and ${
      JSON.stringify(first)
    } (slot ${slot}) differ: put the lock and the keys under one {hashtag}, as in "{user42}/lock" and "{user42}/data" (or open the store with a prefix such as "{app}")`,
  );
}
