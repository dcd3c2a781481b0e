// The Redis store over TLS (with a CA and a client certificate made by the
// test with openssl), as ACL users that may and may not, and on a chosen
// database number.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import {
  makeCertificates,
  type TestCertificates,
} from "../services/certificates.ts";
import {
  InvalidConfigurationError,
  NotReachableError,
  openStore,
  StoreError,
} from "../../mod.ts";
import { RedisStore } from "../../backends/redis/mod.ts";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "../../core/config.ts";
import { freePort } from "../services/process.ts";
import {
  confinedUserAcl,
  redisCli,
  type RedisService,
  startRedis,
} from "../services/redis.ts";
import { StreamReader, text } from "../../testing/harness.ts";

/**
 * How quickly a refused TLS or login must be reported: without retrying
 * until the connectTimeout (10 s by default), which a retrying store would
 * wait out in full.
 */
const FAIL_FAST_MS = DEFAULT_CONNECT_TIMEOUT_MS;

describe("redis: TLS with a CA and a client certificate", () => {
  let certs: TestCertificates;
  let strangers: TestCertificates;
  let redis: RedisService;
  let url: string;

  before(async () => {
    certs = makeCertificates();
    strangers = makeCertificates({ caName: "someone else" });
    const port = await freePort();
    redis = await startRedis({
      port,
      args: [
        "--port",
        "0",
        "--tls-port",
        String(port),
        "--tls-cert-file",
        certs.files.serverCert,
        "--tls-key-file",
        certs.files.serverKey,
        "--tls-ca-cert-file",
        certs.files.ca,
        "--tls-auth-clients",
        "yes",
      ],
    });
    url = `rediss://127.0.0.1:${port}`;
  });

  after(async () => {
    await redis?.stop();
    for (const dir of [certs?.dir, strangers?.dir]) {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  test("rediss:// with the CA and a client certificate does the whole job", async () => {
    await using store = await openStore(url, {
      tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
    });
    const watch = new StreamReader(store.watch("tls/key"));
    assert.equal(await watch.next(), null);
    await store.put("tls/key", "secret");
    assert.equal(text(await watch.next()), "secret");
    await watch.cancel();
    const lock = await store.lock("tls/lock");
    await lock.unlock();
    const cli = redisCli(redis.port, [
      "--tls",
      "--cacert",
      certs.files.ca,
      "--cert",
      certs.files.clientCert,
      "--key",
      certs.files.clientKey,
      "GET",
      "tls/key",
    ]);
    assert.equal(cli, "secret");
  });

  test("a server certificate from another CA is refused at once", async () => {
    const started = Date.now();
    const error = await openStore(url, {
      tls: { ca: strangers.ca, cert: certs.clientCert, key: certs.clientKey },
    }).then(() => undefined, (e) => e);
    assert.ok(error instanceof NotReachableError, String(error));
    assert.match(error.message, /TLS/);
    assert.ok(Date.now() - started < FAIL_FAST_MS, "no retrying");
  });

  test("without a client certificate the server refuses the store", async () => {
    const error = await openStore(url, {
      tls: { ca: certs.ca },
      connectTimeout: 2_000,
    }).then(() => undefined, (e) => e);
    assert.ok(error instanceof NotReachableError, String(error));
  });
});

describe("redis: ACL users and database numbers", () => {
  let redis: RedisService;

  before(async () => {
    redis = await startRedis();
    // An operator turns notifications on; the users below may not.
    redisCli(redis.port, ["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    redisCli(redis.port, confinedUserAcl("app", "app-secret", "app"));
    redisCli(redis.port, [
      "ACL",
      "SETUSER",
      "keys-only",
      "on",
      ">keys-secret",
      "resetkeys",
      "~app/*",
      "resetchannels",
      "&*",
      "+@all",
      "-@dangerous",
      "+info",
    ]);
  });

  after(async () => {
    await redis?.stop();
  });

  test("a user granted its prefix and the bookkeeping may do everything there", async () => {
    await using store = await RedisStore.connect({
      url: `redis://app:app-secret@127.0.0.1:${redis.port}`,
      prefix: "app",
    });
    const tree = new StreamReader(store.watchTree(""));
    assert.deepEqual(await tree.next(), []);
    await store.put("config/db", "10.0.0.5", { ttl: 60_000 });
    assert.deepEqual((await tree.next()).map((p) => p.key), ["config/db"]);
    const pair = (await store.get("config/db"))!;
    await store.atomicPut("config/db", "10.0.0.6", pair);
    const lock = await store.lock("jobs/nightly");
    await lock.unlock();
    assert.deepEqual((await store.list("")).map((p) => p.key), [
      "config/db",
      "jobs/nightly",
    ]);
    await store.deleteTree("");
    await tree.cancel();
  });

  test("the same user may not write outside its prefix, and the error says so", async () => {
    await using store = await RedisStore.connect({
      url: `redis://app:app-secret@127.0.0.1:${redis.port}`,
    });
    const error = await store.put("elsewhere/key", "v").then(
      () => undefined,
      (e) => e,
    );
    assert.ok(error instanceof StoreError, String(error));
    assert.match(error.message, /NOPERM/);
    assert.match(
      error.message,
      /~\/v\/\{\?\?\?\}PREFIX\/\*/,
      "says what to grant",
    );
  });

  test("a user granted only its keys, not their bookkeeping, is told what is missing", async () => {
    await using store = await RedisStore.connect({
      url: `redis://keys-only:keys-secret@127.0.0.1:${redis.port}`,
      prefix: "app",
    });
    const error = await store.put("key", "v").then(() => undefined, (e) => e);
    assert.ok(error instanceof StoreError, String(error));
    assert.match(error.message, /NOPERM.*~\/counter\/\*/);
  });

  test("a wrong password is a configuration error, at once", async () => {
    const started = Date.now();
    const error = await RedisStore.connect({
      url: `redis://app:wrong@127.0.0.1:${redis.port}`,
    }).then(() => undefined, (e) => e);
    assert.ok(error instanceof InvalidConfigurationError, String(error));
    assert.match(error.message, /WRONGPASS/);
    assert.match(error.message, /"app"/);
    assert.ok(Date.now() - started < FAIL_FAST_MS);
  });

  test("the database number in the URL is the database used, watches too", async () => {
    await using store = await openStore(`${redis.url}/3`);
    const watch = new StreamReader(store.watch("db/key"));
    assert.equal(await watch.next(), null);
    await store.put("db/key", "in three");
    assert.equal(text(await watch.next()), "in three");
    assert.equal(
      redisCli(redis.port, ["GET", "db/key"], { db: 3 }),
      "in three",
    );
    assert.equal(redisCli(redis.port, ["EXISTS", "db/key"], { db: 0 }), "0");
    await watch.cancel();
  });

  test("a database that does not exist is a configuration error", async () => {
    const error = await openStore(`${redis.url}/99`).then(
      () => undefined,
      (e) => e,
    );
    assert.ok(error instanceof InvalidConfigurationError, String(error));
    assert.match(error.message, /99/);
  });
});
