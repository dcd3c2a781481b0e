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
 * Batch calls are one pipeline per server (see `pipeline.ts`). A scan's page
 * walks the tree with SCAN, which has no order, keeping only the page's
 * first names in a bounded buffer, and then reads just those keys.
 *
 * @module
 */

import type {
  AtomicStep,
  CommitOutcome,
  Driver,
  DriverCommitOptions,
  DriverLockOptions,
  DriverPut,
  DriverReadOptions,
  DriverSignalOptions,
  DriverTryLockOptions,
  DriverWriteOptions,
  Entry,
  IncrementOutcome,
  KeySink,
  LockLease,
  ScanRange,
  TreeSink,
} from "../../core/driver.ts";
import { delay } from "../../core/abort.ts";
import { InvalidArgumentError, StoreError } from "../../core/errors.ts";
import { compareKeys } from "../../core/keys.ts";
import { inRange } from "../../core/scan.ts";
import { translating } from "../../core/translate.ts";
import type { StoreLimits } from "../../core/types.ts";
import type { DriverEvent } from "../../core/events.ts";
import {
  digest,
  readBatches,
  readEntries,
  toBuffer,
  withCompanions,
} from "./entries.ts";
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
import { type Call, runPipelined } from "./pipeline.ts";
import { COMMIT, INCREMENT, PRUNE, type ScriptArg } from "./scripts.ts";
import { keySlot } from "./slots.ts";
import type { Redis } from "ioredis";
import type { Replication } from "./options.ts";
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
  // A chunk of a batch call is one pipeline per server; 256 small writes
  // are one script run each, far below what delays other clients.
  maxBatchKeys: 256,
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
  readonly #replication: Replication | undefined;

  /**
   * @param topology The servers, with the command connection, ready.
   * @param db The database number.
   * @param replication Replicas every write waits for (`waitReplicas`).
   */
  constructor(topology: Topology, db: number, replication?: Replication) {
    this.#topology = topology;
    this.#replication = replication;
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
    return this.#write("put", async () => {
      const outcome = await this.#commit([
        { type: "put", key, value, ttl: options.ttl },
      ]);
      if (!outcome.ok) throw new StoreError("Redis refused an unchecked put");
      return outcome.lastIndex;
    });
  }

  delete(key: string, _options: DriverSignalOptions): Promise<void> {
    return this.#write("delete", async () => {
      await this.#topology.client.unlink(key, versionKey(key));
    });
  }

  async read(keys: readonly string[]): Promise<(Entry | null)[]> {
    const batches = this.#batches(keys, READ_BATCH);
    const read = await readBatches(this.#topology, batches);
    if (batches.length === 1) return read[0];
    const found = new Map<string, Entry | null>();
    batches.forEach((batch, b) =>
      batch.forEach((key, i) => found.set(key, read[b][i]))
    );
    return keys.map((key) => found.get(key) ?? null);
  }

  getMany(
    keys: readonly string[],
    _options: DriverReadOptions,
  ): Promise<(Entry | null)[]> {
    return this.#run("getMany", () => this.read(keys));
  }

  putMany(
    writes: readonly DriverPut[],
    _options: DriverSignalOptions,
  ): Promise<bigint[]> {
    // The script of a single put, once per key: each key gets the version a
    // put would give it, from its own slot's counter.
    return this.#write("putMany", async () => {
      const replies = await runPipelined(
        this.#topology,
        writes.map(({ key, value, ttl }) =>
          COMMIT.call(stepNames(key), ["0", "0", ...putArgs(value, ttl)])
        ),
      );
      return replies.map((reply) => {
        const [applied, version] = reply as [number, unknown];
        if (applied !== 1) {
          throw new StoreError("Redis refused an unchecked put");
        }
        return BigInt(String(version));
      });
    });
  }

  deleteMany(
    keys: readonly string[],
    _options: DriverSignalOptions,
  ): Promise<void> {
    return this.#write("deleteMany", async () => {
      await runPipelined(
        this.#topology,
        this.#batches(keys, DELETE_BATCH).map((batch) =>
          unlinkCall(withCompanions(batch))
        ),
      );
    });
  }

  scan(range: ScanRange, options: DriverReadOptions): Promise<Entry[]> {
    return this.#run("scan", () => this.#scanPage(range, options));
  }

  // SCAN has no order, so every page walks the whole tree, keeping only the
  // best `limit` names of the range seen so far, and then reads just those.
  // A name that is gone by the read (deleted, expired, not a string) leaves
  // a hole: the walk runs again for the rest of the page, from after the
  // last name read, unless it found no name beyond those it kept.
  async #scanPage(
    range: ScanRange,
    options: DriverReadOptions,
  ): Promise<Entry[]> {
    const order = range.reverse
      ? (a: string, b: string) => compareKeys(b, a)
      : compareKeys;
    const page: Entry[] = [];
    let rest = range;
    for (;;) {
      const best = new BestNames(range.limit - page.length, order);
      await this.#scan(
        startsWithPattern(sharedPrefix(rest)),
        options,
        (names) => {
          for (const raw of names) {
            const name = decodeName(raw);
            if (
              name !== undefined && inRange(rest, name) &&
              isStoreKey(name, this.maxKeyBytes)
            ) best.offer(name);
          }
        },
      );
      const names = best.take();
      for (const entry of await this.read(names)) {
        if (entry) page.push(entry);
      }
      if (page.length === range.limit || !best.overflowed) return page;
      const last = names[names.length - 1];
      rest = range.reverse
        ? { ...rest, upper: last }
        : { ...rest, lower: last, lowerInclusive: false };
    }
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
        const read = readEntries(this.#topology.client, batch);
        // Awaited once the scan is done; if the scan fails first (or the
        // store is closed under it), this read's failure must not go
        // unhandled (a CI run's abandoned lock holder failed a test so).
        read.catch(() => {});
        reads.push(read);
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
    return this.#write(
      "deleteTree",
      () => this.#deleteTree(key, dir, options),
    );
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

  increment(
    key: string,
    delta: bigint,
    options: DriverWriteOptions,
  ): Promise<IncrementOutcome> {
    // One script: INCRBY's exact 64-bit arithmetic, then the key written as
    // a put writes it (see INCREMENT).
    return this.#run("increment", async () => {
      const ttl = options.ttl === undefined
        ? ""
        : String(Math.ceil(options.ttl));
      const [applied, detail, value] = await INCREMENT.run(
        this.#topology.client,
        stepNames(key),
        [delta.toString(), ttl],
      ) as [number, unknown, unknown];
      if (applied === 1) {
        await this.#replicated("increment");
        return {
          ok: true,
          value: BigInt(String(value)),
          lastIndex: BigInt(String(detail)),
        };
      }
      return String(detail) === "overflow"
        ? { ok: false, reason: "overflow", current: BigInt(String(value)) }
        : { ok: false, reason: "not-a-counter" };
    });
  }

  commit(
    steps: readonly AtomicStep[],
    options: DriverCommitOptions,
  ): Promise<CommitOutcome> {
    return this.#run("atomic", async () => {
      const outcome = await this.#commit(steps, options.fences);
      if (outcome.ok) await this.#replicated("atomic commit");
      return outcome;
    });
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
      keys.push(...stepNames(step.key));
      if (step.type === "check") {
        checks.push(step.lastIndex === null ? "" : step.lastIndex.toString());
      } else if (step.type === "put") {
        writes.push(...putArgs(step.value, step.ttl));
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
      async () =>
        this.#replicatedLock(
          await acquireLock(
            this.#topology.client,
            this.notifications,
            key,
            options,
          ),
        ),
    );
  }

  tryLock(
    key: string,
    options: DriverTryLockOptions,
  ): Promise<LockLease | null> {
    return this.#run(
      "tryLock",
      async () =>
        this.#replicatedLock(
          await tryLock(this.#topology.client, key, options),
        ),
    );
  }

  observe(emit: (event: DriverEvent) => void): void {
    // ioredis reports its connection's errors and reconnects on its own; the
    // store's events carry them, so none is swallowed.
    const client = this.#topology.client;
    const server = this.#topology.what;
    let attempts = 0;
    client.on(
      "error",
      (error: Error) => emit({ type: "error", source: "connection", error }),
    );
    client.on(
      "node error",
      (error: Error) => emit({ type: "error", source: "cluster node", error }),
    );
    client.on("reconnecting", () => {
      attempts++;
    });
    client.on("ready", () => {
      if (attempts === 0) return;
      attempts = 0;
      emit({ type: "reconnect", server });
    });
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

  // With waitReplicas, a write is acknowledged only once that many replicas
  // have it: WAIT, sent after the write on the same connection, answers how
  // many replicas have every write the connection made so far.
  async #replicated(what: string): Promise<void> {
    const replication = this.#replication;
    if (!replication) return;
    const { replicas, timeoutMs } = replication;
    const confirmed = Number(
      await (this.#topology.client as Redis).wait(replicas, timeoutMs),
    );
    if (confirmed < replicas) {
      throw new StoreError(
        `The ${what} was applied on the Redis master, but ${confirmed} of the ${replicas} replicas waited for (waitReplicas) confirmed it within ${timeoutMs} ms: a failover before they have it loses it`,
      );
    }
  }

  // A lock taken is held only once the replicas have its record: a failover
  // to a replica without it would let another contender take it too. One
  // they do not confirm is given back. A renewal counts once they have it
  // (until then the holder's own count of its TTL runs from the renewal
  // before): one they do not confirm fails, and core tries it again while
  // the TTL lasts.
  async #replicatedLock<T extends LockLease | null>(lease: T): Promise<T> {
    if (lease === null || !this.#replication) return lease;
    try {
      await this.#replicated("lock");
    } catch (error) {
      await lease.release(false, new AbortController().signal).catch(() => {});
      throw error;
    }
    // The same lease object, so its fence (lockFence) still finds it.
    const renew = lease.renew?.bind(lease);
    if (renew === undefined) return lease;
    lease.renew = async (signal) => {
      const renewed = await renew(signal);
      if (renewed) await this.#replicated("lock renewal");
      return renewed;
    };
    return lease;
  }

  // A write that, with waitReplicas, is acknowledged only once the replicas
  // have it.
  #write<T>(op: string, call: () => Promise<T>): Promise<T> {
    return this.#run(op, async () => {
      const result = await call();
      await this.#replicated(op);
      return result;
    });
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

