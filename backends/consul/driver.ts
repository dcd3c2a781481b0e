/**
 * The Consul driver: the store contract over Consul's KV store, sessions,
 * transactions and blocking queries.
 *
 * Every write goes through `/v1/txn` as a delete followed by a set (or a
 * lock) in one transaction, so that
 * - every write gets a new `ModifyIndex`, even of the same bytes (Consul
 *   skips a set that changes nothing: hashicorp/consul#5885), and
 * - a key put with a TTL becomes permanent again when it is put without
 *   one: the delete frees it from its TTL session, which would otherwise
 *   delete it when it ends.
 * A key this store holds a lock on is written with the lock's session, so
 * the holder's own writes keep the lock. A fenced commit starts with a
 * `check-session` of each fence (see `lock.ts`).
 *
 * A scan page walks the tree level by level (`scan.ts`) rather than listing
 * it; the batch calls pack many keys' operations into transactions
 * (`batch.ts`), their reads as `get-or-empty`, which unlike `get` does not
 * fail a transaction on a missing key.
 *
 * @module
 */

import { InvalidArgumentError, StoreError } from "../../core/errors.ts";
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
  ScanRange,
  TreeSink,
} from "../../core/driver.ts";
import type { DriverEvent } from "../../core/events.ts";
import { type ErrorContext, translating } from "../../core/translate.ts";
import type { StoreLimits } from "../../core/types.ts";
import { packTransactions } from "./batch.ts";
import { runBlockingLoop } from "./blocking.ts";
import { hasExpiry, toEntries, toEntry } from "./entries.ts";
import { translateError } from "./errors.ts";
import { expiryFlags } from "./expiry.ts";
import type { ConsulEntry, ConsulHttp, TxnOp } from "./http.ts";
import { consulKeyProblem } from "./keys.ts";
import { scanPage } from "./scan.ts";
import {
  acquireLock,
  base64,
  type LockContext,
  type LockFence,
  lockFence,
  tryLock,
} from "./lock.ts";
import {
  goDuration,
  keySessionTtl,
  SESSION_REAP_FACTOR,
  SESSION_REAP_MARGIN_MS,
  SESSION_TTL_MAX_MS,
} from "./sessions.ts";

/** Consul refuses a transaction of more operations (`maxTxnOps`). */
export const TXN_MAX_OPS = 64;

/**
 * The agent's `limits.txn_max_req_len` (and `kv_max_value_size`) unless
 * configured: the largest `/v1/txn` body, 512 KiB.
 */
export const TXN_MAX_REQ_LEN = 512 * 1024;

/**
 * Room kept in a one-put transaction for everything but the value: the key
 * twice (JSON-escaped, up to twice its bytes), the verbs and fields.
 */
const TXN_OVERHEAD_BYTES = 24 * 1024;

/** The longest key: Consul documents none; this keeps requests small. */
export const MAX_KEY_BYTES = 4096;

/**
 * The largest value: it travels base64-encoded (4/3 of its size) in a
 * transaction body of at most {@linkcode TXN_MAX_REQ_LEN}.
 */
export const MAX_VALUE_BYTES = Math.floor(
  (TXN_MAX_REQ_LEN - TXN_OVERHEAD_BYTES) / 4,
) * 3;

/** How long `close()` waits for session clean-ups before it gives up. */
const CLEANUP_TIMEOUT_MS = 5_000;

/** A check of `atomic()` fails with one of these messages (agent/consul/state/txn.go). */
const CHECK_FAILURES =
  /^(failed index check|failed to check index|key ".*" exists$)/s;

/**
 * A `check-session` fails with one of these: the key is gone, or locked by
 * another session or none (agent/consul/state/kvs.go, kvsCheckSessionTxn).
 */
const FENCE_FAILURES = /^(failed session check|failed to check session)/;

/** Settings the driver needs. */
export interface ConsulDriverSettings {
  /** The agent's `session_ttl_min`, in ms. */
  sessionTtlMin: number;
  /** The longest blocking query, in ms. */
  watchWait: number;
  /** How long watches and waiting locks retry a failing Consul, in ms. */
  retryTimeout: number;
}

