// Opening a DynamoDB store: the table found, created or refused, settings
// from the URL, and deadlines that hold when DynamoDB does not answer.
import assert from "node:assert/strict";
import { createServer, type Server, Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { after, before, describe, test } from "node:test";
import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
} from "@aws-sdk/client-dynamodb";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import {
  InvalidConfigurationError,
  NotReachableError,
  openStore,
  type Store,
} from "../../mod.ts";
import { makeCertificates } from "../services/certificates.ts";
import { startTcpProxy } from "../services/tcp_proxy.ts";
import { DynamoDBStore } from "../../backends/dynamodb/mod.ts";
import { DEFAULT_REQUEST_TIMEOUT_MS } from "../../backends/dynamodb/options.ts";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "../../core/config.ts";
import { tableDefinition } from "../../backends/dynamodb/table.ts";
import {
  type DynamoDBService,
  LOCAL_CREDENTIALS,
  localClient,
  startDynamoDB,
} from "../services/dynamodb.ts";

let dynamodb: DynamoDBService;
const stores: Store[] = [];

before(async () => {
  dynamodb = await startDynamoDB();
});

after(async () => {
  await Promise.allSettled(stores.map((store) => store.close()));
  await dynamodb?.stop();
});

async function kept<T extends Store>(store: Promise<T>): Promise<T> {
  const opened = await store;
  stores.push(opened);
  return opened;
}

/** A TCP server on loopback that accepts connections and never answers. */
async function silentServer(): Promise<{ port: number; close(): void }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve())
  );
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

/**
 * A TLS proxy to `port` with a certificate of a fresh test CA: an `https`
 * endpoint that needs its own CA.
 */
