// CONTRACT.md "Second wave", Coordination: tryLock; fenced writes
// (`atomic().checkLock(lock)`, `put(key, value, { fence })`) checked by the
// server in the commit's own transaction; semaphores, read-write locks and
// group membership.
import assert from "node:assert/strict";
import { LockLostError } from "../core/errors.ts";
import { pauseLock } from "../core/lock.ts";
import { abandon } from "../core/store.ts";
import { Group, type Member } from "../coordination/group.ts";
import type { Lock } from "../core/types.ts";
import { LOCK_TTL_MS } from "./lock_cases.ts";
import {
  lockViolations,
  type RecordedHold,
  recordHold,
} from "./lock_history.ts";
import {
  caseDefiner,
  type ConformanceTarget,
  lateBound,
  settlesWithin,
  SLACK_MS,
  sleep,
  StreamReader,
  type TestRunner,
  text,
  within,
} from "./harness.ts";

/**
 * How long a `tryLock` may take in the kit. It never waits for a holder, so
 * it takes a round trip or a few; one that waited would wait for the
 * holder's 60 s TTL, far beyond this.
 */
const ATTEMPT_MS = 10_000;

const isLockLost = (error: unknown) => error instanceof LockLostError;

const ids = (members: Member[]) => members.map((member) => member.id);

