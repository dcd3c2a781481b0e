// Store events on Consul, through a proxy that cuts the link to the agent:
// the blocking queries of watches and of a held lock's monitor are retried
// and resume, the lock's session renewals are retried, and the agent's
// first answer after the cut is a reconnect. Against the Consul double.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import { ConsulStore } from "../../backends/consul/mod.ts";
import { type ConsulDouble, startConsulDouble } from "../consul_double/mod.ts";
import { startTcpProxy, type TcpProxy } from "../services/tcp_proxy.ts";
import { eventually, StreamReader, text } from "../../testing/harness.ts";
import { collectEvents, eventTypes } from "../fixtures/events.ts";

/** Bound on every wait: generous, the machine may be loaded. */
const WAIT_MS = 30_000;

/**
 * A lock's TTL: it is renewed every third of it, so a cut is felt by a
 * renewal within 7 s, and the lock outlives a cut of twice that.
 */
const LOCK_TTL_MS = 20_000;

describe("store events on Consul, through a proxy that cuts the link", () => {
  let consul: ConsulDouble;
  let proxy: TcpProxy;
  let store: ConsulStore;
  let direct: ConsulStore;

  before(async () => {
    consul = await startConsulDouble({ sessionTtlMinMs: 1_000 });
    proxy = await startTcpProxy(Number(consul.address.split(":").pop()));
    // Failures are retried for longer than any cut here lasts.
    store = await ConsulStore.connect({
      endpoints: [`127.0.0.1:${proxy.port}`],
      sessionTtlMin: 1_000,
      retryTimeout: 60_000,
    });
    direct = await ConsulStore.connect({ endpoints: [consul.address] });
  });

  // A test that failed mid-cut leaves the next one a working link.
  afterEach(() => proxy.resume());

  after(async () => {
    await store?.close();
    await direct?.close();
    await proxy?.close();
    await consul?.close();
  });

  test("a cut link: watches retry their queries, then resume with what changed", async () => {
    const { seen } = collectEvents(store);
    const watch = new StreamReader(store.watch("ev/k"));
    const tree = new StreamReader(store.watchTree("ev/tree"));
    assert.equal(await watch.next(), null);
    assert.deepEqual(await tree.next(), []);

    await proxy.cut();
    await direct.put("ev/k", "while cut");
    await direct.put("ev/tree/x", "x");
    await eventually(
      "both watches retry",
      WAIT_MS,
      () =>
        Promise.resolve(
          seen.some((e) => e.type === "retry" && e.operation === "watch") &&
            seen.some((e) => e.type === "retry" && e.operation === "watchTree"),
        ),
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
    assert.equal(retry.backend, "consul");
    assert.equal(retry.attempt, 1);
    const reconnect = seen.find((e) => e.type === "reconnect")!;
    assert.equal(reconnect.backend, "consul");
    assert.equal(reconnect.server, `127.0.0.1:${proxy.port}`, eventTypes(seen));
    await watch.cancel();
    await tree.cancel();
  });

  test("a cut link: a held lock's renewals and monitor are retried", async () => {
    const lock = await store.lock("ev/lock", { ttl: LOCK_TTL_MS });
    const { seen } = collectEvents(store);
    await proxy.cut();
    await eventually(
      "a renewal's retry and the monitor's",
      WAIT_MS,
      () =>
        Promise.resolve(
          seen.some((e) =>
            e.type === "retry" && e.operation === "renewSession"
          ) &&
            seen.some((e) =>
              e.type === "retry" && e.operation === "lockMonitor"
            ),
        ),
    );
    await proxy.resume();
    await eventually(
      "the monitor's watch-resume",
      WAIT_MS,
      () =>
        Promise.resolve(
          seen.some((e) => e.type === "watch-resume" && e.key === "ev/lock"),
        ),
    );
    const renewal = seen.find((e) =>
      e.type === "retry" && e.operation === "renewSession"
    )!;
    assert.equal(renewal.backend, "consul");
    assert.equal(lock.lost.aborted, false, eventTypes(seen));
    await lock.unlock();
  });
});