async function tlsProxy(port: number) {
  const certs = makeCertificates();
  certs.remove(); // the PEM text is all the proxy needs
  const { serverCert: cert, serverKey: key } = certs;
  const sockets: Socket[] = [];
  const server = createTlsServer({ cert, key }, (client) => {
    const upstream = new Socket();
    sockets.push(client, upstream);
    upstream.connect(port, "127.0.0.1");
    client.pipe(upstream).pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  await new Promise<void>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve())
  );
  return {
    port: (server.address() as { port: number }).port,
    ca: certs.ca,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

describe("opening a DynamoDB store", () => {
  test("a missing table is an InvalidConfigurationError unless createTable is set", async () => {
    await assert.rejects(
      openStore(dynamodb.url("absent-table"), { ...LOCAL_CREDENTIALS }),
      (error: Error) =>
        error instanceof InvalidConfigurationError &&
        /does not exist.*createTable/.test(error.message),
    );
    await assert.rejects(
      localClient(dynamodb).send(
        new DescribeTableCommand({ TableName: "absent-table" }),
      ),
      (error: Error) => error.name === "ResourceNotFoundException",
    );
  });

  test("createTable creates the table with a stream of new and old images and TTL on ttl", async () => {
    const store = await kept(DynamoDBStore.connect({
      table: "created",
      endpoint: dynamodb.endpoint,
      region: "us-east-1",
      ...LOCAL_CREDENTIALS,
      createTable: true,
    }));
    assert.equal(store.streaming, true);
    const client = localClient(dynamodb);
    const { Table } = await client.send(
      new DescribeTableCommand({ TableName: "created" }),
    );
    assert.deepEqual(Table?.KeySchema, [
      { AttributeName: "pk", KeyType: "HASH" },
      { AttributeName: "key", KeyType: "RANGE" },
    ]);
    assert.deepEqual(Table?.StreamSpecification, {
      StreamEnabled: true,
      StreamViewType: "NEW_AND_OLD_IMAGES",
    });
    assert.equal(Table?.BillingModeSummary?.BillingMode, "PAY_PER_REQUEST");
    const ttl = await client.send(
      new DescribeTimeToLiveCommand({ TableName: "created" }),
    );
    assert.equal(ttl.TimeToLiveDescription?.TimeToLiveStatus, "ENABLED");
    assert.equal(ttl.TimeToLiveDescription?.AttributeName, "ttl");
  });

  test("stores creating the same table at once all open it", async () => {
    const opened = await Promise.all(
      Array.from({ length: 3 }, () =>
        kept(openStore(dynamodb.url("raced"), {
          ...LOCAL_CREDENTIALS,
          createTable: true,
        }))),
    );
    await opened[0].put("k", "v");
    assert.equal((await opened[2].get("k"))?.key, "k");
  });

  test("a table with another key schema is refused", async () => {
    await localClient(dynamodb).send(
      new CreateTableCommand({
        TableName: "foreign",
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      }),
    );
    await assert.rejects(
      openStore(dynamodb.url("foreign"), { ...LOCAL_CREDENTIALS }),
      (error: Error) =>
        error instanceof InvalidConfigurationError &&
        /key schema/.test(error.message),
    );
  });

  test("settings and credentials come from the URL; options override them", async () => {
    const endpoint = encodeURIComponent(dynamodb.endpoint);
    const store = await kept(openStore(
      `dynamodb://local:local@from-url?endpoint=${endpoint}&region=us-east-1` +
        `&createTable=true&watchMode=polling&pollInterval=250`,
    )) as DynamoDBStore;
    assert.equal(store.streaming, false);
    await store.put("a/b", "v");
    const streaming = await kept(openStore(
      `dynamodb://from-url?endpoint=${endpoint}&region=us-east-1&watchMode=polling`,
      { ...LOCAL_CREDENTIALS, watchMode: "auto" },
    )) as DynamoDBStore;
    assert.equal(streaming.streaming, true);
    assert.equal((await streaming.get("a/b"))?.key, "a/b");
  });

  test("unknown or malformed settings are InvalidConfigurationError before any request", async () => {
    const url = dynamodb.url("settings");
    for (
      const [what, opening] of [
        ["an unknown setting", openStore(`${url}&bogus=1`, LOCAL_CREDENTIALS)],
        [
          "a bad watchMode",
          openStore(url, { ...LOCAL_CREDENTIALS, watchMode: "sometimes" }),
        ],
        [
          "a non-positive interval",
          openStore(url, { ...LOCAL_CREDENTIALS, pollInterval: 0 }),
        ],
        [
          "a key id without secret",
          openStore(url, { accessKeyId: "local" }),
        ],
        ["an invalid table name", openStore("dynamodb://a?region=us-east-1")],
        ["two tables", openStore("dynamodb://one,two?region=us-east-1")],
        [
          "a client of another service",
          DynamoDBStore.connect({
            table: "settings",
            client: new DynamoDBStreamsClient({ region: "us-east-1" }),
          }),
        ],
        [
          "a client and a region",
          DynamoDBStore.connect({
            table: "settings",
            client: localClient(dynamodb),
            region: "eu-west-1",
          }),
        ],
      ] as const
    ) {
      await assert.rejects(opening, InvalidConfigurationError, what);
    }
  });

  test("streams are required with watchMode streams, and a table without one is polled", async () => {
    await localClient(dynamodb).send(
      new CreateTableCommand(tableDefinition("streamless", false)),
    );
    await assert.rejects(
      openStore(dynamodb.url("streamless"), {
        ...LOCAL_CREDENTIALS,
        watchMode: "streams",
      }),
      InvalidConfigurationError,
    );
    const polled = await kept(
      openStore(dynamodb.url("streamless"), { ...LOCAL_CREDENTIALS }),
    ) as DynamoDBStore;
    assert.equal(polled.streaming, false);
  });

  test("an endpoint that accepts connections but never answers gives NotReachableError within connectTimeout", async () => {
    const silent = await silentServer();
    try {
      const started = Date.now();
      await assert.rejects(
        openStore(
          `dynamodb://silent?endpoint=http%3A%2F%2F127.0.0.1%3A${silent.port}&region=us-east-1`,
          { ...LOCAL_CREDENTIALS, connectTimeout: 1_000 },
        ),
        NotReachableError,
      );
      const took = Date.now() - started;
      // A server that never answers can only be given up on by the
      // deadline: not before the 1 s asked for, and well before the 10 s
      // default a store that ignored connectTimeout would wait.
      assert.ok(took >= 950, `gave up after ${took} ms, before connectTimeout`);
      assert.ok(took < DEFAULT_CONNECT_TIMEOUT_MS / 2, `took ${took} ms`);
    } finally {
      silent.close();
    }
  });

  test("a request to a server that stops answering fails after requestTimeout, not never", async () => {
    const proxy = await startTcpProxy(dynamodb.port);
    try {
      const store = await kept(DynamoDBStore.connect({
        table: "frozen",
        endpoint: `http://127.0.0.1:${proxy.port}`,
        region: "us-east-1",
        ...LOCAL_CREDENTIALS,
        createTable: true,
        requestTimeout: 1_000,
        maxAttempts: 1,
      }));
      await store.put("k", "v");
      proxy.partition();
      const started = Date.now();
      await assert.rejects(store.get("k"), NotReachableError);
      const took = Date.now() - started;
      // Not before the 1 s asked for, and well before the 10 s default a
      // store that ignored requestTimeout would wait (or forever).
      assert.ok(took >= 950, `gave up after ${took} ms, before requestTimeout`);
      assert.ok(took < DEFAULT_REQUEST_TIMEOUT_MS / 2, `took ${took} ms`);
    } finally {
      await proxy.close();
    }
  });

  test("an https endpoint with its own CA works with tls.ca, and is refused without", async () => {
    const proxy = await tlsProxy(dynamodb.port);
    try {
      const endpoint = `https://127.0.0.1:${proxy.port}`;
      const store = await kept(DynamoDBStore.connect({
        table: "over-tls",
        endpoint,
        region: "us-east-1",
        ...LOCAL_CREDENTIALS,
        createTable: true,
        tls: { ca: proxy.ca },
      }));
      await store.put("k", "over tls");
      assert.equal((await store.get("k"))?.key, "k");
      await assert.rejects(
        DynamoDBStore.connect({
          table: "over-tls",
          endpoint,
          region: "us-east-1",
          ...LOCAL_CREDENTIALS,
          connectTimeout: 2_000,
        }),
        (error: Error) =>
          error instanceof NotReachableError &&
          /certificate/i.test(error.message),
      );
    } finally {
      proxy.close();
    }
  });
});