// The KEYS of a commit step: the counter of the key's slot, the key, and
// its companion.
function stepNames(key: string): string[] {
  return [counterKey(key), key, versionKey(key)];
}

// The ARGV of a commit's put: its value, the value's SHA-1 and its TTL.
function putArgs(value: Uint8Array, ttl: number | undefined): ScriptArg[] {
  const px = ttl === undefined ? "" : String(Math.ceil(ttl));
  return ["p", toBuffer(value), digest(value), px];
}

// What every key of the range starts with: its `dir`, or more when both
// bounds are set, since a key between two others in byte order starts with
// what they share. Cut to whole code points, so the SCAN pattern is UTF-8.
function sharedPrefix(range: ScanRange): string {
  const { dir, lower, upper } = range;
  if (lower === undefined || upper === undefined) return dir;
  let n = 0;
  while (n < lower.length && n < upper.length && lower[n] === upper[n]) n++;
  const code = lower.charCodeAt(n - 1);
  if (n > 0 && code >= 0xd800 && code < 0xdc00) n--;
  return n > dir.length ? lower.slice(0, n) : dir;
}

// `UNLINK` of names of one hash slot, as one command of a pipelined batch.
function unlinkCall(names: readonly string[]): Call {
  return {
    slotKey: names[0],
    queue: (pipeline) => pipeline.unlink(...names),
    run: (client) => client.unlink(...names),
  };
}

