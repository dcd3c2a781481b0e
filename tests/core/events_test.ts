// Store events (core/events.ts): a lost lock is an event with its key and
// why; what a driver reports reaches `store.events` with the backend added;
// etcd and Redis report a dropped connection's retries, the reconnection
// and the watches that resumed, and Redis its client's errors, none
// swallowed.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MemoryDriver } from "../../backends/memory/driver.ts";
import type { DriverEvent, LockLease } from "../../mod.ts";
import { BaseStore, openStore, type StoreEvent } from "../../mod.ts";
import { eventually, StreamReader, text } from "../../testing/harness.ts";
import { type EtcdService, startEtcd } from "../services/etcd.ts";
import { type RedisService, startRedis } from "../services/redis.ts";
import { startTcpProxy, type TcpProxy } from "../services/tcp_proxy.ts";
import { collectEvents } from "../fixtures/events.ts";

/** A memory driver whose leases the test can declare lost. */
class LosingDriver extends MemoryDriver {
  readonly lost = new AbortController();
  emit: ((event: DriverEvent) => void) | undefined;

  override async lock(
    ...args: Parameters<MemoryDriver["lock"]>
  ): Promise<LockLease> {
    const lease = await super.lock(...args);
    return {
      lastIndex: lease.lastIndex,
      lost: this.lost.signal,
      release: (deleteKey, signal) => lease.release(deleteKey, signal),
    };
  }

  observe(emit: (event: DriverEvent) => void): void {
    this.emit = emit;
  }
}

describe("store events", () => {
  test("a lost lock is a lock-lost event with its key and reason", async () => {
    const driver = new LosingDriver("events-1");
    await using store = new BaseStore(driver);
    const { seen } = collectEvents(store);
    const lock = await store.lock("jobs/nightly", { ttl: 60_000 });
    driver.lost.abort(new Error("session expired"));
    assert.ok(lock.lost.aborted);
    assert.equal(seen.length, 1);
    const event = seen[0] as Extract<StoreEvent, { type: "lock-lost" }>;
    assert.equal(event.type, "lock-lost");
    assert.equal(event.backend, "memory");
    assert.equal(event.key, "jobs/nightly");
    assert.match(event.reason, /the backend reported it gone/);
    assert.equal(event.error, lock.lost.reason);
    // Unlocking a lost lock reports the loss again.
    await assert.rejects(lock.unlock(), /lost/);
  });

  test("what the driver reports gets the backend; on() stops with its off()", async () => {
    const driver = new LosingDriver("events-2");
    await using store = new BaseStore(driver);
    const { seen, off } = collectEvents(store);
    const failure = new Error("socket hang up");
    driver.emit!({ type: "error", source: "connection", error: failure });
    assert.deepEqual(seen, [{
      type: "error",
      source: "connection",
      error: failure,
      backend: "memory",
    }]);
    // Plain EventTarget listeners get a CustomEvent with the same detail.
    let detail: unknown;
    store.events.addEventListener("retry", (e) => {
      detail = (e as CustomEvent).detail;
    });
    driver.emit!({
      type: "retry",
      operation: "get",
      attempt: 2,
      error: failure,
    });
    assert.equal((detail as { attempt: number }).attempt, 2);
    off();
    driver.emit!({ type: "error", source: "connection", error: failure });
    assert.equal(seen.length, 2);
  });
});

describe("store events on etcd and Redis, through a proxy that cuts the link", () => {
  let etcd: EtcdService;
  let redis: RedisService;
  let etcdProxy: TcpProxy;
  let redisProxy: TcpProxy;
  before(async () => {
    etcd = await startEtcd();
    redis = await startRedis();
    etcdProxy = await startTcpProxy(etcd.port);
    redisProxy = await startTcpProxy(redis.port);
  });
  after(async () => {
    await etcdProxy?.close();
    await redisProxy?.close();
    await etcd?.stop();
    await redis?.stop();
  });

  test("etcd: a cut watch stream is retried, reconnects and its watch resumes", async () => {
    await using store = await openStore(`etcd://127.0.0.1:${etcdProxy.port}`);
    await using direct = await openStore(etcd.url);
    const { seen } = collectEvents(store);
    const watch = new StreamReader(store.watch("ev/k"));
    assert.equal(await watch.next(), null);
    await etcdProxy.cut();
    await direct.put("ev/k", "while cut");
    await etcdProxy.resume();
    assert.equal(text(await watch.next(30_000)), "while cut");
    await eventually(
      "reconnect and watch-resume",
      30_000,
      () =>
        Promise.resolve(
          seen.some((e) => e.type === "reconnect") &&
            seen.some((e) => e.type === "watch-resume" && e.key === "ev/k"),
        ),
    );
    const retry = seen.find((e) => e.type === "retry");
    assert.ok(
      retry && retry.backend === "etcd",
      JSON.stringify(seen.map((e) => e.type)),
    );
    await watch.cancel();
  });

  test("redis: a dropped connection's errors and its reconnection are events", async () => {
    await using store = await openStore(`redis://127.0.0.1:${redisProxy.port}`);
    await store.put("ev/r", "1");
    const { seen } = collectEvents(store);
    await redisProxy.cut();
    await eventually(
      "an error event",
      30_000,
      () => Promise.resolve(seen.some((e) => e.type === "error")),
    );
    await redisProxy.resume();
    await eventually(
      "a reconnect event",
      30_000,
      () => Promise.resolve(seen.some((e) => e.type === "reconnect")),
    );
    assert.equal(text(await store.get("ev/r")), "1");
    const error = seen.find((e) => e.type === "error")!;
    assert.equal(error.backend, "redis");
  });
});
