// ZooKeeper sessions across network trouble, through a proxy that can drop
// or cut the connection: a dropped connection keeps the session (locks stay
// held, watches catch up); a partition longer than the session timeout
// loses it (locks report `lost` before anyone else can take them, watches
// resume on a new session with the final state).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createServer, type Socket } from "node:net";
// From the entry point: under Node that is the npm build the store comes from.
import { LockLostError, openStore, type Store } from "../../mod.ts";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "../../core/config.ts";
import { DEFAULT_SESSION_TIMEOUT_MS } from "../../backends/zookeeper/config.ts";
import { startTcpProxy, type TcpProxy } from "../services/tcp_proxy.ts";
import {
  startZookeeper,
  type ZookeeperService,
} from "../services/zookeeper.ts";
import { StreamReader } from "../../testing/harness.ts";

const text = (pair: { value: Uint8Array } | null) =>
  pair === null ? null : new TextDecoder().decode(pair.value);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The session timeout the proxied store asks for (5 ticks of 200 ms). */
const SESSION_MS = 1_000;

/**
 * The server's longest session: ZooKeeper's default of 20 ticks would be
 * 4 s here, close to SESSION_MS; a minute lets a store that did not ask for
 * SESSION_MS get the 20 s default instead, far from it.
 */
const MAX_SESSION_MS = 60_000;

let server: ZookeeperService;
let proxy: TcpProxy;

describe("zookeeper sessions across network trouble", () => {
  before(async () => {
    server = await startZookeeper({
      config: [`maxSessionTimeout=${MAX_SESSION_MS}`],
    });
    proxy = await startTcpProxy(server.port);
  });
  after(async () => {
    await proxy?.close();
    await server?.stop();
  });

  const open = (name: string, viaProxy: boolean): Promise<Store> =>
    openStore(
      `zk://127.0.0.1:${
        viaProxy ? proxy.port : server.port
      }/${name}?tickTime=200&sessionTimeout=${SESSION_MS}`,
    );

  test("a dropped connection keeps the session: the lock stays, watches catch up", async () => {
    await using a = await open("drop", true);
    await using b = await open("drop", false);
    const lock = await a.lock("leader", { ttl: SESSION_MS, value: "a" });
    const watch = new StreamReader(a.watch("state"));
    const tree = new StreamReader(a.watchTree("tree"));
    assert.equal(await watch.next(), null);
    assert.deepEqual(await tree.next(), []);
    const waiting = b.lock("leader", { value: "b" });

    proxy.drop();
    await b.put("state", "written while a reconnects");
    await b.put("tree/x", "x");

    const state = await watch.until((pair) => pair !== null);
    assert.equal(text(state), "written while a reconnects");
    await tree.until((pairs) => pairs.length === 1);
    await sleep(2 * SESSION_MS);
    assert.equal(lock.lost.aborted, false, "the session survived");
    assert.equal(text(await b.get("leader")), "a", "b still waits");
    await lock.unlock();
    await (await waiting).unlock();
    await watch.cancel();
    await tree.cancel();
  });

  test("a partition longer than the session loses the lock first, then watches resume", async () => {
    await using a = await open("cut", true);
    await using b = await open("cut", false);
    const lock = await a.lock("leader", { ttl: SESSION_MS, value: "a" });
    let lostAt = 0;
    lock.lost.addEventListener("abort", () => (lostAt = Date.now()));
    const watch = new StreamReader(a.watch("state"));
    const tree = new StreamReader(a.watchTree("tree"));
    assert.equal(await watch.next(), null);
    assert.deepEqual(await tree.next(), []);
    const waiting = b.lock("leader", { value: "b" });

    const cutAt = Date.now();
    proxy.partition();
    await b.put("state", "written during the partition");
    await b.put("tree/x", "x");
    // ZooKeeper expires a's session, and b gets the lock.
    const taken = await waiting;
    const takenAt = Date.now();
    assert.ok(lostAt > 0, "a was told it lost the lock");
    assert.ok(lostAt <= takenAt, "a knew before b took it");
    // b waited for a's session of SESSION_MS to expire, not for one of the
    // 20 s default (what a store that ignored sessionTimeout would get):
    // half of that leaves a loaded machine seconds for ZooKeeper's expiry.
    assert.ok(
      takenAt - cutAt < DEFAULT_SESSION_TIMEOUT_MS / 2,
      `b waited ${takenAt - cutAt} ms`,
    );
    assert.equal(text(await b.get("leader")), "b");

    await proxy.resume();
    // a's watches come back on a new session with what they missed.
    const state = await watch.until((pair) => pair !== null);
    assert.equal(text(state), "written during the partition");
    assert.deepEqual(
      (await tree.until((pairs) => pairs.length === 1)).map((p) => p.key),
      ["tree/x"],
    );
    await a.put("after", "a works again");
    assert.equal(text(await b.get("after")), "a works again");
    await taken.unlock();
    // a's lock was lost in the partition: unlocking it says so.
    await assert.rejects(lock.unlock(), LockLostError);
    await watch.cancel();
    await tree.cancel();
  });

  test("calls made while no server answers fail with NotReachableError, then work", async () => {
    await using a = await openStore(
      `zk://127.0.0.1:${proxy.port}/down?sessionTimeout=${SESSION_MS}`,
      { connectTimeout: 1_000 },
    );
    proxy.partition();
    try {
      await sleep(SESSION_MS);
      const started = Date.now();
      await assert.rejects(a.put("k", "v"), { name: "NotReachableError" });
      // Within the 1 s connectTimeout asked for: the 10 s default would take
      // at least all of it.
      assert.ok(Date.now() - started < DEFAULT_CONNECT_TIMEOUT_MS);
    } finally {
      await proxy.resume();
    }
    const watch = new StreamReader(a.watch("k"));
    assert.equal(await watch.next(), null);
    await watch.cancel();
    await a.put("k", "v");
    assert.equal(text(await a.get("k")), "v");
  });

  test("a server that takes the connection and never answers is named in the error", async () => {
    const sockets: Socket[] = [];
    const mute = createServer((socket) => sockets.push(socket));
    await new Promise<void>((done) => mute.listen(0, "127.0.0.1", done));
    const { port } = mute.address() as { port: number };
    try {
      const error = await openStore(`zk://127.0.0.1:${port}`, {
        connectTimeout: 700,
      }).then(() => undefined, (e) => e);
      assert.equal(error?.name, "NotReachableError", String(error));
      assert.match(
        error.message,
        new RegExp(
          `127\\.0\\.0\\.1:${port} took the connection but has not answered`,
        ),
      );
      assert.ok(sockets.length >= 1, "the store connected");
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((done) => mute.close(done));
    }
  });
});
