// etcd started with TLS (a CA of the test's own, client certificates
// required) and etcd started with username/password auth: the store works
// with the right credentials, and says plainly what is wrong otherwise.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Etcd3, Range } from "etcd3";
import { NotReachableError, openStore, StoreError } from "../../mod.ts";
import { EtcdStore } from "../../backends/etcd/mod.ts";
import { StreamReader, text } from "../../testing/harness.ts";
import {
  type EtcdCertificates,
  etcdctl,
  type EtcdService,
  makeCertificates,
  startEtcd,
  startEtcdTls,
} from "../services/etcd.ts";

describe("etcd with TLS and client certificates", () => {
  let certs: EtcdCertificates;
  let other: EtcdCertificates;
  let etcd: EtcdService;
  let url: string;
  before(async () => {
    certs = makeCertificates();
    other = makeCertificates();
    etcd = await startEtcdTls(certs);
    url = `etcds://127.0.0.1:${etcd.port}`;
  });
  after(async () => {
    await etcd?.stop();
    certs?.remove();
    other?.remove();
  });

  test("a store with the CA and a client certificate works, and etcdctl sees its writes", async () => {
    const tls = { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
    await using store = await openStore(url, { tls, prefix: "tls" });
    const watch = new StreamReader(store.watch("k"));
    assert.equal(await watch.next(), null);
    await store.put("k", "over tls");
    assert.equal(text(await watch.next()), "over tls");
    await watch.cancel();
    await using lock = await store.lock("lock", { value: "held" });
    assert.ok(lock.lastIndex > 0n);
    assert.equal(
      etcdctl(etcd.endpoint, ["get", "tls/k", "--print-value-only"], {
        tls: certs,
      }).trim(),
      "over tls",
    );
  });

  test("the typed entry point takes https:// endpoints", async () => {
    await using store = await EtcdStore.connect({
      endpoints: [`https://127.0.0.1:${etcd.port}`],
      tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
    });
    await store.put("tls/typed", "v");
    assert.equal(text(await store.get("tls/typed")), "v");
  });

  test("without a client certificate the server refuses the store", async () => {
    await assert.rejects(
      openStore(url, { tls: { ca: certs.ca }, connectTimeout: 2_000 }),
      NotReachableError,
    );
  });

  test("a server certificate from another CA is refused", async () => {
    await assert.rejects(
      openStore(url, {
        tls: { ca: other.ca, cert: certs.clientCert, key: certs.clientKey },
        connectTimeout: 2_000,
      }),
      NotReachableError,
    );
  });

  test("a server certificate for another name is refused", async () => {
    await assert.rejects(
      openStore(url, {
        tls: {
          ca: certs.ca,
          cert: certs.clientCert,
          key: certs.clientKey,
          servername: "not-this-server.example",
        },
        connectTimeout: 2_000,
      }),
      NotReachableError,
    );
  });

  test("plain etcd:// to a TLS-only member is not reachable", async () => {
    await assert.rejects(
      openStore(`etcd://127.0.0.1:${etcd.port}`, { connectTimeout: 1_000 }),
      NotReachableError,
    );
  });

  // Last: it turns auth on for this member.
  test("a password works over TLS too", async () => {
    const ctl = (...args: string[]) =>
      etcdctl(etcd.endpoint, args, { tls: certs });
    ctl("user", "add", "root:rootpw");
    ctl("user", "grant-role", "root", "root");
    ctl("role", "add", "tls-app");
    ctl(
      "role",
      "grant-permission",
      "tls-app",
      "--prefix=true",
      "readwrite",
      "tls-app/",
    );
    ctl("user", "add", "tls-app:secret");
    ctl("user", "grant-role", "tls-app", "tls-app");
    ctl("auth", "enable");
    const tls = { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
    await using store = await openStore(
      `etcds://tls-app:secret@127.0.0.1:${etcd.port}/tls-app`,
      { tls },
    );
    await store.put("k", "v");
    assert.equal(text(await store.get("k")), "v");
    await assert.rejects(
      openStore(`etcds://tls-app:wrong@127.0.0.1:${etcd.port}`, { tls }),
      /user name or password/,
    );
  });
});

describe("etcd with username/password auth", () => {
  let etcd: EtcdService;
  const as = (user: string) => ({ user });
  before(async () => {
    etcd = await startEtcd();
    const ctl = (...args: string[]) => etcdctl(etcd.endpoint, args);
    ctl("user", "add", "root:rootpw");
    ctl("user", "grant-role", "root", "root");
    ctl("role", "add", "app");
    ctl(
      "role",
      "grant-permission",
      "app",
      "--prefix=true",
      "readwrite",
      "app/",
    );
    ctl("user", "add", "app:apppw");
    ctl("user", "grant-role", "app", "app");
    ctl("auth", "enable");
  });
  after(async () => {
    await etcd?.stop();
  });

  test("the user and password of the URL open the store", async () => {
    await using store = await openStore(
      `etcd://root:rootpw@127.0.0.1:${etcd.port}`,
    );
    await store.put("app/by-root", "v");
    const tree = new StreamReader(store.watchTree("app"));
    assert.equal((await tree.next()).length, 1);
    await store.put("app/second", "v");
    assert.equal((await tree.next()).length, 2);
    await tree.cancel();
    await using lock = await store.lock("app/root-lock");
    assert.ok(lock.lastIndex > 0n);
    assert.equal(
      etcdctl(
        etcd.endpoint,
        ["get", "app/by-root", "--print-value-only"],
        as(
          "root:rootpw",
        ),
      ).trim(),
      "v",
    );
  });

  test("a wrong password is a StoreError that says so, not NotReachableError", async () => {
    const error = await openStore(`etcd://127.0.0.1:${etcd.port}`, {
      username: "root",
      password: "wrong",
    }).then(() => undefined, (e) => e);
    assert.ok(error instanceof StoreError, String(error));
    assert.ok(!(error instanceof NotReachableError));
    assert.match(error.message, /user name or password/);
  });

  test("a user confined to a prefix works there and is told what it may not do", async () => {
    await using store = await openStore(
      `etcd://app:apppw@127.0.0.1:${etcd.port}/app`,
    );
    await store.put("mine", "v");
    assert.equal(text(await store.get("mine")), "v");
    const tree = new StreamReader(store.watchTree(""));
    assert.deepEqual((await tree.next()).map((p) => p.key).sort(), [
      "by-root",
      "mine",
      "root-lock",
      "second",
    ]);
    await tree.cancel();
    await using outside = await openStore(
      `etcd://app:apppw@127.0.0.1:${etcd.port}`,
    );
    await assert.rejects(outside.get("elsewhere"), /lacks a permission/);
    // Locks need the lock namespace of the prefix too; etcdctl cannot type
    // its NUL byte, the API (or the JSON gateway, in base64) can.
    await assert.rejects(
      store.lock("job", { signal: AbortSignal.timeout(5_000) }),
      /lacks a permission/,
    );
    const admin = new Etcd3({
      hosts: etcd.endpoint,
      auth: { username: "root", password: "rootpw" },
    });
    try {
      await admin.role("app").grant({
        permission: "Readwrite",
        range: Range.prefix("\u0000valkeyrie/lock/app/"),
      });
    } finally {
      admin.close();
    }
    await using lock = await store.lock("job", { value: "app" });
    assert.equal(text(await store.get("job")), "app");
    assert.ok(lock.lastIndex > 0n);
  });
});
