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
 *
 * @module
 */

import type { Cluster, Redis } from "ioredis";
import { abortable } from "../../core/abort.ts";
import { waitForLock } from "../../core/lock.ts";
import type { DriverLockOptions, LockLease } from "../../core/driver.ts";
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
  const token = crypto.randomUUID();
  const bookkeeping = lockKey(key);
  const ttl = String(Math.ceil(options.ttl));
  const value = toBuffer(options.value);
  const valueDigest = digest(options.value);
  const lease = (lastIndex: bigint): LockLease => ({
    lastIndex,
    renew: async (signal) =>
      await abortable(
        RENEW.run(client, [bookkeeping], [token, ttl]),
        signal,
      ) === 1,
    release: async (deleteKey, signal) => {
      await abortable(
        RELEASE.run(client, [bookkeeping, key, versionKey(key)], [
          token,
          deleteKey ? "1" : "0",
        ]),
        signal,
      );
    },
  });
  const attempt = async (): Promise<LockLease | number | null> => {
    const [taken, detail] = await ACQUIRE.run(client, [
      counterKey(key),
      bookkeeping,
      key,
      versionKey(key),
    ], [token, ttl, value, valueDigest]) as [number, unknown];
    if (taken === 1) return lease(BigInt(String(detail)));
    return typeof detail === "number" && detail > 0 ? detail : null;
  };
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
