// How a ZooKeeper store is opened and configured: URL forms, settings,
// the typed entry points, and the request size the server accepts.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  InvalidConfigurationError,
  newStore,
  openStore,
  ValueTooLargeError,
} from "../../mod.ts";
import { ZookeeperStore } from "../../backends/zookeeper/mod.ts";
import {
  startZookeeper,
  zkCli,
  type ZookeeperService,
} from "../services/zookeeper.ts";

/** The server's jute.maxbuffer in these tests: 64 KiB instead of 1 MiB. */
const SMALL_BUFFER = 64 * 1024;

let server: ZookeeperService;
const text = (pair: { value: Uint8Array } | null) =>
  pair === null ? null : new TextDecoder().decode(pair.value);

describe("zookeeper store settings", () => {
  before(async () => {
    server = await startZookeeper({ maxBuffer: SMALL_BUFFER });
  });
  after(async () => {
    await server?.stop();
  });

  test("the URL's path is the chroot every key lives under", async () => {
    await using store = await openStore(`${server.url}/apps/one/`);
    await store.put("k", "v");
    assert.equal(zkCli(server.port, "get", "/apps/one/k"), "v");
    assert.equal(store.backend, "zookeeper");
  });

  test("typed options, newStore and URL parameters open the same store", async () => {
    const host = `127.0.0.1:${server.port}`;
    await using typed = await ZookeeperStore.connect({
      endpoints: [host],
      chroot: "/apps/two",
      sessionTimeout: 4_000,
      tickTime: 200,
      maxBufferSize: SMALL_BUFFER,
    });
    await using registry = await newStore("zookeeper", [host], {
      chroot: "/apps/two",
      maxBufferSize: SMALL_BUFFER,
    });
    await using byUrl = await openStore(
      `${server.url}/apps/two?tickTime=200&sessionTimeout=4000&maxBufferSize=${SMALL_BUFFER}`,
    );
    // As an option of openStore, endpoints win over the URL's servers, as
    // any option does (port 1 has no server).
    await using overridden = await openStore("zk://127.0.0.1:1/apps/two", {
      endpoints: [host],
    });
    // One name for the server list on every backend: the earlier `hosts`
    // is an unknown setting now.
    await assert.rejects(
      ZookeeperStore.connect({ hosts: [host] } as never),
      {
        name: "InvalidConfigurationError",
        message: /Unknown zookeeper setting "hosts"/,
      },
    );
    await typed.put("shared", "from typed");
    assert.equal(text(await overridden.get("shared")), "from typed");
    assert.equal(text(await registry.get("shared")), "from typed");
    assert.equal(text(await byUrl.get("shared")), "from typed");
    // The server's tick sets how late a dead holder's session goes.
    assert.equal(byUrl.limits.ttlGranularityMs, 200 + 250);
    assert.equal(registry.limits.ttlGranularityMs, 2_000 + 250);
  });

  test("unknown settings, bad hosts and bad chroots are configuration errors", async () => {
    for (
      const url of [
        `${server.url}?nonsense=1`,
        `${server.url}?sessionTimeout=soon`,
        `${server.url}/a//b`,
        `${server.url}/a/../b`,
        "zk://127.0.0.1:99999",
      ]
    ) {
      await assert.rejects(openStore(url), InvalidConfigurationError, url);
    }
    await assert.rejects(
      openStore(server.url, { username: "with:colon", password: "pw" }),
      InvalidConfigurationError,
    );
  });

  test("replies are bounded by maxReplyBytes, not by the request limit", async () => {
    // ZooKeeper sends a node's children in one reply whatever its
    // jute.maxbuffer: 8,000 names of 8 characters are 96 kB of reply.
    const names = Array.from(
      { length: 8_000 },
      (_, i) => ({ key: `wide/${String(i).padStart(8, "0")}`, value: "" }),
    );
    await using store = await openStore(
      `${server.url}/replies?maxBufferSize=${SMALL_BUFFER}`,
    );
    await store.putMany(names);
    assert.ok(8_000 * 12 > SMALL_BUFFER);
    assert.equal((await store.list("wide")).length, 8_000);
    // A store that takes smaller replies fails the call, and only the call.
    await using small = await openStore(
      `${server.url}/replies?maxBufferSize=${SMALL_BUFFER}&maxReplyBytes=${SMALL_BUFFER}`,
    );
    await assert.rejects(
      small.list("wide"),
      (error: Error) =>
        error.name === "StoreError" &&
        /exceeds maxReplyBytes \(\d+ bytes\): raise it/.test(error.message),
    );
    await small.put("wide-after", "fine");
    assert.equal(text(await small.get("wide-after")), "fine");
    await store.deleteTree("wide");
    // A bound below the request limit could not read back what it wrote.
    await assert.rejects(
      openStore(`${server.url}?maxBufferSize=5000&maxReplyBytes=4000`),
      (error: Error) =>
        error.name === "InvalidConfigurationError" &&
        /maxReplyBytes \(4000\) must be at least maxBufferSize \(5000\)/
          .test(error.message),
    );
  });

  test("values are checked against the server's maxBufferSize before sending", async () => {
    await using store = await openStore(
      `${server.url}/big?maxBufferSize=${SMALL_BUFFER}`,
    );
    const max = store.limits.maxValueBytes;
    assert.ok(max > SMALL_BUFFER / 2 && max < SMALL_BUFFER, `${max}`);
    const biggest = new Uint8Array(max).fill(7);
    await store.put("deep/path/to/the/biggest/value", biggest);
    assert.deepEqual(
      (await store.get("deep/path/to/the/biggest/value"))?.value,
      biggest,
    );
    await assert.rejects(
      store.put("over", new Uint8Array(max + 1)),
      ValueTooLargeError,
    );
    // An atomic operation is one request: it must fit as a whole.
    const op = store.atomic();
    for (let i = 0; i < 4; i++) op.put(`many/${i}`, biggest);
    await assert.rejects(
      op.commit(),
      (error: Error) =>
        error.name === "InvalidArgumentError" &&
        /exceeds ZooKeeper's maxBufferSize/.test(error.message),
    );
    assert.deepEqual(await store.list("many"), []);
    // The store still works: nothing broke its connection.
    await store.put("after", "fine");
    assert.equal(text(await store.get("after")), "fine");
  });
});