/** What a store can do on Consul, given the agent's `session_ttl_min`. */
export function consulLimits(sessionTtlMin: number): StoreLimits {
  return Object.freeze({
    maxKeyBytes: MAX_KEY_BYTES,
    maxValueBytes: MAX_VALUE_BYTES,
    // Reads are exact (the deadline is in the key's flags); a dead lock
    // holder's session is invalidated within twice its TTL, which for a
    // short lock is twice the agent's minimum.
    ttlGranularityMs: SESSION_REAP_FACTOR * sessionTtlMin +
      SESSION_REAP_MARGIN_MS,
    // A put takes two operations (a delete and a set).
    maxAtomicOperations: TXN_MAX_OPS / 2,
    // A chunk of a bulk call is one transaction of at most two operations
    // per key (large values split it further, by body size).
    maxBatchKeys: TXN_MAX_OPS / 2,
    // A key with a TTL lives on a session, which lives at most this long.
    maxTtlMs: SESSION_TTL_MAX_MS,
  });
}

/** One Consul store's connection to its agent. */
export class ConsulDriver implements Driver {
  readonly backend = "consul";
  readonly limits: StoreLimits;
  #http: ConsulHttp;
  #settings: ConsulDriverSettings;
  #stopped = new AbortController();
  #cleanups = new Set<Promise<unknown>>();
  #held = new Map<string, string>();
  #locks: LockContext;

