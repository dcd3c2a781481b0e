/**
 * The etcd driver: the store contract over etcd's v3 API. Keys and values are
 * stored as they are, `lastIndex` is the key's mod revision, a TTL is a lease,
 * checks and writes are one transaction, watches run on one multiplexed
 * stream, locks follow etcd's recipe.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  CompareResult,
  CompareTarget,
  type ICompare,
  type IEvent,
  type IKeyValue,
  type IRangeResponse,
  type IRequestOp,
  type ITxnResponse,
} from "etcd3";
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
  KeySink,
  LockLease,
  ReplaySink,
  ScanRange,
  TreeSink,
} from "../../core/driver.ts";
import { StoreError } from "../../core/errors.ts";
import type { StoreLimits } from "../../core/types.ts";
import type { DriverEvent } from "../../core/events.ts";
import type { EtcdClient } from "./client.ts";
import { isCompacted, translateError } from "./errors.ts";
import { KeepAlives } from "./keep_alive.ts";
import { keyBytes, keyString, treeRange } from "./keyspace.ts";
import { fenceOf, type LockContext, type LockFence, takeLock } from "./lock.ts";
import { type LeaseId, TtlLeases } from "./ttl_leases.ts";
import { WatchHub } from "./watch_hub.ts";

/**
 * etcd's default `--max-request-bytes` (1.5 MiB): the largest request it
 * accepts, one put or one whole transaction.
 */
export const ETCD_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;

/**
 * What etcd adds to a transaction per operation beyond its key and value
 * (protobuf framing, the compare or range of a check, a lease id), rounded
 * up generously, for the size check made before sending it.
 */
const TXN_BYTES_PER_OPERATION = 64;

/**
 * Room in a transaction for the waiter keys its fences compare (lock keys
 * plus a lease id): 16 fences on the longest keys. Core does not count them
 * in `maxAtomicBytes`; an operation with more fenced bytes than this on top
 * of a full one is refused by etcd ("request is too large"), changing
 * nothing.
 */
const FENCE_RESERVE_BYTES = 16 * (4 * 1024 + 32);

/**
 * What the driver declares. The values come from etcd's defaults:
 * - keys: etcd sets no key limit of its own; 4 KiB keeps a key, its lock
 *   waiter key and a 1 MiB value well inside one request;
 * - values: 1 MiB, so a value and its key fit `--max-request-bytes`;
 * - TTL: see {@linkcode TTL_GRANULARITY_MS};
 * - atomic operations and keys per bulk chunk: etcd's default
 *   `--max-txn-ops` (128);
 * - bytes of an atomic operation: `--max-request-bytes`, less the framing
 *   of 128 operations and room for the waiter keys of fences (see
 *   {@linkcode FENCE_RESERVE_BYTES}).
 */
export const ETCD_LIMITS: StoreLimits = Object.freeze({
  maxKeyBytes: 4 * 1024,
  maxValueBytes: 1024 * 1024,
  ttlGranularityMs: 3_000,
  maxAtomicOperations: 128,
  maxAtomicBytes: ETCD_MAX_REQUEST_BYTES - 128 * TXN_BYTES_PER_OPERATION -
    FENCE_RESERVE_BYTES,
  maxBatchKeys: 128,
});

/** Keys per page of a `list`: large trees are read in pages at one revision. */
const LIST_PAGE_KEYS = 1_000;

/** The driver of one `EtcdStore`. */
export class EtcdDriver implements Driver {
  readonly backend = "etcd";
  readonly limits: StoreLimits = ETCD_LIMITS;
  readonly #client: EtcdClient;
  readonly #hub: WatchHub;
  readonly #keepAlives: KeepAlives;
  readonly #ttl: TtlLeases;

  constructor(client: EtcdClient) {
    this.#client = client;
    this.#hub = new WatchHub(client);
    this.#keepAlives = new KeepAlives(client);
    this.#ttl = new TtlLeases(client);
  }

