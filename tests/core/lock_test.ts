// core/lock.ts on its own: renewal timing, the lost signal, unlock that
// never hangs, and the wait loop — with fake leases, so every failure a
// backend can show is reproduced exactly.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MemoryStore } from "../../backends/memory/mod.ts";
import type { LockLease } from "../../core/driver.ts";
import { LockLostError, StoreError } from "../../core/errors.ts";
import {
  LockHandle,
  RENEWALS_PER_TTL,
  UNLOCK_TIMEOUT_MS,
  waitForLock,
} from "../../core/lock.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until `check` holds, failing with `what` after 10 s: far longer than
 * any timer of these tests, so only a timer that never fires reaches it.
 */
async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} within 10 s`);
    await sleep(10);
  }
}

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
    const ttl = 1_200;
    const period = ttl / RENEWALS_PER_TTL;
    const renewals: number[] = [];
    const start = Date.now();
    const { handle } = hold({
      lastIndex: 7n,
      renew: () => {
        renewals.push(Date.now());
        return Promise.resolve(true);
      },
      release: () => Promise.resolve(),
    }, ttl);
    // Counted, not timed: a loaded machine delays renewals, but every one
    // still comes.
    await until("4 renewals", () => renewals.length >= 4);
    await handle.unlock();
    assert.equal(handle.lastIndex, 7n);
    const gaps = renewals.map((at, i) => at - (i ? renewals[i - 1] : start));
    // Timers never fire early, so none comes before its period (no storm)…
    assert.ok(gaps.every((gap) => gap >= period - 10), `gaps ${gaps}`);
    // …and each comes before the lock's ttl runs out, the handle's promise,
    // with 800 ms to spare for a late timer.
    assert.ok(gaps.every((gap) => gap < ttl), `gaps ${gaps}`);
    // The schedule is ttl/3, not ttl/2: a loaded machine delays some timers,
    // not every one of them by a sixth of the ttl (200 ms).
    assert.ok(Math.min(...gaps) < ttl / 2, `gaps ${gaps}`);
    assert.equal(handle.lost.aborted, false);
    const count = renewals.length;
    await sleep(2 * period);
    assert.equal(renewals.length, count, "no renewal after unlock");
  });

  test("is lost as soon as a renewal says the lock is gone", async () => {
    let calls = 0;
    const { handle } = hold({
      lastIndex: 1n,
      renew: () => Promise.resolve(++calls < 2),
      release: () => Promise.resolve(),
    }, 150);
    // Counted, not timed: lost at the renewal that said so, the second.
    await until("lost", () => handle.lost.aborted);
    assert.equal(calls, 2, "lost at the renewal that said so");
    assert.ok(handle.lost.reason instanceof LockLostError);
    await sleep(200);
    assert.equal(calls, 2, "no renewal after the loss");
    // Unlocking a lost lock says so.
    await assert.rejects(handle.unlock(), LockLostError);
  });

  test("retries failing renewals, and is lost when the ttl runs out", async () => {
    let calls = 0;
    const ttl = 1_000;
    const started = Date.now();
    const { handle } = hold({
      lastIndex: 1n,
      renew: () => {
        calls++;
        return Promise.reject(new Error("network down"));
      },
      release: () => Promise.resolve(),
    }, ttl);
    // The handle's timers are unref'd: keep the event loop alive meanwhile.
    const alive = setInterval(() => {}, 50);
    await until("lost", () => handle.lost.aborted);
    clearInterval(alive);
    const took = Date.now() - started;
    // Not before the ttl (a lower bound, which load can only raise), and not
    // at some later point such as a second ttl: twice it leaves a loaded
    // machine a whole second for a timer that is due at the ttl.
    assert.ok(took >= ttl - 50 && took < 2 * ttl, `lost after ${took} ms`);
    assert.ok(calls >= 2, `retried (${calls} calls)`);
    assert.match((handle.lost.reason as Error).message, /within its TTL/);
    assert.equal(
      ((handle.lost.reason as Error).cause as Error).message,
      "network down",
    );
  });

  test("reports each failed renewal it tries again, counting from the last confirmed one", async () => {
    const answers: (boolean | Error)[] = [
      new Error("blip 1"),
      new Error("blip 2"),
      true,
      new Error("blip 3"),
    ];
    const failed: [number, string][] = [];
    const handle = new LockHandle({
      key: "k",
      lease: {
        lastIndex: 1n,
        renew: () => {
          const answer = answers.shift() ?? true;
          return answer instanceof Error
            ? Promise.reject(answer)
            : Promise.resolve(answer);
        },
        release: () => Promise.resolve(),
      },
      // Renewals every 2 s, retries 250 ms after a failure: the two failures
      // in a row are tried again seconds before the TTL would end it.
      ttl: 6_000,
      deleteOnUnlock: true,
      onEnd: () => {},
      onRenewFailed: (attempt, error) =>
        failed.push([attempt, (error as Error).message]),
    });
    const alive = setInterval(() => {}, 50);
    try {
      await until("3 failures reported", () => failed.length >= 3);
    } finally {
      clearInterval(alive);
    }
    assert.deepEqual(failed, [[1, "blip 1"], [2, "blip 2"], [1, "blip 3"]]);
    assert.equal(handle.lost.aborted, false);
    await handle.unlock();
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
    // The 200 ms asked for: the 5 s default would take at least all of it.
    assert.ok(Date.now() - started < UNLOCK_TIMEOUT_MS);
    assert.equal(ended.length, 1);
  });

  test("unlock of a lost lock reports the loss, not a failing release", async () => {
    const lost = new AbortController();
    const { handle } = hold({
      lastIndex: 1n,
      lost: lost.signal,
      release: () => Promise.reject(new Error("gone")),
    }, 1_000);
    lost.abort();
    await assert.rejects(handle.unlock(), LockLostError);
  });

  test("a holder paused past its TTL is lost before any of its timers run", () => {
    let renewals = 0;
    const ttl = 1_000;
    const { handle } = hold({
      lastIndex: 1n,
      renew: () => Promise.resolve(++renewals > 0),
      release: () => Promise.resolve(),
    }, ttl);
    // A pause, as SIGSTOP makes one: the event loop does not run while the
    // clock goes on past the TTL.
    const until = Date.now() + ttl + 50;
    while (Date.now() < until) { /* paused */ }
    assert.equal(handle.lost.aborted, true, "lost, read before any timer ran");
    assert.ok(handle.lost.reason instanceof LockLostError);
    assert.match(
      handle.lost.reason.message,
      /last renewal was confirmed more than its TTL/,
    );
    assert.equal(renewals, 0);
    return assert.rejects(handle.unlock(), LockLostError);
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
    // Woken by the notification: the 10 s maxWaitMs would take all of it.
    assert.ok(Date.now() - started < 10_000);
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
    // Not before the holder's 150 ms, and well before the 10 s maxWaitMs.
    assert.ok(took >= 140 && took < 5_000, `${took} ms`);
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

describe("fenced writes in the store", () => {
  test("a holder paused past its TTL is refused before any I/O", async () => {
    await using store = new MemoryStore({ name: "core-lock-fence" });
    const lock = await store.lock("lock", { ttl: 200 });
    await store.put("data", "before", { fence: lock });
    // A blocked event loop: no renewal timer can run, as under SIGSTOP.
    const until = Date.now() + 300;
    while (Date.now() < until) { /* paused */ }
    await assert.rejects(
      store.put("data", "after", { fence: lock }),
      (error: Error) =>
        // By name: under Node the store comes from the npm build.
        error.name === "LockLostError" &&
        /more than its TTL/.test(error.message),
    );
    assert.equal(lock.lost.aborted, true);
    const result = await store.atomic().checkLock(lock).put("data", "x")
      .commit();
    assert.equal(result.ok, false);
    assert.equal(
      new TextDecoder().decode((await store.get("data"))!.value),
      "before",
    );
    await lock.unlock().catch(() => {});
  });
});
