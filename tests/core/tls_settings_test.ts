// A typo in the `tls` setting is refused by every network backend, before
// it connects anywhere: `rejectUnauthorised` must not silently leave
// certificate checking as it was. No server is needed: a listener counts
// the connections it gets, and must get none.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { after, before, describe, test } from "node:test";
import { InvalidConfigurationError, openStore, type Store } from "../../mod.ts";
import { ConsulStore } from "../../backends/consul/mod.ts";
import { DynamoDBStore } from "../../backends/dynamodb/mod.ts";
import { EtcdStore } from "../../backends/etcd/mod.ts";
import { RedisStore } from "../../backends/redis/mod.ts";
import { ZookeeperStore } from "../../backends/zookeeper/mod.ts";

/** A store that connected would wait this long before giving up. */
const CONNECT_TIMEOUT_MS = 30_000;

/**
 * Refusing a setting needs no connection: bound by the mechanism, under the
 * connect timeout a connecting store would wait out in full.
 */
const AT_ONCE_MS = CONNECT_TIMEOUT_MS;

const TYPO = { rejectUnauthorised: false };
const CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" };

let listener: Server;
let port: number;
let connections = 0;

const opens: Record<string, () => Promise<Store>> = {
  "redis by URL": () => openStore(`rediss://127.0.0.1:${port}`, options()),
  "redis by connect()": () =>
    RedisStore.connect({ endpoints: [`127.0.0.1:${port}`], ...options() }),
  "etcd by URL": () => openStore(`etcds://127.0.0.1:${port}`, options()),
  "etcd by connect()": () =>
    EtcdStore.connect({ endpoints: [`127.0.0.1:${port}`], ...options() }),
  "consul by URL": () => openStore(`consuls://127.0.0.1:${port}`, options()),
  "consul by connect()": () =>
    ConsulStore.connect({ endpoints: [`127.0.0.1:${port}`], ...options() }),
  "zookeeper by URL": () => openStore(`zks://127.0.0.1:${port}`, options()),
  "zookeeper by connect()": () =>
    ZookeeperStore.connect({ endpoints: [`127.0.0.1:${port}`], ...options() }),
  "dynamodb by URL": () =>
    openStore(
      `dynamodb://t?region=us-east-1&endpoint=${
        encodeURIComponent(`https://127.0.0.1:${port}`)
      }`,
      { ...CREDENTIALS, ...options() },
    ),
  "dynamodb by connect()": () =>
    DynamoDBStore.connect({
      table: "t",
      region: "us-east-1",
      endpoint: `https://127.0.0.1:${port}`,
      ...CREDENTIALS,
      ...options(),
    }),
};

// The typo is what a caller without type checking (or with a cast) passes.
function options() {
  return { tls: TYPO as never, connectTimeout: CONNECT_TIMEOUT_MS };
}

describe("a typo in the tls setting", () => {
  before(async () => {
    listener = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) =>
      listener.listen(0, "127.0.0.1", resolve)
    );
    port = (listener.address() as { port: number }).port;
  });
  after(async () => {
    await new Promise((resolve) => listener.close(resolve));
  });

  for (const [what, open] of Object.entries(opens)) {
    test(`is refused by ${what}, naming the field, before connecting`, async () => {
      const started = Date.now();
      const opening = open();
      await assert.rejects(
        opening,
        (error: Error) =>
          error instanceof InvalidConfigurationError &&
          /TLS setting "rejectUnauthorised" \(known: ca, cert, key, servername, rejectUnauthorized\)/
            .test(error.message),
      );
      assert.ok(Date.now() - started < AT_ONCE_MS, "at once");
      // Give a connection that was started the time to arrive.
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(connections, 0, "no connection was made");
    });
  }

  test("a field of the wrong type is refused the same way", async () => {
    await assert.rejects(
      openStore(`rediss://127.0.0.1:${port}`, {
        tls: { rejectUnauthorized: "no" } as never,
        connectTimeout: CONNECT_TIMEOUT_MS,
      }),
      (error: Error) =>
        error instanceof InvalidConfigurationError &&
        /The redis setting "tls.rejectUnauthorized" must be a boolean/.test(
          error.message,
        ),
    );
    assert.equal(connections, 0);
  });
});