export function coordinationCases(
  runner: TestRunner,
  target: ConformanceTarget,
): void {
  const test = caseDefiner(runner, target);
  const long = 120_000;

  test("tryLock takes a free lock and writes its value", async (c) => {
    const lock = await c.a.tryLock(c.k("free"), { value: "mine" });
    assert.ok(lock, "a free lock is taken");
    assert.equal(lock.key, c.k("free"));
    assert.equal(text(await c.a.get(c.k("free"))), "mine");
    assert.equal(lock.lost.aborted, false);
    await lock.unlock();
    const again = await c.a.tryLock(c.k("free"));
    assert.ok(again, "free again after unlock");
    assert.ok(again.lastIndex > lock.lastIndex, "fencing token grows");
    await again.unlock();
  });

  test(
    "tryLock resolves null at once while another handle holds the lock, and leaves nothing behind",
    async (c) => {
      const b = await c.open();
      const held = await c.a.lock(c.k("held"), { value: "a", ttl: 60_000 });
      for (let i = 0; i < 3; i++) {
        const attempt = await within(
          ATTEMPT_MS,
          "tryLock of a held lock",
          () => b.tryLock(c.k("held"), { value: "b" }),
        );
        assert.equal(attempt, null);
      }
      // Also within one handle: a lock is not reentrant.
      assert.equal(await c.a.tryLock(c.k("held")), null);
      assert.equal(text(await b.get(c.k("held"))), "a", "value untouched");
      assert.deepEqual(
        (await b.list(c.k())).map((pair) => pair.key),
        [c.k("held")],
        "no bookkeeping keys left visible",
      );
      await held.unlock();
      // A failed attempt queued nothing: the lock is free at once, to a
      // tryLock too (a leftover waiter would hold it up until its TTL).
      const next = await within(
        ATTEMPT_MS,
        "tryLock after the release",
        () => b.tryLock(c.k("held"), { value: "b" }),
      );
      assert.ok(next, "free after the holder released it");
      assert.equal(text(await c.a.get(c.k("held"))), "b");
      await next.unlock();
    },
    long,
  );

  test(
    "tryLock counts a dead holder's lock as held until it expires",
    async (c) => {
      const holder = await c.open();
      const ttl = LOCK_TTL_MS;
      const dead = await holder.lock(c.k("dead"), { value: "dead", ttl });
      await abandon(holder);
      const died = Date.now();
      assert.equal(await c.a.tryLock(c.k("dead")), null, "held while alive");
      // Taken by tryLock alone, attempted once per 100 ms: bounded by the
      // contract's ttl + granularity, with the kit's headroom.
      const bound = lateBound(ttl + c.a.limits.ttlGranularityMs);
      let lock = null;
      while (lock === null && Date.now() - died <= bound) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        lock = await c.a.tryLock(c.k("dead"), { value: "alive" });
      }
      assert.ok(lock, `taken within ${bound} ms of the holder's death`);
      assert.ok(lock.lastIndex > dead.lastIndex);
      assert.equal(text(await c.a.get(c.k("dead"))), "alive");
      await lock.unlock();
    },
    long,
  );

  test("tryLock refuses bad input and aborted signals", async (c) => {
    await assert.rejects(
      c.a.tryLock(""),
      (error: Error) => error.name === "InvalidKeyError",
    );
    await assert.rejects(
      c.a.tryLock(c.k("t"), { ttl: -1 }),
      (error: Error) => error.name === "InvalidArgumentError",
    );
    const reason = new Error("gave up");
    const aborted = AbortSignal.abort(reason);
    await assert.rejects(
      c.a.tryLock(c.k("t"), { signal: aborted }),
      (error) => error === reason,
    );
    assert.equal(await c.a.exists(c.k("t")), false, "nothing written");
    const lock = await c.a.tryLock(c.k("t"));
    assert.ok(lock, "nothing left held");
    await lock.unlock();
  });

  test("a fenced put succeeds while the lock is held", async (c) => {
    const lock = await c.a.lock(c.k("lock"));
    const index = await c.a.put(c.k("data"), "v1", { fence: lock });
    const pair = await c.a.get(c.k("data"));
    assert.equal(text(pair), "v1");
    assert.equal(pair?.lastIndex, index, "put resolves the new lastIndex");
    const result = await c.a.atomic()
      .checkLock(lock)
      .check(c.k("data"), index)
      .put(c.k("data"), "v2")
      .put(c.k("other"), "o")
      .commit();
    assert.equal(result.ok, true);
    assert.equal(text(await c.a.get(c.k("data"))), "v2");
    assert.equal(text(await c.a.get(c.k("other"))), "o");
    // A fence alone is a commit too: it writes nothing and succeeds.
    assert.equal((await c.a.atomic().checkLock(lock).commit()).ok, true);
    await lock.unlock();
  });

  test(
    "a fenced write still succeeds after the lock renewed itself",
    async (c) => {
      const ttl = LOCK_TTL_MS;
      const lock = await c.a.lock(c.k("lock"), { ttl });
      // Past the TTL: held only by renewals (or the backend's keep-alive).
      await new Promise((resolve) =>
        setTimeout(resolve, ttl + c.a.limits.ttlGranularityMs)
      );
      assert.equal(lock.lost.aborted, false);
      await c.a.put(c.k("data"), "renewed", { fence: lock });
      assert.equal(text(await c.a.get(c.k("data"))), "renewed");
      await lock.unlock();
    },
    long,
  );

  test(
    "a fenced write after unlock fails and changes nothing",
    async (c) => {
      await c.a.put(c.k("data"), "before");
      const lock = await c.a.lock(c.k("lock"));
      await lock.unlock();
      await assert.rejects(
        c.a.put(c.k("data"), "after", { fence: lock }),
        isLockLost,
      );
      const result = await c.a.atomic().checkLock(lock)
        .put(c.k("data"), "after").delete(c.k("lock")).commit();
      assert.equal(result.ok, false);
      assert.equal(text(await c.a.get(c.k("data"))), "before");
      assert.equal(await c.a.exists(c.k("lock")), true);
    },
  );

  test(
    "a paused holder's fenced writes are refused by the server once another holder took over",
    async (c) => {
      const b = await c.open();
      const ttl = LOCK_TTL_MS;
      const a = await c.a.lock(c.k("lock"), { value: "a", ttl });
      await c.a.put(c.k("data"), "a wrote", { fence: a });
      // A frozen process: nothing renews the lock any more, and its own
      // store does not know it; only the server can refuse its writes.
      pauseLock(a);
      const bLock = await b.lock(c.k("lock"), {
        value: "b",
        signal: AbortSignal.timeout(
          lateBound(ttl + b.limits.ttlGranularityMs) + 5_000,
        ),
      });
      assert.ok(bLock.lastIndex > a.lastIndex);
      await b.put(c.k("data"), "b wrote", { fence: bLock });
      // The holder wakes up and writes, fenced: refused, nothing changes.
      await assert.rejects(
        c.a.put(c.k("data"), "a again", { fence: a }),
        isLockLost,
      );
      const atomic = await c.a.atomic().checkLock(a)
        .put(c.k("data"), "a again").put(c.k("side"), "a").commit();
      assert.equal(atomic.ok, false);
      assert.equal(text(await c.a.get(c.k("data"))), "b wrote");
      assert.equal(await c.a.exists(c.k("side")), false);
      assert.equal(text(await c.a.get(c.k("lock"))), "b");
      // Still refused after the new holder left without deleting the key.
      await bLock.unlock();
      await assert.rejects(
        c.a.put(c.k("data"), "a later", { fence: a }),
        isLockLost,
      );
      assert.equal(text(await c.a.get(c.k("data"))), "b wrote");
      await a.unlock().catch(() => {});
    },
    long,
  );

  test("a fence must be a lock of the same store, once per commit", async (c) => {
    const other = await c.open();
    const foreign = await other.lock(c.k("foreign"));
    await assert.rejects(
      c.a.put(c.k("data"), "x", { fence: foreign }),
      (error: Error) => error.name === "InvalidArgumentError",
    );
    assert.throws(
      () => c.a.atomic().checkLock(foreign),
      (error: Error) => error.name === "InvalidArgumentError",
    );
    assert.throws(
      // deno-lint-ignore no-explicit-any
      () => c.a.atomic().checkLock({ key: "x", lastIndex: 1n } as any),
      (error: Error) => error.name === "InvalidArgumentError",
    );
    const mine = await c.a.lock(c.k("mine"));
    assert.throws(
      () => c.a.atomic().checkLock(mine).checkLock(mine),
      (error: Error) => error.name === "InvalidArgumentError",
    );
    assert.equal(await c.a.exists(c.k("data")), false, "nothing written");
    await mine.unlock();
    await foreign.unlock();
  });

  test(
    "a history of contending, released and paused holders is safe: tokens grow, holds never overlap, no fenced write after a loss",
    async (c) => {
      const stores = [c.a, await c.open(), await c.open()];
      const ttl = LOCK_TTL_MS;
      const holds: RecordedHold[] = [];
      const paused: Lock[] = [];
      let refusals = 0;
      // A paused holder keeps writing until the server refuses it: well
      // past its TTL, when another holder took over or it simply expired.
      const refusedBy = lateBound(ttl + c.a.limits.ttlGranularityMs) +
        SLACK_MS;
      await Promise.all(stores.map(async (store, worker) => {
        for (let round = 0; round < 3; round++) {
          const invokedAt = Date.now();
          const lock = await store.lock(c.k("mutex"), {
            ttl,
            value: `${worker}`,
            signal: AbortSignal.timeout(60_000),
          });
          const hold = recordHold(`store ${worker}`, lock, invokedAt);
          holds.push(hold);
          const write = async () => {
            const at = Date.now();
            await store.put(c.k("data"), `${worker}/${round}`, {
              fence: lock,
            });
            hold.writes.push({ invokedAt: at, completedAt: Date.now() });
          };
          // One holder (and a random few more) is frozen mid-hold.
          if ((worker === 0 && round === 1) || Math.random() < 0.15) {
            hold.paused = true;
            hold.releasedAt = Date.now();
            pauseLock(lock);
            paused.push(lock);
            const deadline = Date.now() + refusedBy;
            while (true) {
              try {
                await write();
              } catch (error) {
                assert.ok(isLockLost(error), String(error));
                refusals++;
                break;
              }
              assert.ok(
                Date.now() < deadline,
                `a paused holder's fenced writes were still applied ${refusedBy} ms on`,
              );
              await sleep(100);
            }
            continue;
          }
          await write();
          await sleep(Math.random() * 30);
          await write();
          hold.releasedAt = Date.now();
          await lock.unlock();
        }
      }));
      await Promise.all(paused.map((lock) => lock.unlock().catch(() => {})));
      assert.equal(refusals, paused.length, "every paused holder was refused");
      assert.deepEqual(lockViolations(holds), []);
    },
    long,
  );

  // --- semaphores

  test("a semaphore hands out at most its permits", async (c) => {
    const b = await c.open();
    const pool = c.a.semaphore(c.k("pool"), { permits: 2 });
    const other = b.semaphore(c.k("pool"), { permits: 2 });
    const first = await pool.acquire({ value: "1" });
    const second = await other.tryAcquire({ value: "2" });
    assert.ok(second, "the second permit is free");
    assert.notEqual(first.key, second.key);
    assert.equal(await pool.tryAcquire(), null, "no third permit");
    assert.equal(await other.tryAcquire(), null, "no third permit");
    await first.unlock();
    const third = await other.tryAcquire({ value: "3" });
    assert.ok(third, "a released permit is free again");
    // A permit is a lock of the store: it fences writes.
    await b.put(c.k("data"), "x", { fence: third });
    await second.unlock();
    await third.unlock();
    await assert.rejects(
      b.put(c.k("data"), "y", { fence: third }),
      isLockLost,
    );
  });

  test("acquire waits for a release, and hears it", async (c) => {
    const b = await c.open();
    const held = await c.a.semaphore(c.k("pool"), { permits: 1 }).acquire();
    const waiting = b.semaphore(c.k("pool"), { permits: 1 }).acquire();
    assert.equal(await settlesWithin(waiting, 500), false, "it waits");
    await held.unlock();
    const lock = await within(10_000, "acquire after a release", () => waiting);
    await lock.unlock();
  }, long);

  test(
    "a dead holder's permit returns within ttl + granularity",
    async (c) => {
      const holder = await c.open();
      const ttl = LOCK_TTL_MS;
      await holder.semaphore(c.k("pool"), { permits: 1, ttl }).acquire();
      await abandon(holder);
      const died = Date.now();
      const lock = await c.a.semaphore(c.k("pool"), { permits: 1, ttl })
        .acquire();
      const took = Date.now() - died;
      const bound = lateBound(ttl + c.a.limits.ttlGranularityMs);
      assert.ok(took <= bound, `took ${took} ms, bound ${bound} ms`);
      await lock.unlock();
    },
    long,
  );

  test("never more holders than permits under contention", async (c) => {
    const b = await c.open();
    let inside = 0;
    let most = 0;
    await Promise.all(Array.from({ length: 6 }, async (_, i) => {
      const store = i % 2 ? b : c.a;
      const lock = await store.semaphore(c.k("pool"), { permits: 2 }).acquire({
        signal: AbortSignal.timeout(60_000),
      });
      inside++;
      most = Math.max(most, inside);
      await sleep(30);
      inside--;
      await lock.unlock();
    }));
    assert.ok(most <= 2, `${most} holders at once`);
  }, long);

  test("a semaphore refuses bad permits and keys", (c) => {
    for (const permits of [0, -1, 1.5, 1_001, NaN, "2"]) {
      assert.throws(
        // deno-lint-ignore no-explicit-any
        () => c.a.semaphore(c.k("pool"), { permits: permits as any }),
        (error: Error) => error.name === "InvalidArgumentError",
        String(permits),
      );
    }
    assert.throws(
      () => c.a.semaphore("", { permits: 1 }),
      (error: Error) => error.name === "InvalidKeyError",
    );
    assert.throws(
      () => c.a.semaphore(c.k("pool"), { permits: 1, ttl: 0 }),
      (error: Error) => error.name === "InvalidArgumentError",
    );
  });

  // --- read-write locks

  test("readers share, a writer waits for them", async (c) => {
    const b = await c.open();
    const rw = c.a.readWriteLock(c.k("rw"));
    const r1 = await rw.read();
    const r2 = await b.readWriteLock(c.k("rw")).read();
    const writing = b.readWriteLock(c.k("rw")).write();
    assert.equal(await settlesWithin(writing, 500), false, "the writer waits");
    await r1.unlock();
    assert.equal(await settlesWithin(writing, 300), false, "one reader left");
    await r2.unlock();
    const w = await within(
      10_000,
      "write after the readers left",
      () => writing,
    );
    // The writer excludes readers.
    const reading = rw.read();
    assert.equal(await settlesWithin(reading, 500), false, "a reader waits");
    await b.put(c.k("data"), "w", { fence: w });
    await w.unlock();
    const r3 = await within(
      10_000,
      "read after the writer left",
      () => reading,
    );
    await r3.unlock();
  }, long);

  test("a waiting writer is not starved by new readers", async (c) => {
    const b = await c.open();
    const r1 = await c.a.readWriteLock(c.k("rw")).read();
    const writing = b.readWriteLock(c.k("rw")).write({ value: "w" });
    // The writer holds the gate once its value is at the writer's key.
    const deadline = Date.now() + 10_000;
    while (text(await c.a.get(c.k("rw", "writer"))) !== "w") {
      assert.ok(Date.now() < deadline, "the writer queued");
      await sleep(25);
    }
    const late = c.a.readWriteLock(c.k("rw")).read();
    assert.equal(await settlesWithin(late, 500), false, "the new reader waits");
    await r1.unlock();
    const w = await within(
      10_000,
      "the writer after the old reader",
      () => writing,
    );
    assert.equal(await settlesWithin(late, 300), false, "still behind it");
    await w.unlock();
    const r2 = await within(10_000, "the reader after the writer", () => late);
    await r2.unlock();
  }, long);

  test("a dead reader does not block a writer past its ttl", async (c) => {
    const holder = await c.open();
    const ttl = LOCK_TTL_MS;
    await holder.readWriteLock(c.k("rw"), { ttl }).read();
    await abandon(holder);
    const died = Date.now();
    const w = await c.a.readWriteLock(c.k("rw"), { ttl }).write();
    const took = Date.now() - died;
    // Its expiry is found by a re-check (at most half a TTL later).
    const bound = lateBound(ttl + c.a.limits.ttlGranularityMs + ttl / 2);
    assert.ok(took <= bound, `took ${took} ms, bound ${bound} ms`);
    await w.unlock();
  }, long);

  // --- group membership

  test("members lists who joined, sorted, and follows leaves", async (c) => {
    const b = await c.open();
    const group = new Group(c.a, c.k("workers"));
    const m2 = await new Group(b, c.k("workers")).join("w2", { value: "two" });
    const m1 = await group.join("w1", { value: "one" });
    const members = new StreamReader(group.members());
    assert.deepEqual(await members.next(), [
      { id: "w1", value: "one" },
      { id: "w2", value: "two" },
    ]);
    await m2.leave();
    await m2.leave();
    assert.deepEqual(ids(await members.until((list) => list.length === 1)), [
      "w1",
    ]);
    await assert.rejects(
      group.join("w1"),
      (error: Error) => error.name === "KeyExistsError",
    );
    await m1[Symbol.asyncDispose]();
    assert.deepEqual(await members.until((list) => list.length === 0), []);
  });

  test(
    "a member renews itself and a dead one leaves within ttl + granularity",
    async (c) => {
      const b = await c.open();
      const ttl = LOCK_TTL_MS;
      const alive = await new Group(c.a, c.k("g")).join("alive", { ttl });
      await new Group(b, c.k("g")).join("dead", { ttl });
      const members = new StreamReader(new Group(c.a, c.k("g")).members());
      assert.deepEqual(ids(await members.next()), ["alive", "dead"]);
      await abandon(b);
      const died = Date.now();
      const bound = lateBound(ttl + c.a.limits.ttlGranularityMs);
      const left = await members.until(
        (list) => !ids(list).includes("dead"),
        bound + SLACK_MS,
      );
      const took = Date.now() - died;
      assert.ok(took <= bound, `took ${took} ms, bound ${bound} ms`);
      assert.deepEqual(ids(left), ["alive"], "the live one renewed itself");
      assert.equal(alive.lost.aborted, false);
      await alive.leave();
    },
    long,
  );

  test("a group refuses bad names and ids", async (c) => {
    assert.throws(
      () => new Group(c.a, ""),
      (error: Error) => error.name === "InvalidArgumentError",
    );
    const group = new Group(c.a, c.k("g"));
    for (const id of ["", "a/b"]) {
      await assert.rejects(
        group.join(id),
        (error: Error) => error.name === "InvalidArgumentError",
      );
    }
    assert.deepEqual(await c.a.list(c.k("g")), [], "nothing written");
  });
}
