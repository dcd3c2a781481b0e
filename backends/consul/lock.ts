/**
 * Locks on Consul sessions (https://developer.hashicorp.com/consul/docs/dynamic-app-config/sessions):
 * a lock is the key itself, acquired with a session of behaviour `release`.
 *
 * - acquiring is a `lock` operation of `/v1/txn`, which also writes the
 *   holder's value and answers the entry, whose `ModifyIndex` is the
 *   fencing token (it is a Raft index, so it grows with every acquisition;
 *   `LockIndex` would not: it restarts when the key is deleted);
 * - a waiter blocks on the key with a blocking query and tries again only
 *   when the key is free, or after {@linkcode LOCK_RECHECK_MS};
 * - a key put with a TTL is held by its own session, but it is not a lock:
 *   locking it replaces it;
 * - while held, the lock's session is renewed every third of the lock's TTL
 *   (by the shared lock handle), and a blocking query on the key reports
 *   the loss as soon as the key is no longer held by the session;
 * - the session's `LockDelay` is 0: a dead holder's lock passes as soon as
 *   Consul invalidates its session (within twice the session TTL), and the
 *   fencing token protects against the dead holder's late writes;
 * - unlocking destroys the session, which releases the key and keeps its
 *   value; with `deleteOnUnlock` the key is deleted first, if still held;
 * - `tryLock` is one attempt of the same acquisition with a session of its
 *   own, destroyed before it resolves `null`; it never blocks on the key;
 * - a fenced commit carries a `check-session` of each fence's key and
 *   session (see {@linkcode lockFence}), which "fails the transaction if
 *   Key is not currently locked by Session"
 *   (https://developer.hashicorp.com/consul/api-docs/txn#kv-operations).
 *
 * Retries (of an attempt, a renewal, the blocking queries) are `retry`
 * events, and a monitor that cannot go on is an `error` event
 * (core/events.ts), told through the HTTP client's `emit`.
 *
 * Each lock has a session of its own, and only the lease's `renew` (called
 * by the lock handle) renews it once held, so freezing the handle's renewals
 * is all it takes for the session to expire: leases have no `pause`.
 *
 * @module
 */

import { delay, timerDelay } from "../../core/abort.ts";
import { Backoff } from "../../core/backoff.ts";
import { waitForLock } from "../../core/lock.ts";
import { StoreError } from "../../core/errors.ts";
import type {
  DriverLockOptions,
  DriverTryLockOptions,
  LockLease,
} from "../../core/driver.ts";
import { RETRY_BACKOFF, runBlockingLoop, TokenBucket } from "./blocking.ts";
import { hasExpiry } from "./entries.ts";
import { type ConsulHttp, ConsulHttpError, type TxnOp } from "./http.ts";
import { goDuration, lockSessionTtl } from "./sessions.ts";

/**
 * A waiter tries again at least this often even when it hears of no
 * change: the safety net for a missed notification. A failed attempt is a
 * Raft write on Consul, so this is the docs' "reasonable rate" for a
 * polling fallback (https://developer.hashicorp.com/consul/api-docs/features/blocking#implementation-details).
 */
export const LOCK_RECHECK_MS = 15_000;

/** After a refusal because of a lock delay (set by another client's session), try again this soon. */
const LOCK_DELAY_RETRY_MS = 250;

/** What locking needs from the driver. */
export interface LockContext {
  readonly http: ConsulHttp;
  /** The agent's `session_ttl_min`, in ms. */
  readonly sessionTtlMin: number;
  /** The longest blocking query, in ms. */
  readonly waitMs: number;
  /** How long a waiter retries a failing Consul before it gives up, in ms. */
  readonly retryTimeout: number;
  /** The store's held locks: key → session. Writes of the holder keep them. */
  readonly held: Map<string, string>;
  /** Aborts when the store closes or is abandoned. */
  readonly stopped: AbortSignal;
  /** Runs a clean-up the store waits for before it closes. */
  cleanup(work: () => Promise<unknown>): void;
}

