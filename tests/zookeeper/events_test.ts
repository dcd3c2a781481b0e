// Store events on ZooKeeper, through a proxy that cuts the link: the
// session's attempts to connect again are retries, its return a reconnect,
// and each watch a watch-resume that delivers what changed meanwhile; a call
// the dropped connection cut off in flight is retried; a session that
// expired while the link was down is an error event.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
// From the entry point: under Node that is the npm build the store comes from.
import { openStore } from "../../mod.ts";
import {
  eventually,
  sleep,
  StreamReader,
  text,
} from "../../testing/harness.ts";
import { startTcpProxy, type TcpProxy } from "../services/tcp_proxy.ts";
import {
  startZookeeper,
  type ZookeeperService,
} from "../services/zookeeper.ts";
import { collectEvents, eventTypes } from "../fixtures/events.ts";

/**
 * The server's longest session: ZooKeeper's default of 20 ticks would be
 * 4 s with the 200 ms tick here, short enough for a loaded machine to let
 * a session expire in a test that wants it to survive.
 */
const MAX_SESSION_MS = 60_000;

/** The session of stores that must keep theirs through a short cut. */
const LONG_SESSION_MS = 30_000;

/** The session of the store whose session is to expire (5 ticks). */
const SHORT_SESSION_MS = 1_000;

/** Bound on every wait: generous, the machine may be loaded. */
const WAIT_MS = 30_000;

describe("store events on ZooKeeper, through a proxy that cuts the link", () => {
  let server: ZookeeperService;
  let proxy: TcpProxy;
  before(async () => {
    server = await startZookeeper({
      config: [`maxSessionTimeout=${MAX_SESSION_MS}`],
    });
    proxy = await startTcpProxy(server.port);
  });
  // A test that failed mid-cut leaves the next one a working link.
  afterEach(() => proxy.resume());
  after(async () => {
    await proxy?.close();
    await server?.stop();
  });

  const open = (name: string, viaProxy: boolean, sessionMs: number) =>
    openStore(
      `zk://127.0.0.1:${
        viaProxy ? proxy.port : server.port
      }/${name}?sessionTimeout=${sessionMs}`,
    );

  test("a cut link: the reconnection is retried and made, and watches resume", async () => {
    await using store = await open("events-cut", true, LONG_SESSION_MS);
    await using direct = await open("events-cut", false, LONG_SESSION_MS);
    const { seen } = collectEvents(store);
    const watch = new StreamReader(store.watch("ev/k"));
    const tree = new StreamReader(store.watchTree("ev/tree"));
    assert.equal(await watch.next(), null);
    assert.deepEqual(await tree.next(), []);

    await proxy.cut();
    await direct.put("ev/k", "while cut");
    await direct.put("ev/tree/x", "x");
    // The proxy refuses connections: the session's attempts fail.
    await eventually(
      "a retry of the connection",
      WAIT_MS,
      () => Promise.resolve(seen.some((e) => e.type === "retry")),
    );
    await proxy.resume();

    assert.equal(
      text(await watch.until((pair) => pair !== null, WAIT_MS)),
      "while cut",
    );
    assert.deepEqual(
      (await tree.until((pairs) => pairs.length === 1, WAIT_MS)).map((p) =>
        p.key
      ),
      ["ev/tree/x"],
    );
    await eventually(
      "a reconnect and both watches' watch-resume",
      WAIT_MS,
      () =>
        Promise.resolve(
          seen.some((e) => e.type === "reconnect") &&
            seen.some((e) => e.type === "watch-resume" && e.key === "ev/k") &&
            seen.some((e) => e.type === "watch-resume" && e.key === "ev/tree/"),
        ),
    );
    const retry = seen.find((e) => e.type === "retry")!;
    assert.equal(retry.backend, "zookeeper");
    assert.equal(retry.operation, "connect");
    assert.equal(retry.attempt, 1);
    const reconnect = seen.find((e) => e.type === "reconnect")!;
    assert.equal(reconnect.backend, "zookeeper");
    assert.equal(reconnect.server, `127.0.0.1:${proxy.port}`, eventTypes(seen));
    // The session survived the cut: nothing expired.
    assert.ok(
      !seen.some((e) => e.type === "error" && e.source === "session"),
      eventTypes(seen),
    );
    await watch.cancel();
    await tree.cancel();
  });

  test("a call the dropped connection cut off in flight is retried", async () => {
    await using store = await open("events-call", true, LONG_SESSION_MS);
    await using direct = await open("events-call", false, LONG_SESSION_MS);
    await direct.put("ev/call", "v");
    const { seen } = collectEvents(store);
    // Sent into a link that lets nothing through, the read stays in flight
    // until the connection drops. One a loaded machine sends only after the
    // drop waits for the next connection instead: the round is redone.
    await eventually("a read cut off in flight", WAIT_MS, async () => {
      proxy.partition();
      const reading = store.get("ev/call");
      await sleep(200);
      await proxy.resume();
      assert.equal(text(await reading), "v");
      return seen.some((e) => e.type === "retry" && e.operation === "get");
    });
    const retry = seen.find((e) => e.type === "retry" && e.operation === "get");
    assert.ok(retry && retry.type === "retry", eventTypes(seen));
    assert.equal(retry.backend, "zookeeper");
    assert.equal(retry.attempt, 1);
    assert.match(String(retry.error), /CONNECTIONLOSS/);
  });

  test("a session that expires while the link is down is an error event", async () => {
    await using store = await open("events-expiry", true, SHORT_SESSION_MS);
    await using direct = await open("events-expiry", false, LONG_SESSION_MS);
    const { seen } = collectEvents(store);
    const watch = new StreamReader(store.watch("ev/expiry"));
    assert.equal(await watch.next(), null);

    proxy.partition();
    await eventually(
      "the session's expiry",
      WAIT_MS,
      () =>
        Promise.resolve(
          seen.some((e) => e.type === "error" && e.source === "session"),
        ),
    );
    await direct.put("ev/expiry", "after the expiry");
    await proxy.resume();

    assert.equal(
      text(await watch.until((pair) => pair !== null, WAIT_MS)),
      "after the expiry",
    );
    await eventually(
      "a reconnect on the new session",
      WAIT_MS,
      () => Promise.resolve(seen.some((e) => e.type === "reconnect")),
    );
    const expired = seen.find((e) =>
      e.type === "error" && e.source === "session"
    )!;
    assert.equal(expired.backend, "zookeeper");
    assert.match(String(expired.type === "error" && expired.error), /expired/);
    await watch.cancel();
  });
});
