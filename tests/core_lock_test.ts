// core/lock.ts on its own: renewal timing, the lost signal, unlock that
// never hangs, and the wait loop — with fake leases, so every failure a
// backend can show is reproduced exactly.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { LockLease } from "../core/driver.ts";
import { LockLostError, StoreError } from "../core/errors.ts";
import { LockHandle, waitForLock } from "../core/lock.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function hold(lease: LockLease, ttl: number, unlockTimeoutMs?: number) {
  const ended: LockHandle[] = [];
  const handle = new LockHandle({
    key: "k",
    lease,
    ttl,
    deleteOnUnlock: true,
    onEnd: (lock) => ended.push(lock),
    unlockTimeoutMs,
  });
  return { handle, ended };
}

describe("LockHandle", () => {
  test("renews about every ttl/3 while held", async () => {
    const renewals: number[] = [];
    const start = Date.now();
    const { handle } = hold({
      lastIndex: 7n,
      renew: () => {
        renewals.push(Date.now() - start);
        return Promise.resolve(true);
      },
      release: () => Promise.resolve(),
    }, 300);
    await sleep(700);
    await handle.unlock();
    assert.equal(handle.lastIndex, 7n);
    assert.ok(renewals.length >= 4 && renewals.length <= 8, `${renewals}`);
    assert.ok(renewals[0] >= 90, "not before ttl/3");
    assert.equal(handle.lost.aborted, false);
    const count = renewals.length;
    await sleep(250);
    assert.equal(renewals.length, count, "no renewal after unlock");
  });

  test("is lost as soon as a renewal says the lock is gone", async () => {
    let calls = 0;
    const { handle } = hold({
      lastIndex: 1n,
      renew: () => Promise.resolve(++calls < 2),
      release: () => Promise.resolve(),
    }, 150);
    await sleep(400);
    assert.equal(handle.lost.aborted, true);
    assert.ok(handle.lost.reason instanceof LockLostError);
    assert.equal(calls, 2, "no renewal after the loss");
    await handle.unlock();
  });

  test("retries failing renewals, and is lost when the ttl runs out", async () => {
    let calls = 0;
    const started = Date.now();
    const { handle } = hold({
      lastIndex: 1n,
      renew: () => {
        calls++;
        return Promise.reject(new Error("network down"));
      },
      release: () => Promise.resolve(),
    }, 600);
    // The handle's timers are unref'd: keep the event loop alive meanwhile.
    const alive = setInterval(() => {}, 50);
    await new Promise((resolve) =>
      handle.lost.addEventListener("abort", resolve)
    );
    clearInterval(alive);
    const took = Date.now() - started;
    assert.ok(took >= 550 && took < 1_200, `lost after ${took} ms`);
    assert.ok(calls >= 2, `retried (${calls} calls)`);
    assert.match((handle.lost.reason as Error).message, /within its TTL/);
    assert.equal(
      ((handle.lost.reason as Error).cause as Error).message,
      "network down",
    );
  });

  test("follows the driver's own lost signal", () => {
    const lost = new AbortController();
    const { handle } = hold({
      lastIndex: 1n,
      lost: lost.signal,
      release: () => Promise.resolve(),
    }, 1_000);
    assert.equal(handle.lost.aborted, false);
    lost.abort(new Error("session expired"));
    assert.equal(handle.lost.aborted, true);
    assert.ok(handle.lost.reason instanceof LockLostError);
  });

  test("unlock releases once, with deleteOnUnlock, however often it is called", async () => {
    const releases: boolean[] = [];
    const { handle, ended } = hold({
      lastIndex: 1n,
      renew: () => Promise.resolve(true),
      release: (deleteKey) => {
        releases.push(deleteKey);
        return sleep(20).then(() => {});
      },
    }, 1_000);
    await Promise.all([handle.unlock(), handle.unlock()]);
    await handle.unlock();
    await handle[Symbol.asyncDispose]();
    assert.deepEqual(releases, [true]);
    assert.deepEqual(ended, [handle]);
  });

  test("unlock gives up on a backend that never answers", async () => {
    const { handle, ended } = hold(
      {
        lastIndex: 1n,
        release: () => new Promise(() => {}), // ignores its signal
      },
      1_000,
      200,
    );
    const started = Date.now();
    await assert.rejects(handle.unlock(), (error: Error) => {
      assert.ok(error instanceof StoreError);
      assert.match(error.message, /within 200 ms; it will expire/);
      return true;
    });
    assert.ok(Date.now() - started < 1_000);
    assert.equal(ended.length, 1);
  });

  test("unlock of a lost lock does not fail on a failing release", async () => {
    const lost = new AbortController();
    const { handle } = hold({
      lastIndex: 1n,
      lost: lost.signal,
      release: () => Promise.reject(new Error("gone")),
    }, 1_000);
    lost.abort();
    await handle.unlock();
  });

  test("abandon stops renewing without releasing", async () => {
    let renewals = 0;
    let released = false;
    const { handle, ended } = hold({
      lastIndex: 1n,
      renew: () => Promise.resolve(++renewals > 0),
      release: () => Promise.resolve(void (released = true)),
    }, 90);
    handle.abandon();
    await sleep(200);
    assert.equal(renewals, 0);
    await handle.unlock();
    assert.equal(released, false);
    assert.equal(ended.length, 1);
  });
});

describe("waitForLock", () => {
  test("attempts again when the backend says the lock may be free", async () => {
    let free = false;
    let attempts = 0;
    const listeners = new Set<() => void>();
    setTimeout(() => {
      free = true;
      for (const listener of listeners) listener();
    }, 100);
    const started = Date.now();
    const lease = await waitForLock({
      attempt: () => Promise.resolve(++attempts && free ? { id: 1 } : null),
      changed: (signal) =>
        new Promise<void>((resolve) => {
          listeners.add(resolve);
          signal.addEventListener("abort", () => listeners.delete(resolve));
        }),
      maxWaitMs: 10_000,
    });
    assert.deepEqual(lease, { id: 1 });
    assert.equal(attempts, 2, "no polling between notifications");
    assert.ok(Date.now() - started < 1_000);
  });

  test("attempts again when the holder's ttl has run out", async () => {
    let attempts = 0;
    const started = Date.now();
    await waitForLock({
      attempt: () => Promise.resolve(++attempts > 1 ? { id: 1 } : 150),
      changed: () => new Promise<void>(() => {}),
      maxWaitMs: 10_000,
    });
    const took = Date.now() - started;
    assert.ok(took >= 140 && took < 1_000, `${took} ms`);
  });

  test("rejects with the signal's reason, before and while waiting", async () => {
    const reason = new Error("stop");
    await assert.rejects(
      waitForLock({
        attempt: () => Promise.resolve(null),
        changed: () => new Promise<void>(() => {}),
        maxWaitMs: 10_000,
        signal: AbortSignal.abort(reason),
      }),
      (error) => error === reason,
    );
    const controller = new AbortController();
    setTimeout(() => controller.abort(reason), 50);
    await assert.rejects(
      waitForLock({
        attempt: () => Promise.resolve(null),
        changed: () => new Promise<void>(() => {}),
        maxWaitMs: 10_000,
        signal: controller.signal,
      }),
      (error) => error === reason,
    );
  });
});