/**
 * How many times `tryLock` tries again at once when the holder it was
 * refused by released the key before it could be told apart from a TTL key:
 * the lock was free for a moment, so trying again waits for no holder.
 */
const TRY_AGAIN_WHEN_FREED = 3;

/** What a fenced commit checks for a lease: its key locked by its session. */
export interface LockFence {
  /** The full key, which is the lock. */
  readonly key: string;
  /** The session the lease acquired the key with. */
  readonly session: string;
}

// The fence of every lease this backend handed out, set where the lease is
// made (`held`): a lease is only ever checked against the session it took
// the key with.
const leaseFences = new WeakMap<LockLease, LockFence>();

/**
 * The fence of a lease of {@linkcode acquireLock} or {@linkcode tryLock}, or
 * `undefined` for a lease of anything else.
 */
export function lockFence(lease: LockLease): LockFence | undefined {
  return leaseFences.get(lease);
}

/** An attempt's session has expired: a new one is needed. */
const INVALID_SESSION = Symbol("invalid session");

/**
 * One attempt at the lock on `key` with `session` (one `lock` operation, and
 * the takeover of a TTL key): the lease when taken; else how long to wait
 * before trying again (0: the key was released meanwhile; a lock delay),
 * `null` while another session holds it, or {@linkcode INVALID_SESSION}.
 * Transport errors are thrown.
 */
async function attemptLock(
  context: LockContext,
  key: string,
  session: string,
  value: string,
  signal: AbortSignal,
): Promise<LockLease | number | null | typeof INVALID_SESSION> {
  const { http } = context;
  const lock = (extra: TxnOp[] = []): TxnOp[] => [
    ...extra,
    { Verb: "lock", Key: key, Value: value, Session: session, Flags: 0 },
  ];
  const outcome = await http.txn(lock(), { signal });
  if (outcome.ok) {
    return held(context, key, session, outcome.results[0].ModifyIndex);
  }
  const what = outcome.errors[0]?.What ?? "";
  if (/lock is already held/.test(what)) {
    const { entry } = await http.get(key, { consistent: true, signal });
    if (!entry?.Session) return 0;
    if (!hasExpiry(entry)) return null;
    // A key put with a TTL, not a lock: replace it, unless it changed since
    // it was read.
    const takeover = await http.txn(
      lock([
        { Verb: "check-index", Key: key, Index: entry.ModifyIndex },
        { Verb: "delete", Key: key },
      ]),
      { signal },
    );
    return takeover.ok
      ? held(context, key, session, takeover.results[1].ModifyIndex)
      : 0;
  }
  if (/lock delay/.test(what)) return LOCK_DELAY_RETRY_MS;
  if (/invalid session/.test(what)) return INVALID_SESSION;
  throw new StoreError(
    `Consul refused the lock on ${JSON.stringify(key)}: ${what}`,
  );
}

// A session for one lock() or tryLock(): released keys stay, and a dead
// holder's lock passes without a lock delay (see the module comment).
function createLockSession(
  context: LockContext,
  ttl: number,
  signal: AbortSignal,
): Promise<string> {
  return context.http.createSession({
    name: "valkeyrie lock",
    ttl: goDuration(lockSessionTtl(ttl, context.sessionTtlMin)),
    behavior: "release",
    lockDelay: "0s",
  }, { signal });
}

/**
 * Takes the lock on `key` if no other session holds it now: one attempt of
 * {@linkcode acquireLock}'s, resolving `null` when another session holds
 * the key (a dead holder's too, until Consul invalidates its session) or a
 * lock delay forbids it for now. The attempt's session is destroyed before
 * `null` resolves, and no blocking query is begun, so nothing is left
 * behind; a transport error fails the call instead of being retried.
 */
