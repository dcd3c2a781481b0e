// Opening a Consul store: URL forms and settings, ACL tokens, datacenters,
// Enterprise namespaces and TLS with client certificates. Against Consul
// doubles configured for each (TLS runs the double in a child process).
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import {
  InvalidConfigurationError,
  newStore,
  NotReachableError,
  openStore,
  StoreError,
} from "../../mod.ts";
import { ConsulStore } from "../../backends/consul/mod.ts";
import { readSettings } from "../../backends/consul/options.ts";
import { type ConsulDouble, startConsulDouble } from "../consul_double/mod.ts";
import {
  makeCertificates,
  type TestCertificates,
} from "../services/certificates.ts";
import { type ConsulService, startConsul } from "../services/consul.ts";
import { StreamReader } from "../../testing/harness.ts";

const text = (pair: { value: Uint8Array } | null) =>
  pair && new TextDecoder().decode(pair.value);

describe("consul store settings", () => {
  let consul: ConsulDouble;

  before(async () => {
    consul = await startConsulDouble({ sessionTtlMinMs: 1_000 });
  });

  after(async () => {
    await consul.close();
  });

  test("consul:// and consuls:// default to the agent's ports", () => {
    assert.equal(readSettings({}).origin, "http://127.0.0.1:8500");
    assert.equal(readSettings({ endpoints: ["h"] }).origin, "http://h:8500");
    const secure = readSettings({ endpoints: ["h"], tls: true });
    assert.equal(secure.origin, "https://h:8501");
  });

  test("a URL gives the address, the prefix and settings", async () => {
    await using store = await openStore(
      `consul://${consul.address}/app/one?sessionTtlMin=1000&watchWait=5000`,
    );
    assert.equal(store.limits.ttlGranularityMs, 2_500);
    await store.put("k", "v");
    const raw = await fetch(`${consul.url}/v1/kv/app/one/k?raw`);
    assert.equal(await raw.text(), "v");
  });

  test("newStore takes the agent's address as its one endpoint", async () => {
    await using store = await newStore("consul", [consul.address], {
      sessionTtlMin: 1_000,
    });
    assert.equal(store.backend, "consul");
    await assert.rejects(
      newStore("consul", [consul.address, consul.address]),
      InvalidConfigurationError,
    );
  });

  test("unknown or out-of-range settings are InvalidConfigurationError", async () => {
    for (
      const options of [
        { tokn: "x" },
        { sessionTtlMin: 0 },
        { sessionTtlMin: 86_400_001 },
        { watchWait: 100 },
        { watchWait: 700_000 },
        { requestTimeout: -1 },
        { endpoints: ["h:1/path"] },
      ]
    ) {
      await assert.rejects(
        ConsulStore.connect(options as never),
        InvalidConfigurationError,
        JSON.stringify(options),
      );
    }
  });

  test("a session TTL minimum below the agent's is a configuration error", async () => {
    await using store = await ConsulStore.connect({
      endpoints: [consul.address],
      sessionTtlMin: 100,
    });
    await assert.rejects(
      store.put("k", "v", { ttl: 200 }),
      (error: Error) =>
        error instanceof InvalidConfigurationError &&
        /sessionTtlMin/.test(error.message),
    );
  });

  test("a datacenter the agent does not know fails to open", async () => {
    await using store = await ConsulStore.connect({
      endpoints: [consul.address],
      datacenter: "dc1",
    });
    await store.put("dc", "v");
    await assert.rejects(
      ConsulStore.connect({
        endpoints: [consul.address],
        datacenter: "elsewhere",
      }),
      InvalidConfigurationError,
    );
  });

  test("a user name and password are sent as HTTP basic authentication", async () => {
    // For an agent behind a proxy that wants them; a stand-in proxy here.
    const seen: Array<string | undefined> = [];
    const proxy = createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify("127.0.0.1:8300"));
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const { port } = proxy.address() as { port: number };
    try {
      const store = await openStore(
        `consul://al%40ice:p%3Ass@127.0.0.1:${port}`,
      );
      await store.close();
      assert.deepEqual(seen, [`Basic ${btoa("al@ice:p:ss")}`]);
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  test("namespaces on Consul CE are a configuration error", async () => {
    await using store = await ConsulStore.connect({
      endpoints: [consul.address],
      namespace: "team",
    });
    await assert.rejects(store.get("k"), InvalidConfigurationError);
  });
});

describe("consul stores with ACLs", () => {
  let consul: ConsulDouble;

  before(async () => {
    consul = await startConsulDouble({
      aclToken: "s3cret",
      sessionTtlMinMs: 1_000,
    });
  });

  after(async () => {
    await consul.close();
  });

  test("the token is sent with every request", async () => {
    await using store = await ConsulStore.connect({
      endpoints: [consul.address],
      token: "s3cret",
      sessionTtlMin: 1_000,
    });
    await store.put("acl/k", "v", { ttl: 5_000 });
    assert.equal(text(await store.get("acl/k")), "v");
    const watch = new StreamReader(store.watch("acl/k"));
    assert.equal(text(await watch.next()), "v");
    await watch.cancel();
    await (await store.lock("acl/lock")).unlock();
    assert.equal((await store.atomic().put("acl/t", "t").commit()).ok, true);
  });

  test("without a token the agent denies, and the error says so", async () => {
    await using store = await ConsulStore.connect({
      endpoints: [consul.address],
    });
    await assert.rejects(store.get("acl/k"), /Permission denied/);
    await assert.rejects(store.put("acl/k", "v"), /Permission denied/);
    const watch = new StreamReader(store.watch("acl/k"));
    const error = await watch.failure(5_000);
    assert.ok(error instanceof StoreError);
    assert.match((error as Error).message, /Permission denied/);
  });

  test("a token the agent does not know is a configuration error", async () => {
    await using store = await ConsulStore.connect({
      endpoints: [consul.address],
      token: "wrong",
    });
    await assert.rejects(store.get("acl/k"), InvalidConfigurationError);
  });
});

describe("consul stores in Enterprise namespaces", () => {
  let consul: ConsulDouble;

  before(async () => {
    consul = await startConsulDouble({
      namespaces: ["team"],
      sessionTtlMinMs: 1_000,
    });
  });

  after(async () => {
    await consul.close();
  });

  test("each namespace has its own keys, transactions, TTLs and locks", async () => {
    const options = { endpoints: [consul.address], sessionTtlMin: 1_000 };
    await using team = await ConsulStore.connect({
      ...options,
      namespace: "team",
    });
    await using plain = await ConsulStore.connect(options);
    await team.put("ns/k", "team");
    await plain.put("ns/k", "default");
    await team.put("ns/ttl", "t", { ttl: 5_000 });
    assert.equal(
      (await team.atomic().check("ns/new", null).put("ns/new", "n").commit())
        .ok,
      true,
    );
    assert.equal(text(await team.get("ns/k")), "team");
    assert.equal(text(await plain.get("ns/k")), "default");
    assert.equal(await plain.get("ns/new"), null);
    assert.deepEqual((await team.list("ns")).map((p) => p.key), [
      "ns/k",
      "ns/new",
      "ns/ttl",
    ]);
    const lock = await team.lock("ns/k", { value: "held" });
    // Free in the other namespace: a lock that team's held one blocked would
    // wait for good (it renews itself), so half the 20 s default TTL is
    // plenty for a free lock's round trips on a loaded machine.
    const other = await plain.lock("ns/k", {
      signal: AbortSignal.timeout(10_000),
    });
    await other.unlock();
    await lock.unlock();
  });
});

describe("consul stores over TLS with client certificates", () => {
  let consul: ConsulService;
  let certs: TestCertificates;

  before(async () => {
    certs = makeCertificates();
    consul = await startConsul({
      double: true,
      sessionTtlMinMs: 1_000,
      tls: {
        cert: certs.serverCert,
        key: certs.serverKey,
        ca: certs.ca,
        verifyIncoming: true,
      },
    });
  });

  after(async () => {
    await consul?.stop();
  });

  test("a store with the CA and a client certificate works", async () => {
    await using store = await openStore(consul.url, {
      ...consul.options,
      tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
    });
    await store.put("tls/k", "v");
    assert.equal(text(await store.get("tls/k")), "v");
    const watch = new StreamReader(store.watch("tls/k"));
    assert.equal(text(await watch.next()), "v");
    await store.put("tls/k", "w");
    assert.equal(text(await watch.next()), "w");
    await watch.cancel();
    await (await store.lock("tls/lock")).unlock();
  });

  test("without a client certificate, or trusting another CA, it is not reachable", async () => {
    await assert.rejects(
      openStore(consul.url, { tls: { ca: certs.ca }, connectTimeout: 2_000 }),
      NotReachableError,
    );
    await assert.rejects(
      openStore(consul.url, {
        tls: { cert: certs.clientCert, key: certs.clientKey },
        connectTimeout: 2_000,
      }),
      NotReachableError,
    );
  });
});