/**
 * The first `limit` distinct names in `order` among those offered, kept in
 * O(`limit`) memory: offers pile up to twice the limit, then are sorted and
 * cut back, and once `limit` are kept, a name past the last one kept is
 * turned away at once.
 */
class BestNames {
  readonly #limit: number;
  readonly #order: (a: string, b: string) => number;
  #names: string[] = [];
  #last: string | undefined;
  /** Whether a name was left out for being past the first `limit`. */
  overflowed = false;

  constructor(limit: number, order: (a: string, b: string) => number) {
    this.#limit = limit;
    this.#order = order;
  }

  offer(name: string): void {
    if (this.#last !== undefined) {
      const past = this.#order(name, this.#last);
      if (past >= 0) {
        // Equal is the kept name again (SCAN may repeat one).
        if (past > 0) this.overflowed = true;
        return;
      }
    }
    this.#names.push(name);
    if (this.#names.length >= 2 * this.#limit) this.#trim();
  }

  /** The names kept, in order. */
  take(): string[] {
    this.#trim();
    return this.#names;
  }

  #trim(): void {
    const sorted = this.#names.sort(this.#order);
    let kept = 0;
    for (const name of sorted) {
      if (kept > 0 && sorted[kept - 1] === name) continue;
      sorted[kept++] = name;
    }
    if (kept > this.#limit) {
      this.overflowed = true;
      kept = this.#limit;
    }
    sorted.length = kept;
    if (kept === this.#limit) this.#last = sorted[kept - 1];
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