export async function tryLock(
  context: LockContext,
  key: string,
  options: DriverTryLockOptions,
): Promise<LockLease | null> {
  const { http } = context;
  // The caller's signal stops waiting in the store; here it is checked
  // before anything is created, and the attempt then runs to its end, so a
  // key it took is released by the store (or by destroying the session
  // below), never left to its TTL unseen.
  options.signal?.throwIfAborted();
  const signal = context.stopped;
  const value = base64(options.value);
  const session = await createLockSession(context, options.ttl, signal);
  let lease: LockLease | undefined;
  try {
    for (let attempt = 0; attempt <= TRY_AGAIN_WHEN_FREED; attempt++) {
      const result = await attemptLock(context, key, session, value, signal);
      if (result === INVALID_SESSION) {
        throw new StoreError(
          `Consul invalidated the session of a tryLock on ${
            JSON.stringify(key)
          } before it could use it`,
        );
      }
      if (result === 0) continue;
      if (typeof result === "object" && result !== null) lease = result;
      break;
    }
    return lease ?? null;
  } finally {
    if (lease === undefined) {
      // The session holds nothing now (a lock it took would be a lease), so
      // destroying it releases nothing of anyone's. Awaited: a null means no
      // session is left open. If the agent cannot be told, the session ends
      // after its TTL, and the clean-up's failure is an event: the null
      // stands.
      const done = http.destroySession(session);
      context.cleanup(() => done);
      await done.catch(() => {});
    }
  }
}

/** Waits until the lock on `key` is held, then returns its lease. */
export async function acquireLock(
  context: LockContext,
  key: string,
  options: DriverLockOptions,
): Promise<LockLease> {
  const { http } = context;
  const sessionTtl = lockSessionTtl(options.ttl, context.sessionTtlMin);
  const signal = AbortSignal.any(
    options.signal ? [options.signal, context.stopped] : [context.stopped],
  );
  const value = base64(options.value);
  const newSession = () => createLockSession(context, options.ttl, signal);

  let session = await newSession();
  // While waiting, the session is kept alive by its own renewals. A failed
  // one is tried again at the next tick; one that finds the session gone
  // needs nothing more, the next attempt makes a new session.
  let renewals = 0;
  const keeper = setInterval(() => {
    http.renewSession(session, { signal }).then(() => {
      renewals = 0;
    }, (error) => {
      if (signal.aborted) return;
      http.emit({
        type: "retry",
        operation: "renewSession",
        attempt: ++renewals,
        error,
      });
    });
  }, timerDelay(sessionTtl / 2));
  (keeper as { unref?(): void }).unref?.();
  let acquired = false;
  let failingSince: number | undefined;
  /** Failures since the last attempt Consul answered: retries of `lock`. */
  let failures = 0;
  const retry = (error: unknown) =>
    http.emit({ type: "retry", operation: "lock", attempt: ++failures, error });
  const retries = new Backoff(RETRY_BACKOFF);
  let watchIndex = 0n;
  const bucket = new TokenBucket();

  try {
    const lease = await waitForLock<LockLease>({
      signal,
      maxWaitMs: LOCK_RECHECK_MS,
      attempt: async () => {
        try {
          const result = await attemptLock(
            context,
            key,
            session,
            value,
            signal,
          );
          failingSince = undefined;
          failures = 0;
          retries.reset();
          if (result !== INVALID_SESSION) return result;
          // It expired while this waiter could not renew it.
          session = await newSession();
          return 0;
        } catch (error) {
          if (!(error instanceof ConsulHttpError) || !error.transient) {
            throw error;
          }
          failingSince ??= Date.now();
          if (Date.now() - failingSince >= context.retryTimeout) throw error;
          retry(error);
          return retries.next();
        }
      },
      // Blocks on the key until it is free (absent, unlocked, or held by a
      // TTL key's session); changes that leave it held just block again.
      changed: async (stop) => {
        while (!stop.aborted) {
          await bucket.take(stop);
          let answer;
          try {
            answer = await http.get(key, {
              index: watchIndex > 0n ? watchIndex : undefined,
              waitMs: watchIndex > 0n ? context.waitMs : undefined,
              signal: stop,
            });
          } catch (error) {
            // Stopped: the attempt is due, or the wait is over.
            if (stop.aborted) return;
            retry(error);
            // Let the next attempt decide, after a pause: an unreachable
            // agent must not turn waiting into a busy loop. Cut short when
            // the wait stops.
            await delay(retries.next(), stop).catch(() => {});
            return;
          }
          const { entry, index } = answer;
          watchIndex = index < watchIndex ? 0n : index > 0n ? index : 1n;
          if (!entry?.Session || hasExpiry(entry)) return;
        }
      },
    });
    acquired = true;
    return lease;
  } finally {
    clearInterval(keeper);
    if (!acquired) {
      const abandoned = session;
      context.cleanup(() => http.destroySession(abandoned));
    }
  }
}

