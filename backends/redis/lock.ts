/**
 * Locks on Redis.
 *
 * The holder of the lock on KEY is recorded at `/lock/{TAG}KEY` (in KEY's
 * hash slot): a random token per acquisition, with the lock's TTL as the
 * name's TTL. Taking the lock,
 * writing the holder's value at KEY (with a fresh version: the fencing token)
 * and renewing or releasing it only while the token still holds it are each
 * one script. A waiter listens to the notifications of the record (its
 * deletion on release, its expiry when the holder died) and tries again when
 * one comes, or when the holder's TTL would have run out — never in a loop.
 * `tryLock` is one such attempt and nothing else: a held lock costs it one
 * script run that writes nothing, and no listening is begun.
 *
 * A fenced commit names the record of each fence's lock and the lease's
 * token (see {@linkcode lockFence}); the commit script applies only while
 * every record still holds its token (see `COMMIT` in `scripts.ts`).
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type { Cluster, Redis } from "ioredis";
import { abortable } from "../../core/abort.ts";
import { waitForLock } from "../../core/lock.ts";
import type {
  DriverLockOptions,
  DriverTryLockOptions,
  LockLease,
} from "../../core/driver.ts";
import { digest, toBuffer } from "./entries.ts";
import { counterKey, lockKey, versionKey } from "./names.ts";
import type { Notifications } from "./notifications.ts";
import { ACQUIRE, RELEASE, RENEW } from "./scripts.ts";

/**
 * With notifications, a waiter still tries again this often: the safety net
 * for a notification lost in a reconnection.
 */
const LOCK_RECHECK_MS = 5_000;

/**
 * Without notifications (the server has them off and this client may not
 * turn them on), a waiter tries this often, besides when the holder's TTL
 * runs out: a release is then noticed this late.
 */
const LOCK_POLL_MS = 500;

/** What a fenced commit checks for a lease: its record holds its token. */
export interface LockFence {
  /** The lock's bookkeeping name, `/lock/{TAG}KEY`. */
  readonly record: string;
  /** The full key the lock is on (its record shares the key's slot). */
  readonly key: string;
  /** The token of the acquisition the lease stands for. */
  readonly token: string;
}

// The fence of every lease this backend handed out, set where the lease is
// made: a lease is only ever checked through the record and token it took.
const leaseFences = new WeakMap<LockLease, LockFence>();

/**
 * The fence of a lease of {@linkcode acquireLock} or {@linkcode tryLock}, or
 * `undefined` for a lease of anything else.
 */
export function lockFence(lease: LockLease): LockFence | undefined {
  return leaseFences.get(lease);
}

/** The arguments of a lock's attempts, prepared once per lock() call. */
interface Acquisition {
  readonly key: string;
  readonly token: string;
  readonly ttl: string;
  readonly value: Buffer;
  readonly digest: string;
}

function acquisition(key: string, options: DriverTryLockOptions): Acquisition {
  return {
    key,
    token: crypto.randomUUID(),
    ttl: String(Math.ceil(options.ttl)),
    value: toBuffer(options.value),
    digest: digest(options.value),
  };
}

// One attempt at the lock: the lease when taken, else the holder's time
// left in milliseconds (null when unknown).
async function attemptLock(
  client: Redis | Cluster,
  { key, token, ttl, value, digest }: Acquisition,
): Promise<LockLease | number | null> {
  const record = lockKey(key);
  const [taken, detail] = await ACQUIRE.run(client, [
    counterKey(key),
    record,
    key,
    versionKey(key),
  ], [token, ttl, value, digest]) as [number, unknown];
  if (taken !== 1) {
    return typeof detail === "number" && detail > 0 ? detail : null;
  }
  const lease: LockLease = {
    lastIndex: BigInt(String(detail)),
    renew: async (signal) =>
      await abortable(
        RENEW.run(client, [record], [token, ttl]),
        signal,
      ) === 1,
    release: async (deleteKey, signal) => {
      await abortable(
        RELEASE.run(client, [record, key, versionKey(key)], [
          token,
          deleteKey ? "1" : "0",
        ]),
        signal,
      );
    },
  };
  leaseFences.set(lease, { record, key, token });
  return lease;
}

/**
 * Takes the lock on `key` if no one holds it now: one attempt of
 * {@linkcode acquireLock}, resolving `null` when the record names another
 * holder (also a dead one, until the record expires). The attempt is a single
 * script that changes nothing when the lock is held, and nothing is listened
 * to, so a `null` leaves nothing behind.
 *
 * @param client The command connection.
 * @param key The full key.
 * @param options The value, TTL and signal.
 */
export async function tryLock(
  client: Redis | Cluster,
  key: string,
  options: DriverTryLockOptions,
): Promise<LockLease | null> {
  options.signal?.throwIfAborted();
  // The reply is awaited even when the signal aborts meanwhile (the store
  // stops waiting for it): a lease taken by then reaches the store, which
  // releases it, instead of staying held until its TTL.
  const lease = await attemptLock(client, acquisition(key, options));
  return typeof lease === "object" && lease !== null ? lease : null;
}

/**
 * Waits until the lock on `key` is held, then returns its lease.
 *
 * @param client The command connection.
 * @param notifications The store's notifications.
 * @param key The full key.
 * @param options The value, TTL and signal.
 */
export async function acquireLock(
  client: Redis | Cluster,
  notifications: Notifications,
  key: string,
  options: DriverLockOptions,
): Promise<LockLease> {
  const bookkeeping = lockKey(key);
  // Every attempt uses the same token: an attempt whose reply was lost is
  // taken over by the next one instead of blocking it.
  const args = acquisition(key, options);
  const attempt = () => attemptLock(client, args);
  // A free lock is taken at once, without listening for anything.
  options.signal?.throwIfAborted();
  const first = await attempt();
  if (first !== null && typeof first === "object") return first;
  const wakers = new Set<() => void>();
  const wake = () => {
    for (const waker of [...wakers]) waker();
  };
  const listening = new AbortController();
  let maxWaitMs = LOCK_RECHECK_MS;
  try {
    await abortable(
      notifications.listenKey(bookkeeping, {
        changed: wake,
        resync: wake,
        error: wake,
      }, listening.signal),
      options.signal,
    );
  } catch {
    // Without notifications (or aborted: waitForLock then throws at once).
    maxWaitMs = LOCK_POLL_MS;
  }
  try {
    // Its first attempt comes after listening began: a release between the
    // attempt above and now is not missed.
    return await waitForLock<LockLease>({
      signal: options.signal,
      maxWaitMs,
      attempt,
      changed: (signal) =>
        new Promise<void>((resolve) => {
          const done = () => {
            wakers.delete(done);
            resolve();
          };
          wakers.add(done);
          signal.addEventListener("abort", done, { once: true });
        }),
    });
  } finally {
    listening.abort();
  }
}