  async get(key: string, options: DriverReadOptions): Promise<Entry | null> {
    const response = await this.#client.call(
      "idempotent",
      (o) =>
        this.#client.etcd.kv.range({
          key: keyBytes(key),
          serializable: !options.consistent,
        }, o),
      options.signal,
      { op: "get", key },
    );
    return response.kvs.length === 0 ? null : entryOf(response.kvs[0]);
  }

  async put(
    key: string,
    value: Uint8Array,
    options: DriverWriteOptions,
  ): Promise<bigint> {
    const lease = options.ttl === undefined
      ? "0"
      : await this.#ttl.grant(options.ttl, options.signal);
    const k = keyBytes(key);
    // The range before the put (keys only) tells which lease the key had, so
    // a lease left without keys is revoked rather than left to expire.
    const success: IRequestOp[] = [
      { request_range: { key: k, keys_only: true } },
      { request_put: { key: k, value: toBuffer(value), lease } },
    ];
    const seen = this.#client.revision;
    const response = await this.#client.call(
      "unsent",
      (o) => this.#client.etcd.kv.txn({ success }, o),
      options.signal,
      { op: "put", key },
      (o) => this.#client.etcd.kv.txn(guarded([k], seen, success), o),
    );
    if (!response.succeeded) {
      return landed(response, [{ key: k, value, lease }], seen, "put", key);
    }
    this.#ttl.released(leasesOf(response.responses[0].response_range));
    // The transaction wrote the key: its revision is the key's mod_revision.
    return BigInt(response.header.revision);
  }

  async delete(key: string, options: DriverSignalOptions): Promise<void> {
    const k = keyBytes(key);
    const success: IRequestOp[] = [
      { request_range: { key: k, keys_only: true } },
      { request_delete_range: { key: k } },
    ];
    const seen = this.#client.revision;
    const response = await this.#client.call(
      "unsent",
      (o) => this.#client.etcd.kv.txn({ success }, o),
      options.signal,
      { op: "delete", key },
      (o) => this.#client.etcd.kv.txn(guarded([k], seen, success), o),
    );
    if (!response.succeeded) {
      landed(response, [{ key: k }], seen, "delete", key);
    }
    this.#ttl.released(leasesOf(response.responses[0].response_range));
  }

  async getMany(
    keys: readonly string[],
    options: DriverReadOptions,
  ): Promise<(Entry | null)[]> {
    // One transaction of ranges: one round trip, every key at one revision.
    const response = await this.#client.call(
      "idempotent",
      (o) =>
        this.#client.etcd.kv.txn({
          success: keys.map((key) => ({
            request_range: { key: keyBytes(key) },
          })),
        }, o),
      options.signal,
      { op: "getMany" },
    );
    return response.responses.map((op) => {
      const kvs = op.response_range?.kvs ?? [];
      return kvs.length === 0 ? null : entryOf(kvs[0]);
    });
  }

  async putMany(
    writes: readonly DriverPut[],
    options: DriverSignalOptions,
  ): Promise<bigint[]> {
    // A transaction per run of writes that fits etcd's request limit (one
    // for small values), sent together; each write's revision is its txn's.
    const runs = bySize(writes);
    const indexes = await Promise.all(runs.map(async (run) => {
      const outcome = await this.commit(
        run.map(({ key, value, ttl }) => ({ type: "put", key, value, ttl })),
        { signal: options.signal },
      );
      if (!outcome.ok) throw new Error("a transaction without checks failed");
      return run.map(() => outcome.lastIndex);
    }));
    return indexes.flat();
  }

  async deleteMany(
    keys: readonly string[],
    options: DriverSignalOptions,
  ): Promise<void> {
    // One transaction; commit releases the leases left without keys.
    await this.commit(keys.map((key) => ({ type: "delete", key })), {
      signal: options.signal,
    });
  }

  async list(dir: string, options: DriverReadOptions): Promise<Entry[]> {
    return (await this.#list(dir, options.consistent, options.signal)).entries;
  }

  async scan(range: ScanRange, options: DriverReadOptions): Promise<Entry[]> {
    // One range request per page: etcd bounds it by key, limits it, and
    // leaves the values out for keysOnly. Descending order is etcd's
    // sort_order, which the server applies to the range before the limit.
    const tree = treeRange(range.dir);
    let key = tree.key;
    let end = tree.end;
    const toEnd = end.length === 1 && end[0] === 0;
    if (range.lower !== undefined) {
      const lower = range.lowerInclusive
        ? keyBytes(range.lower)
        : Buffer.concat([keyBytes(range.lower), ZERO]);
      if (Buffer.compare(lower, key) > 0) key = lower;
    }
    if (range.upper !== undefined) {
      const upper = keyBytes(range.upper);
      if (toEnd || Buffer.compare(upper, end) < 0) end = upper;
    }
    if (!(toEnd && end === tree.end) && Buffer.compare(key, end) >= 0) {
      return [];
    }
    const page: IRangeResponse = await this.#client.call(
      "idempotent",
      (o) =>
        this.#client.etcd.kv.range({
          key,
          range_end: end,
          limit: range.limit,
          sort_order: range.reverse ? "Descend" : "Ascend",
          sort_target: "Key",
          keys_only: range.keysOnly,
          serializable: !options.consistent,
        }, o),
      options.signal,
      { op: "scan", key: range.dir },
    );
    const entries = page.kvs.map(entryOf);
    // etcd reports a key's lease, not when it ends: a scan (what dump and
    // copy read) asks the page's leases, so a key's TTL goes with it.
    if (!range.keysOnly && page.kvs.some((kv) => kv.lease !== "0")) {
      const ends = await this.#ttl.expiries(
        page.kvs.map((kv) => kv.lease),
        options.signal,
      );
      page.kvs.forEach((kv, i) => {
        const end = ends.get(kv.lease);
        if (end !== undefined) entries[i].expiresAt = end;
      });
    }
    return entries;
  }

  async deleteTree(
    key: string | null,
    dir: string,
    options: DriverSignalOptions,
  ): Promise<void> {
    // One transaction, any number of keys: etcd deletes a whole range in one
    // operation. The leases of deleted keys with a TTL expire on their own.
    const range = treeRange(dir);
    const success: IRequestOp[] = [{
      request_delete_range: { key: range.key, range_end: range.end },
    }];
    if (key !== null) {
      success.push({ request_delete_range: { key: keyBytes(key) } });
    }
    await this.#client.call(
      "idempotent",
      (o) => this.#client.etcd.kv.txn({ success }, o),
      options.signal,
      { op: "deleteTree", key: dir },
    );
  }

  async commit(
    steps: readonly AtomicStep[],
    options: DriverCommitOptions,
  ): Promise<CommitOutcome> {
    // The store hands over only leases of this driver; anything else names
    // no waiter key, so it cannot be held.
    const fences = (options.fences ?? []).map(fenceOf);
    if (fences.some((fence) => fence === undefined)) {
      return { ok: false, fenced: true };
    }
    const fenceKeys = fences.map((fence) => fence!);
    const checks = steps.filter((step) => step.type === "check");
    // Puts with the same TTL share a lease: it is revoked once none of its
    // keys is left.
    const leases = new Map<number, LeaseId>();
    try {
      for (const step of steps) {
        if (step.type === "put" && step.ttl !== undefined) {
          if (!leases.has(step.ttl)) {
            leases.set(
              step.ttl,
              await this.#ttl.grant(step.ttl, options.signal),
            );
          }
        }
      }
    } catch (error) {
      this.#ttl.discard(leases.values());
      throw error;
    }
    const compare: ICompare[] = checks.map((check) =>
      check.lastIndex === null
        ? {
          key: keyBytes(check.key),
          target: CompareTarget.Version,
          result: CompareResult.Equal,
          version: "0",
        }
        : {
          key: keyBytes(check.key),
          target: CompareTarget.Mod,
          result: CompareResult.Equal,
          mod_revision: check.lastIndex.toString(),
        }
    );
    // A fence is held while the holder's waiter key is there with the create
    // revision it was queued with (see fenceOf in lock.ts), compared in the
    // same transaction as the steps.
    for (const fence of fenceKeys) {
      compare.push({
        key: fence.key,
        target: CompareTarget.Create,
        result: CompareResult.Equal,
        create_revision: fence.createRevision.toString(),
      });
    }
    const success: IRequestOp[] = [];
    for (const step of steps) {
      if (step.type === "put") {
        success.push({
          request_put: {
            key: keyBytes(step.key),
            value: toBuffer(step.value),
            lease: step.ttl === undefined ? "0" : leases.get(step.ttl),
            prev_kv: true,
          },
        });
      } else if (step.type === "delete") {
        success.push({
          request_delete_range: { key: keyBytes(step.key), prev_kv: true },
        });
      }
    }
    // On a failed check, the same transaction reads the checked keys, so the
    // caller learns which check failed and why without another round trip.
    const failure: IRequestOp[] = [
      ...checks.map((check) => ({
        request_range: { key: keyBytes(check.key), keys_only: true },
      })),
      ...fenceKeys.map((fence) => ({
        request_range: { key: fence.key, keys_only: true },
      })),
    ];
    let response: ITxnResponse;
    try {
      // A transaction with checks or fences is repeated only when it surely
      // did not reach etcd: a second run after an unseen success would fail
      // its checks (or a fence, the lock released meanwhile) and report a
      // conflict that never was.
      // A blind one (writes only) that may have landed is sent again
      // guarded, as a put is.
      const blind = checks.length === 0 && fenceKeys.length === 0;
      const writes = steps.filter((step) => step.type !== "check");
      const keys = writes.map((step) => keyBytes(step.key));
      const seen = this.#client.revision;
      response = await this.#client.call(
        "unsent",
        (o) => this.#client.etcd.kv.txn({ compare, success, failure }, o),
        options.signal,
        { op: "atomic" },
        blind
          ? (o) => this.#client.etcd.kv.txn(guarded(keys, seen, success), o)
          : undefined,
      );
      if (blind && !response.succeeded) {
        const lastIndex = landed(
          response,
          writes.map((step, i) =>
            step.type === "put"
              ? {
                key: keys[i],
                value: step.value,
                lease: step.ttl === undefined ? "0" : leases.get(step.ttl)!,
              }
              : { key: keys[i] }
          ),
          seen,
          "atomic",
        );
        return { ok: true, lastIndex };
      }
    } catch (error) {
      this.#ttl.discard(leases.values());
      throw error;
    }
    if (!response.succeeded) {
      this.#ttl.discard(leases.values());
      return failedCheck(checks, fenceKeys, response);
    }
    const replaced: LeaseId[] = [];
    for (const op of response.responses) {
      const previous = op.response_put?.prev_kv
        ? [op.response_put.prev_kv]
        : op.response_delete_range?.prev_kvs ?? [];
      for (const kv of previous) replaced.push(kv.lease);
    }
    this.#ttl.released(replaced);
    return { ok: true, lastIndex: BigInt(response.header.revision) };
  }

  watchKey(key: string, sink: KeySink, signal: AbortSignal): void {
    const k = keyBytes(key);
    this.#follow(signal, sink, async () => {
      const response = await this.#client.call(
        "idempotent",
        (o) => this.#client.etcd.kv.range({ key: k }, o),
        signal,
        { op: "watch", key },
      );
      sink.state(response.kvs.length === 0 ? null : entryOf(response.kvs[0]));
      return {
        range: { key: k },
        from: BigInt(response.header.revision) + 1n,
        events: (events) => {
          for (const event of events) {
            sink.state(event.type === "Put" ? entryOf(event.kv) : null);
          }
        },
      };
    });
  }

  watchTree(dir: string, sink: TreeSink, signal: AbortSignal): void {
    this.#follow(signal, sink, async () => {
      const { entries, revision } = await this.#list(dir, true, signal);
      sink.reset(entries);
      return {
        range: treeRange(dir),
        from: revision + 1n,
        events: (events) => treeEvents(sink, events),
      };
    });
  }

  replayTree(
    dir: string,
    from: bigint,
    sink: ReplaySink,
    signal: AbortSignal,
  ): void {
    let first = true;
    this.#follow(signal, sink, async () => {
      // Only the first start replays; after a compaction the tree is read.
      const replayed = first
        ? await this.#replay(dir, from, sink, signal)
        : undefined;
      first = false;
      let revision = replayed;
      if (revision === undefined) {
        const list = await this.#list(dir, true, signal);
        sink.reset(list.entries);
        revision = list.revision;
      }
      return {
        range: treeRange(dir),
        from: revision + 1n,
        events: (events) => treeEvents(sink, events),
      };
    });
  }

  // The changes under `dir` after revision `from`, from etcd's history: the
  // tree's keys at `from` and now, walked side by side one page each (keys
  // only), give every key deleted since, and every key whose mod_revision is
  // past `from` (its value read at the same revision, a transaction per 128).
  // Each key's net change is reported once, in key order. Resolves the
  // revision reported up to, or undefined when etcd no longer has `from`
  // (compacted) or has not reached it: the caller then reads the tree.
  async #replay(
    dir: string,
    from: bigint,
    sink: ReplaySink,
    signal: AbortSignal,
  ): Promise<bigint | undefined> {
    const range = treeRange(dir);
    try {
      const now = new KeyPages(this.#client, range, undefined, signal);
      const then = from === 0n
        ? undefined
        : new KeyPages(this.#client, range, from, signal);
      let b = await now.next();
      const revision = now.revision!;
      // A revision etcd has not reached is no history of this store's.
      if (from > revision) return undefined;
      let a = await then?.next();
      sink.replaying();
      // Changes waiting for their values, in key order.
      let pending: Array<IKeyValue | string> = [];
      let puts = 0;
      const flush = async () => {
        const values = await this.#valuesAt(
          pending.filter((change) => typeof change !== "string"),
          revision,
          signal,
        );
        let i = 0;
        for (const change of pending) {
          if (typeof change === "string") sink.delete(change);
          else {
            const kv = values[i++];
            // Deleted at `revision` already? Then it is not in `now`.
            if (kv) sink.put(entryOf(kv));
          }
        }
        pending = [];
        puts = 0;
      };
      while (a !== undefined || b !== undefined) {
        const order = a === undefined
          ? 1
          : b === undefined
          ? -1
          : Buffer.compare(a.key, b.key);
        if (order < 0) {
          pending.push(keyString(a!.key));
          a = await then!.next();
        } else {
          if (BigInt(b!.mod_revision) > from) {
            pending.push(b!);
            if (++puts === this.limits.maxBatchKeys) await flush();
          }
          if (order === 0) a = await then!.next();
          b = await now.next();
        }
      }
      await flush();
      sink.replayed(revision);
      return revision;
    } catch (error) {
      if (isCompacted(error)) return undefined;
      throw error;
    }
  }

  // The entries of `kvs` (keys only) at `revision`, in one transaction.
  async #valuesAt(
    kvs: readonly IKeyValue[],
    revision: bigint,
    signal: AbortSignal,
  ): Promise<(IKeyValue | undefined)[]> {
    if (kvs.length === 0) return [];
    const response = await this.#client.call(
      "idempotent",
      (o) =>
        this.#client.etcd.kv.txn({
          success: kvs.map((kv) => ({
            request_range: { key: kv.key, revision: revision.toString() },
          })),
        }, o),
      signal,
      { op: "watch", key: keyString(kvs[0].key) },
    );
    return response.responses.map((op) => op.response_range?.kvs[0]);
  }

  async lock(key: string, options: DriverLockOptions): Promise<LockLease> {
    return (await takeLock(this.#lockContext(), key, options, true))!;
  }

  tryLock(
    key: string,
    options: DriverTryLockOptions,
  ): Promise<LockLease | null> {
    return takeLock(this.#lockContext(), key, options, false);
  }

  #lockContext(): LockContext {
    return {
      client: this.#client,
      hub: this.#hub,
      keepAlives: this.#keepAlives,
      ttlLeases: this.#ttl,
    };
  }

  observe(emit: (event: DriverEvent) => void): void {
    this.#client.emit = emit;
  }

  async close(): Promise<void> {
    this.#hub.close();
    this.#keepAlives.close();
    await this.#ttl.settle();
    this.#client.close();
  }

  abandon(): Promise<void> {
    this.#hub.close();
    this.#keepAlives.close();
    this.#client.close();
    return Promise.resolve();
  }

  // Reads the state, then watches from the next revision; when etcd has
  // compacted the history the watch needs, reads again and goes on.
  #follow(
    signal: AbortSignal,
    sink: { error(error: unknown): void; stale?(): void },
    read: () => Promise<{
      range: { key: Buffer; end?: Buffer };
      from: bigint;
      events: (events: IEvent[]) => void;
    }>,
  ): void {
    const start = async () => {
      const { range, from, events } = await read();
      if (signal.aborted) return;
      const handle = this.#hub.watch(range, from, {
        events,
        compacted: () => {
          signal.removeEventListener("abort", stop);
          start().catch(fail);
        },
        failed: fail,
        stale: () => sink.stale?.(),
      });
      const stop = () => handle.cancel();
      signal.addEventListener("abort", stop, { once: true });
    };
    const fail = (error: unknown) => {
      if (signal.aborted) return;
      sink.error(
        translateError(error, { op: "watch", server: this.#client.where }) ??
          error,
      );
    };
    start().catch(fail);
  }

  // Every entry under `dir` at one revision, in pages; a page whose revision
  // was compacted meanwhile starts the read over.
  async #list(
    dir: string,
    consistent: boolean,
    signal: AbortSignal | undefined,
  ): Promise<{ entries: Entry[]; revision: bigint }> {
    const range = treeRange(dir);
    while (true) {
      const entries: Entry[] = [];
      let from = range.key;
      let revision = "0";
      try {
        while (true) {
          const page: IRangeResponse = await this.#client.call(
            "idempotent",
            (o) =>
              this.#client.etcd.kv.range({
                key: from,
                range_end: range.end,
                limit: LIST_PAGE_KEYS,
                revision,
                serializable: !consistent,
              }, o),
            signal,
            { op: "list", key: dir },
          );
          if (revision === "0") revision = page.header.revision;
          for (const kv of page.kvs) entries.push(entryOf(kv));
          if (!page.more || page.kvs.length === 0) {
            return { entries, revision: BigInt(revision) };
          }
          // The next page starts just after the last key of this one.
          from = Buffer.concat([page.kvs[page.kvs.length - 1].key, ZERO]);
        }
      } catch (error) {
        if (!isCompacted(error)) throw error;
      }
    }
  }
}