// The lease of a lock just acquired: renewal, a monitor that reports the
// loss, and release.
function held(
  context: LockContext,
  key: string,
  session: string,
  modifyIndex: number,
): LockLease {
  const { http } = context;
  context.held.set(key, session);
  const lost = new AbortController();
  const monitor = new AbortController();
  const stop = AbortSignal.any([monitor.signal, context.stopped]);
  const forget = () => {
    if (context.held.get(key) === session) context.held.delete(key);
  };
  void runBlockingLoop({
    what: `monitor of the lock on ${JSON.stringify(key)}`,
    key,
    operation: "lockMonitor",
    emit: (event) => http.emit(event),
    signal: stop,
    // The lock handle's renewals decide when an unreachable Consul means
    // the lock is lost; the monitor only reports what it sees.
    giveUpMs: Infinity,
    read: async (index, signal) => {
      const { entry, index: next } = await http.get(key, {
        index: index > 0n ? index : undefined,
        waitMs: index > 0n ? context.waitMs : undefined,
        signal,
      });
      return { value: entry, index: next };
    },
    onResult: (entry) => {
      if (entry?.Session === session) return false;
      forget();
      lost.abort(
        new StoreError(
          entry
            ? "the key is no longer held by the lock's session"
            : "the key was deleted",
        ),
      );
      return true;
    },
    // Only an error worth no retry ends it (it retries for ever): the
    // renewals still tell whether the lock is held, but a loss is heard
    // later than it would be.
    onFailure: (error) => http.emit({ type: "error", source: "lock", error }),
  });
  let renewals = 0;
  const lease: LockLease = {
    lastIndex: BigInt(modifyIndex),
    lost: lost.signal,
    renew: async (signal) => {
      let alive: boolean;
      try {
        alive = await http.renewSession(session, { signal });
      } catch (error) {
        // The lock handle tries again while the TTL lasts (then the lock is
        // lost: a `lock-lost` event); one it gave up on is not retried.
        if (!signal.aborted) {
          http.emit({
            type: "retry",
            operation: "renewSession",
            attempt: ++renewals,
            error,
          });
        }
        throw error;
      }
      renewals = 0;
      if (!alive) forget();
      return alive;
    },
    release: async (deleteKey, signal) => {
      monitor.abort();
      forget();
      if (deleteKey) {
        // Only while this session holds it: another holder's value stays.
        await http.txn([
          { Verb: "check-session", Key: key, Session: session },
          { Verb: "delete", Key: key },
        ], { signal });
      }
      await http.destroySession(session, { signal });
    },
  };
  // The session is this acquisition's alone: Consul releases the key from
  // it when it is destroyed (unlock) or invalidated (expired, its node
  // failed), and another holder's lock names its own session, so the key is
  // locked by it exactly while this lease holds the lock.
  leaseFences.set(lease, { key, session });
  return lease;
}

/** Base64 of bytes, as `/v1/txn` carries values. */
export function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
