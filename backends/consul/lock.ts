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
 *   value; with `deleteOnUnlock` the key is deleted first, if still held.
 *
 * @module
 */

import { delay, timerDelay } from "../../core/abort.ts";
import { Backoff } from "../../core/backoff.ts";
import { waitForLock } from "../../core/lock.ts";
import { StoreError } from "../../core/errors.ts";
import type { DriverLockOptions, LockLease } from "../../core/driver.ts";
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
  const newSession = () =>
    http.createSession({
      name: "valkeyrie lock",
      ttl: goDuration(sessionTtl),
      behavior: "release",
      lockDelay: "0s",
    }, { signal });

  let session = await newSession();
  // While waiting, the session is kept alive by its own renewals.
  const keeper = setInterval(() => {
    http.renewSession(session, { signal }).catch(() => {});
  }, timerDelay(sessionTtl / 2));
  (keeper as { unref?(): void }).unref?.();
  let acquired = false;
  let failingSince: number | undefined;
  const retries = new Backoff(RETRY_BACKOFF);
  let watchIndex = 0n;
  const bucket = new TokenBucket();

  const lock = (extra: TxnOp[] = []): TxnOp[] => [
    ...extra,
    { Verb: "lock", Key: key, Value: value, Session: session, Flags: 0 },
  ];

  try {
    const lease = await waitForLock<LockLease>({
      signal,
      maxWaitMs: LOCK_RECHECK_MS,
      attempt: async () => {
        try {
          const outcome = await http.txn(lock(), { signal });
          failingSince = undefined;
          retries.reset();
          if (outcome.ok) {
            return held(context, key, session, outcome.results[0].ModifyIndex);
          }
          const what = outcome.errors[0]?.What ?? "";
          if (/lock is already held/.test(what)) {
            const { entry } = await http.get(key, { consistent: true, signal });
            if (!entry?.Session) return 0;
            if (!hasExpiry(entry)) return null;
            // A key put with a TTL, not a lock: replace it, unless it
            // changed since it was read.
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
          if (/invalid session/.test(what)) {
            // It expired while this waiter could not renew it.
            session = await newSession();
            return 0;
          }
          throw new StoreError(
            `Consul refused the lock on ${JSON.stringify(key)}: ${what}`,
          );
        } catch (error) {
          if (!(error instanceof ConsulHttpError) || !error.transient) {
            throw error;
          }
          failingSince ??= Date.now();
          if (Date.now() - failingSince >= context.retryTimeout) throw error;
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
          } catch {
            // Let the next attempt decide, after a pause: an unreachable
            // agent must not turn waiting into a busy loop.
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
    onFailure: () => {},
  });
  return {
    lastIndex: BigInt(modifyIndex),
    lost: lost.signal,
    renew: async (signal) => {
      const alive = await http.renewSession(session, { signal });
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
}

/** Base64 of bytes, as `/v1/txn` carries values. */
export function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