const ZERO = Buffer.from([0]);

// A tree watch's events: one response carries whole transactions, reported
// in one run, so they fold into one snapshot.
function treeEvents(sink: TreeSink, events: IEvent[]): void {
  for (const event of events) {
    if (event.type === "Put") sink.put(entryOf(event.kv));
    else sink.delete(keyString(event.kv.key));
  }
}

/**
 * The keys of a range at one revision (the current one when not given, then
 * held for every later page), read a page at a time, keys only.
 */
class KeyPages {
  readonly #client: EtcdClient;
  readonly #end: Buffer;
  readonly #signal: AbortSignal;
  #from: Buffer;
  #page: IKeyValue[] = [];
  #at = 0;
  #more = true;
  /** The revision read at, once the first page is in. */
  revision: bigint | undefined;

  constructor(
    client: EtcdClient,
    range: { key: Buffer; end: Buffer },
    revision: bigint | undefined,
    signal: AbortSignal,
  ) {
    this.#client = client;
    this.#from = range.key;
    this.#end = range.end;
    this.revision = revision;
    this.#signal = signal;
  }

  /** The next key, or undefined after the last. */
  async next(): Promise<IKeyValue | undefined> {
    while (this.#at === this.#page.length) {
      if (!this.#more) return undefined;
      const page: IRangeResponse = await this.#client.call(
        "idempotent",
        (o) =>
          this.#client.etcd.kv.range({
            key: this.#from,
            range_end: this.#end,
            limit: LIST_PAGE_KEYS,
            revision: (this.revision ?? 0n).toString(),
            keys_only: true,
          }, o),
        this.#signal,
        { op: "watch", key: keyString(this.#from) },
      );
      this.revision ??= BigInt(page.header.revision);
      this.#page = page.kvs;
      this.#at = 0;
      this.#more = page.more && page.kvs.length > 0;
      if (page.kvs.length > 0) {
        this.#from = Buffer.concat([page.kvs[page.kvs.length - 1].key, ZERO]);
      }
    }
    return this.#page[this.#at++];
  }
}