  constructor(http: ConsulHttp, settings: ConsulDriverSettings) {
    this.#http = http;
    this.#settings = settings;
    this.limits = consulLimits(settings.sessionTtlMin);
    this.#locks = {
      http,
      sessionTtlMin: settings.sessionTtlMin,
      waitMs: settings.watchWait,
      retryTimeout: settings.retryTimeout,
      held: this.#held,
      stopped: this.#stopped.signal,
      cleanup: (work) => this.#cleanup(work),
    };
  }

  checkKey(key: string): string | undefined {
    return consulKeyProblem(key);
  }

  get(key: string, options: DriverReadOptions): Promise<Entry | null> {
    return this.#run({ op: "get", key }, async () => {
      const { entry } = await this.#http.get(key, {
        consistent: options.consistent,
        signal: this.#signal(options.signal),
      });
      return entry ? toEntry(entry) : null;
    });
  }

  list(dir: string, options: DriverReadOptions): Promise<Entry[]> {
    return this.#run({ op: "list", key: dir }, async () => {
      const { entries } = await this.#http.list(dir, {
        consistent: options.consistent,
        signal: this.#signal(options.signal),
      });
      return toEntries(entries);
    });
  }

  scan(range: ScanRange, options: DriverReadOptions): Promise<Entry[]> {
    return this.#run({ op: "scan", key: range.dir }, () => {
      const signal = this.#signal(options.signal);
      return scanPage(range, {
        level: (prefix) =>
          this.#http.keys(prefix, { consistent: options.consistent, signal }),
        entries: async (keys) => {
          const found = await this.#readMany(keys, options.consistent, signal);
          const now = Date.now();
          return found.map((raw) => {
            const entry = raw && toEntry(raw, now);
            if (entry && range.keysOnly) entry.value = new Uint8Array();
            return entry;
          });
        },
      });
    });
  }

  getMany(
    keys: readonly string[],
    options: DriverReadOptions,
  ): Promise<(Entry | null)[]> {
    return this.#run({ op: "getMany", key: keys[0] }, async () => {
      const found = await this.#readMany(
        keys,
        options.consistent,
        this.#signal(options.signal),
      );
      const now = Date.now();
      return found.map((raw) => raw && toEntry(raw, now));
    });
  }

  putMany(
    writes: readonly DriverPut[],
    options: DriverSignalOptions,
  ): Promise<bigint[]> {
    return this.#run({ op: "putMany", key: writes[0]?.key }, async () => {
      const signal = this.#signal(options.signal);
      const now = Date.now();
      // Each write as `put` makes it: a key this store holds a lock on keeps
      // the lock's session, any other put with a TTL gets a session of its
      // own, and the old TTL session of such a key is destroyed once the
      // key is free of it.
      const fresh = writes.filter((w) =>
        w.ttl !== undefined && !this.#held.has(w.key)
      );
      const [created, previous] = await Promise.all([
        Promise.allSettled(fresh.map((w) =>
          this.#keySession(
            keySessionTtl(w.ttl!, this.#settings.sessionTtlMin),
            signal,
          )
        )),
        fresh.length === 0
          ? Promise.resolve([])
          : this.#readMany(fresh.map((w) => w.key), undefined, signal)
            .catch((error) => {
              this.#oldSessionsUnknown(error, signal);
              return fresh.map(() => null);
            }),
      ]);
      const sessions = new Map<string, string>();
      let refused: { reason: unknown } | undefined;
      created.forEach((outcome, i) => {
        if (outcome.status === "fulfilled") {
          sessions.set(fresh[i].key, outcome.value);
        } else refused ??= { reason: outcome.reason };
      });
      if (refused) {
        for (const session of sessions.values()) {
          this.#cleanup(() => this.#http.destroySession(session));
        }
        throw refused.reason;
      }
      const replaced = new Map<string, string>();
      fresh.forEach((w, i) => {
        const old = previous[i]?.Session;
        if (old && old !== sessions.get(w.key) && hasExpiry(previous[i]!)) {
          replaced.set(w.key, old);
        }
      });
      const planned = writes.map((w) => ({
        key: w.key,
        ops: [
          { Verb: "delete", Key: w.key },
          write(
            w.key,
            w.value,
            w.ttl === undefined ? 0 : expiryFlags(now + w.ttl),
            this.#held.get(w.key) ?? sessions.get(w.key),
          ),
        ],
      }));
      const indexes = new Map<string, bigint>();
      const outcomes = await Promise.allSettled(
        packTransactions(planned, (p) => p.ops, TXN_MAX_OPS, TXN_MAX_REQ_LEN)
          .map(async (group) => {
            let results: ConsulEntry[];
            try {
              results = await this.#apply(group.flatMap((p) => p.ops), signal);
            } catch (error) {
              for (const { key } of group) {
                const session = sessions.get(key);
                if (session) {
                  this.#cleanup(() => this.#http.destroySession(session));
                }
              }
              throw error;
            }
            for (const { key } of group) {
              indexes.set(key, writtenIndex(key, results));
              const old = replaced.get(key);
              if (old) this.#cleanup(() => this.#http.destroySession(old));
            }
          }),
      );
      for (const outcome of outcomes) {
        if (outcome.status === "rejected") throw outcome.reason;
      }
      return writes.map((w) => indexes.get(w.key)!);
    });
  }

  deleteMany(
    keys: readonly string[],
    options: DriverSignalOptions,
  ): Promise<void> {
    return this.#run({ op: "deleteMany", key: keys[0] }, async () => {
      const signal = this.#signal(options.signal);
      const deletes = keys.map((Key): TxnOp => ({ Verb: "delete", Key }));
      await Promise.all(
        packTransactions(deletes, (op) => [op], TXN_MAX_OPS, TXN_MAX_REQ_LEN)
          .map((ops) => this.#apply(ops, signal)),
      );
    });
  }

  put(
    key: string,
    value: Uint8Array,
    options: DriverWriteOptions,
  ): Promise<bigint> {
    return this.#run({ op: "put", key }, async () => {
      const signal = this.#signal(options.signal);
      const { ttl } = options;
      const lockSession = this.#held.get(key);
      if (ttl === undefined || lockSession !== undefined) {
        const flags = ttl === undefined ? 0 : expiryFlags(Date.now() + ttl);
        return writtenIndex(
          key,
          await this.#apply([
            { Verb: "delete", Key: key },
            write(key, value, flags, lockSession),
          ], signal),
        );
      }
      const deadline = Date.now() + ttl;
      const sessionTtl = keySessionTtl(ttl, this.#settings.sessionTtlMin);
      // The key's old TTL session, if any, is destroyed once the key is free
      // of it, rather than left to expire.
      const [session, previous] = await Promise.all([
        this.#keySession(sessionTtl, signal),
        this.#http.get(key, { signal }).then(({ entry }) => entry, (error) => {
          this.#oldSessionsUnknown(error, signal);
          return null;
        }),
      ]);
      let results: ConsulEntry[];
      try {
        results = await this.#apply([
          { Verb: "delete", Key: key },
          write(key, value, expiryFlags(deadline), session),
        ], signal);
      } catch (error) {
        this.#cleanup(() => this.#http.destroySession(session));
        throw error;
      }
      const old = previous?.Session;
      if (old && old !== session && hasExpiry(previous)) {
        this.#cleanup(() => this.#http.destroySession(old));
      }
      return writtenIndex(key, results);
    });
  }

  delete(key: string, options: DriverSignalOptions): Promise<void> {
    return this.#run({ op: "delete", key }, async () => {
      await this.#apply(
        [{ Verb: "delete", Key: key }],
        this.#signal(options.signal),
      );
    });
  }

  deleteTree(
    key: string | null,
    dir: string,
    options: DriverSignalOptions,
  ): Promise<void> {
    return this.#run({ op: "deleteTree", key: dir }, async () => {
      const ops: TxnOp[] = [{ Verb: "delete-tree", Key: dir }];
      if (key !== null) ops.unshift({ Verb: "delete", Key: key });
      await this.#apply(ops, this.#signal(options.signal));
    });
  }

  commit(
    steps: readonly AtomicStep[],
    options: DriverCommitOptions,
  ): Promise<CommitOutcome> {
    return this.#run({ op: "atomic" }, async () => {
      const signal = this.#signal(options.signal);
      const fences: LockFence[] = [];
      for (const lease of options.fences ?? []) {
        // The store hands over only leases of this driver; anything else
        // names no session to check, so it holds nothing.
        const fence = lockFence(lease);
        if (fence === undefined) return { ok: false, fenced: true };
        fences.push(fence);
      }
      const ttlPuts = steps.filter((s): s is AtomicPut =>
        s.type === "put" && s.ttl !== undefined && !this.#held.has(s.key)
      );
      const sessionTtls = ttlPuts.map((s) =>
        keySessionTtl(s.ttl!, this.#settings.sessionTtlMin)
      );
      const plan: CommitPlan = {
        now: Date.now(),
        held: this.#held,
        // Placeholders of a session ID's length, to measure the request.
        sessions: new Map(ttlPuts.map((s) => [s.key, NIL_SESSION])),
        expired: new Map(),
        fences,
      };
      // Fences and checks only: Consul serves it as a read, asked here of
      // the leader with a quorum check, so that a lock lost to another
      // holder is not seen as held by a deposed leader.
      const readOnly = fences.length > 0 &&
        steps.every((step) => step.type === "check");
      // Refuse what Consul would refuse, before any I/O.
      const size = new TextEncoder().encode(
        JSON.stringify(planCommit(steps, plan).map(({ op }) => ({ KV: op }))),
      ).length;
      if (size > TXN_MAX_REQ_LEN) {
        throw new InvalidArgumentError(
          `The atomic operation is ${size} bytes as a Consul transaction, over its limit of ${TXN_MAX_REQ_LEN} bytes`,
        );
      }
      const created = await Promise.all(
        sessionTtls.map((ttl) => this.#keySession(ttl, signal)),
      );
      ttlPuts.forEach((s, i) => plan.sessions.set(s.key, created[i]));
      let succeeded = false;
      try {
        // At most one retry per key checked absent that turns out expired.
        for (let attempt = 0; attempt <= steps.length; attempt++) {
          const planned = planCommit(steps, plan);
          const outcome = await this.#http.txn(
            planned.map(({ op }) => op),
            { signal, consistent: readOnly },
          );
          if (outcome.ok) {
            succeeded = true;
            return {
              ok: true,
              lastIndex: commitIndex(planned, outcome.results),
            };
          }
          const failures = outcome.errors.map((e) => ({
            what: e.What,
            step: planned[e.OpIndex],
          }));
          // Consul reports every failed operation; a failed fence decides,
          // also over checks that failed with it and over the lock verb of
          // a key of this store's that another session now holds.
          if (
            failures.some((f) =>
              f.step?.kind === "fence" && FENCE_FAILURES.test(f.what)
            )
          ) {
            return { ok: false, fenced: true };
          }
          // A failed check fails the commit whatever else failed with it:
          // Consul reports every failed operation, and a write may fail only
          // because of the state the check found (a key checked absent that
          // exists, still locked by its TTL session, refuses the lock verb
          // of its put with a new one).
          const checks = failures.filter((f) =>
            f.step?.kind === "check" && CHECK_FAILURES.test(f.what)
          );
          if (checks.length === 0) {
            throw new StoreError(
              `Consul refused the transaction: ${failures[0]?.what}`,
            );
          }
          // A key checked absent that Consul still has may have expired: this
          // store treats it as absent and replaces it, if it is unchanged.
          let retry = false;
          for (const { what, step } of checks) {
            if (!/ exists$/.test(what)) continue;
            const { entry } = await this.#http.get(step.op.Key, {
              consistent: true,
              signal,
            });
            if (entry && toEntry(entry) === null) {
              plan.expired.set(step.op.Key, entry.ModifyIndex);
              retry = true;
            }
          }
          if (!retry) {
            const { what, step } = checks[0];
            return /doesn't exist/.test(what)
              ? { ok: false, key: step.op.Key, current: null }
              : { ok: false, key: step.op.Key };
          }
        }
        return { ok: false };
      } finally {
        if (!succeeded) {
          for (const session of created) {
            this.#cleanup(() => this.#http.destroySession(session));
          }
        }
      }
    });
  }

  watchKey(key: string, sink: KeySink, signal: AbortSignal): void {
    // The store drops a state whose lastIndex is below one it reported, so
    // a key whose index went backwards (a snapshot restored on the servers)
    // would go silent: the watch says so instead.
    let highest = 0n;
    void runBlockingLoop({
      what: `watch of ${JSON.stringify(key)}`,
      key,
      operation: "watch",
      emit: (event) => this.#http.emit(event),
      signal: this.#signal(signal),
      giveUpMs: this.#settings.retryTimeout,
      read: async (index, signal) => {
        const { entry, index: next } = await this.#http.get(key, {
          index: index > 0n ? index : undefined,
          waitMs: index > 0n ? this.#settings.watchWait : undefined,
          signal,
        });
        return { value: entry ? toEntry(entry) : null, index: next };
      },
      onResult: (entry) => {
        if (entry && entry.lastIndex < highest) {
          sink.error(
            new StoreError(
              `The index of ${
                JSON.stringify(key)
              } went backwards in Consul (was a snapshot restored?); watch it again`,
            ),
          );
          return true;
        }
        if (entry) highest = entry.lastIndex;
        sink.state(entry);
      },
      onFailure: (error) => sink.error(error),
    });
  }

  watchTree(dir: string, sink: TreeSink, signal: AbortSignal): void {
    void runBlockingLoop({
      what: `watch of the tree ${JSON.stringify(dir)}`,
      key: dir,
      operation: "watchTree",
      emit: (event) => this.#http.emit(event),
      signal: this.#signal(signal),
      giveUpMs: this.#settings.retryTimeout,
      read: async (index, signal) => {
        const { entries, index: next } = await this.#http.list(dir, {
          index: index > 0n ? index : undefined,
          waitMs: index > 0n ? this.#settings.watchWait : undefined,
          signal,
        });
        return { value: toEntries(entries), index: next };
      },
      onResult: (entries) => sink.reset(entries),
      onFailure: (error) => sink.error(error),
    });
  }

  lock(key: string, options: DriverLockOptions): Promise<LockLease> {
    return this.#run(
      { op: "lock", key },
      () => acquireLock(this.#locks, key, options),
    );
  }

  tryLock(
    key: string,
    options: DriverTryLockOptions,
  ): Promise<LockLease | null> {
    return this.#run(
      { op: "tryLock", key },
      () => tryLock(this.#locks, key, options),
    );
  }

  observe(emit: (event: DriverEvent) => void): void {
    // The HTTP client reports the agent's return; watches, lock waiters,
    // monitors and renewals report their retries through it.
    this.#http.emit = emit;
  }

  async close(): Promise<void> {
    this.#stopped.abort();
    // Sessions of locks that were still waiting are destroyed first.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...this.#cleanups]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, CLEANUP_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    this.#http.destroy();
  }

  abandon(): Promise<void> {
    this.#stopped.abort();
    this.#http.destroy();
    return Promise.resolve();
  }

  #run<T>(context: ErrorContext, call: () => Promise<T>): Promise<T> {
    return translating(
      translateError,
      { ...context, server: this.#http.where },
      call,
    );
  }

  // Applies a write's transaction; resolves what Consul answers for its
  // set and lock verbs (deletes answer nothing).
  async #apply(ops: TxnOp[], signal: AbortSignal): Promise<ConsulEntry[]> {
    const outcome = await this.#http.txn(ops, { signal });
    if (!outcome.ok) {
      throw new StoreError(
        `Consul refused the write: ${outcome.errors[0]?.What}`,
      );
    }
    return outcome.results;
  }

  // The entries of distinct `keys` as Consul holds them (`null`: absent),
  // by read-only transactions of `get-or-empty` operations: a `get` of a
  // missing key fails its whole transaction, `get-or-empty` answers it
  // with the operation's own fields, ModifyIndex 0
  // (agent/consul/state/txn.go, hashicorp/consul#14474). `consistent` is
  // the read's mode: `?consistent`, `?stale`, or Consul's default when
  // undefined.
  async #readMany(
    keys: readonly string[],
    consistent: boolean | undefined,
    signal: AbortSignal,
  ): Promise<(ConsulEntry | null)[]> {
    const found = new Map<string, ConsulEntry>();
    const reads = keys.map((Key): TxnOp => ({ Verb: "get-or-empty", Key }));
    await Promise.all(
      packTransactions(reads, (op) => [op], TXN_MAX_OPS, TXN_MAX_REQ_LEN)
        .map(async (ops) => {
          const outcome = await this.#http.txn(ops, {
            signal,
            consistent: consistent === true,
            stale: consistent === false,
          });
          if (!outcome.ok) {
            throw new StoreError(
              `Consul refused the read: ${outcome.errors[0]?.What}`,
            );
          }
          for (const entry of outcome.results) found.set(entry.Key, entry);
        }),
    );
    return keys.map((key) => {
      const entry = found.get(key);
      // Consul leaves out of a transaction's results what the token may
      // not read, where `get` would answer 403.
      if (entry === undefined) {
        throw new StoreError(
          `Consul answered nothing for ${
            JSON.stringify(key)
          }: the token may not read it`,
        );
      }
      return entry.ModifyIndex === 0 ? null : entry;
    });
  }

  #keySession(ttl: number, signal: AbortSignal): Promise<string> {
    // No health checks: the key lives until its TTL even if the agent that
    // wrote it fails. Consul deletes it when the session ends.
    return this.#http.createSession({
      name: "valkeyrie ttl",
      ttl: goDuration(ttl),
      behavior: "delete",
      lockDelay: "0s",
      checks: [],
    }, { signal });
  }

  // A signal of its own per call: the store's is shared by every request
  // in flight, which would pile listeners on it.
  #signal(signal: AbortSignal | undefined): AbortSignal {
    return AbortSignal.any(
      signal ? [signal, this.#stopped.signal] : [this.#stopped.signal],
    );
  }

  // A clean-up nobody waits for but close(): a session it could not
  // destroy lives on until its TTL, unseen but for the event.
  #cleanup(work: () => Promise<unknown>): void {
    const promise = work().catch((error) =>
      this.#http.emit({ type: "error", source: "session", error })
    ).finally(() => this.#cleanups.delete(promise));
    this.#cleanups.add(promise);
  }

  // A put with a TTL looks up the keys' old TTL sessions, to destroy them
  // once the keys are free of them. Without the answer the put goes on, and
  // the old sessions, which hold nothing by then, live until their TTLs.
  #oldSessionsUnknown(error: unknown, signal: AbortSignal): void {
    // An aborted put fails with its own abort.
    if (signal.aborted) return;
    this.#http.emit({ type: "error", source: "session", error });
  }
}