function entryOf(kv: IKeyValue): Entry {
  return {
    key: keyString(kv.key),
    value: new Uint8Array(
      kv.value.buffer,
      kv.value.byteOffset,
      kv.value.byteLength,
    ),
    lastIndex: BigInt(kv.mod_revision),
  };
}

function toBuffer(value: Uint8Array): Buffer {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

function leasesOf(range: IRangeResponse | undefined): LeaseId[] {
  return range?.kvs.map((kv) => kv.lease) ?? [];
}

// Which fence or check failed, and the key's state then, from the ranges of
// the failure branch (one per check, then one per fence, in order). A failed
// fence is reported first: the lock is gone, whatever the checks found.
function failedCheck(
  checks: Array<{ key: string; lastIndex: bigint | null }>,
  fences: readonly LockFence[],
  response: ITxnResponse,
): CommitOutcome {
  for (let i = 0; i < fences.length; i++) {
    const kvs = response.responses[checks.length + i]?.response_range?.kvs ??
      [];
    if (
      kvs.length === 0 ||
      BigInt(kvs[0].create_revision) !== fences[i].createRevision
    ) {
      return { ok: false, fenced: true };
    }
  }
  for (let i = 0; i < checks.length; i++) {
    const kvs = response.responses[i]?.response_range?.kvs ?? [];
    const current = kvs.length === 0 ? null : BigInt(kvs[0].mod_revision);
    if (current !== checks[i].lastIndex) {
      return { ok: false, key: checks[i].key, current };
    }
  }
  return { ok: false };
}

/** Splits writes into runs that each fit one transaction's request limit. */
function bySize(writes: readonly DriverPut[]): DriverPut[][] {
  const runs: DriverPut[][] = [];
  let bytes = Infinity;
  for (const write of writes) {
    const size = Buffer.byteLength(write.key) + write.value.byteLength +
      TXN_BYTES_PER_OPERATION;
    if (bytes + size > ETCD_MAX_REQUEST_BYTES) {
      runs.push([]);
      bytes = 0;
    }
    runs.at(-1)!.push(write);
    bytes += size;
  }
  return runs;
}

/**
 * A write that may have landed is never sent again as it was: a second
 * landing gets a later revision than the first, over any write between (a
 * put another client was told had landed is lost). It goes again guarded:
 * applied only if none of its keys changed after `seen`, the highest
 * revision this client had seen when it first sent it, else reading the
 * keys. Raft commits the first attempt, if ever, before anything a later
 * leader appends, so a guard that holds means the first attempt never
 * lands; one that fails means it landed or another client wrote a key after
 * `seen`, and {@linkcode landed} tells which where it can.
 */
function guarded(
  keys: readonly Buffer[],
  seen: bigint,
  success: IRequestOp[],
): { compare: ICompare[]; success: IRequestOp[]; failure: IRequestOp[] } {
  return {
    compare: keys.map((key) => ({
      key,
      target: CompareTarget.Mod,
      result: CompareResult.Less,
      mod_revision: (seen + 1n).toString(),
    })),
    success,
    failure: keys.map((key) => ({ request_range: { key } })),
  };
}

/**
 * What a failed guard read says: the write landed if every key it put holds
 * its value and lease at one revision after `seen` (a fresh lease is this
 * write's alone) and every key it deleted is absent; its revision then.
 * Otherwise (a key written by another client since, or only deletes, which
 * leave nothing to recognise) nobody can tell, and the call fails saying so.
 */
function landed(
  response: ITxnResponse,
  writes: readonly { key: Buffer; value?: Uint8Array; lease?: LeaseId }[],
  seen: bigint,
  op: string,
  key?: string,
): bigint {
  let revision: bigint | undefined;
  const shown = writes.every((write, i) => {
    const kv = response.responses[i]?.response_range?.kvs?.[0];
    // A key it deleted is absent (which alone proves nothing).
    if (write.value === undefined) return kv === undefined;
    if (kv === undefined) return false;
    const at = BigInt(kv.mod_revision);
    if (revision !== undefined && at !== revision) return false;
    revision = at;
    return at > seen && kv.lease === write.lease &&
      Buffer.compare(kv.value, toBuffer(write.value)) === 0;
  });
  if (shown && revision !== undefined) return revision;
  throw new StoreError(
    `etcd did not answer the ${op}${
      key === undefined ? "" : ` of ${JSON.stringify(key)}`
    } and ${
      writes.length === 1 ? "its key was" : "its keys were"
    } written since: it may or may not have been applied`,
  );
}