type AtomicPut = AtomicStep & { type: "put" };

/** A session ID's shape, to measure a transaction before sessions exist. */
const NIL_SESSION = "00000000-0000-0000-0000-000000000000";

/** What a commit's operations depend on. */
interface CommitPlan {
  /** When the commit started: TTLs count from here. */
  now: number;
  /** Keys this store holds a lock on, and the lock's session. */
  held: Map<string, string>;
  /** The TTL session of each key put with a TTL. */
  sessions: Map<string, string>;
  /** Keys checked absent that Consul still has, expired, at this index. */
  expired: Map<string, number>;
  /** The leases the commit is fenced by. */
  fences: readonly LockFence[];
}

/** One operation of a commit, and what its answer and its failure mean. */
interface PlannedOp {
  op: TxnOp;
  /**
   * A failure of a check is a failed commit; of a fence, a fenced one; of a
   * write, an error.
   */
  kind: "check" | "fence" | "write";
  /** Whether Consul answers a result for it (deletes and check-not-exists do not). */
  answers: boolean;
}

// The transaction of a commit. A put deletes the key first (see the module
// comment), unless the commit checked the key absent. Fences come first: a
// `check-session` of the lock's key and the lease's session, which Consul
// answers with the entry.
function planCommit(
  steps: readonly AtomicStep[],
  plan: CommitPlan,
): PlannedOp[] {
  const planned: PlannedOp[] = plan.fences.map(({ key, session }) => ({
    op: { Verb: "check-session", Key: key, Session: session },
    kind: "fence",
    answers: true,
  }));
  const absent = new Set<string>();
  for (const step of steps) {
    const Key = step.key;
    if (step.type === "check") {
      const expired = plan.expired.get(Key);
      if (step.lastIndex !== null) {
        planned.push({
          op: { Verb: "check-index", Key, Index: Number(step.lastIndex) },
          kind: "check",
          answers: true,
        });
      } else if (expired !== undefined) {
        absent.add(Key);
        planned.push(
          {
            op: { Verb: "check-index", Key, Index: expired },
            kind: "check",
            answers: true,
          },
          { op: { Verb: "delete", Key }, kind: "write", answers: false },
        );
      } else {
        absent.add(Key);
        planned.push({
          op: { Verb: "check-not-exists", Key },
          kind: "check",
          answers: false,
        });
      }
    } else if (step.type === "put") {
      if (!absent.has(Key)) {
        planned.push({
          op: { Verb: "delete", Key },
          kind: "write",
          answers: false,
        });
      }
      const flags = step.ttl === undefined
        ? 0
        : expiryFlags(plan.now + step.ttl);
      planned.push({
        op: write(
          Key,
          step.value,
          flags,
          plan.held.get(Key) ?? plan.sessions.get(Key),
        ),
        kind: "write",
        answers: true,
      });
    } else {
      planned.push({
        op: { Verb: "delete", Key },
        kind: "write",
        answers: false,
      });
    }
  }
  return planned;
}

// The highest ModifyIndex a commit gave a key it wrote (0 when it only
// deleted: Consul answers nothing for deletes).
function commitIndex(
  planned: PlannedOp[],
  results: Array<{ ModifyIndex: number }>,
): bigint {
  let highest = 0n;
  let at = 0;
  for (const { kind, answers } of planned) {
    if (!answers) continue;
    const index = BigInt(results[at++]?.ModifyIndex ?? 0);
    if (kind === "write" && index > highest) highest = index;
  }
  return highest;
}

// The ModifyIndex Consul gave `key` in a put's transaction: its answer to
// the set (or lock) verb, which carries the entry's indexes.
function writtenIndex(key: string, results: readonly ConsulEntry[]): bigint {
  for (let i = results.length - 1; i >= 0; i--) {
    if (results[i].Key === key) return BigInt(results[i].ModifyIndex);
  }
  throw new StoreError(
    `Consul applied the put of ${
      JSON.stringify(key)
    } without answering its ModifyIndex`,
  );
}

function write(
  key: string,
  value: Uint8Array,
  flags: number,
  session: string | undefined,
): TxnOp {
  const op: TxnOp = {
    Verb: "set",
    Key: key,
    Value: base64(value),
    Flags: flags,
  };
  if (session !== undefined) {
    op.Verb = "lock";
    op.Session = session;
  }
  return op;
}
