// What the etcd backend promises beyond the conformance kit, checked on a real
// etcd: other clients (etcdctl) see raw bytes at the put keys, leases do not
// pile up, lock bookkeeping stays hidden, watches resume without losing an
// event (also across a compaction), locks report a lost lease, and calls
// while etcd is out of reach fail with NotReachableError.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { after, before, describe, test } from "node:test";
import {
  expiresAt,
  InvalidArgumentError,
  LockLostError,
  NotReachableError,
  openStore,
  type Store,
} from "../../mod.ts";
import {
  eventually,
  lateBound,
  StreamReader,
  text,
} from "../../testing/harness.ts";
import { etcdctl, type EtcdService, startEtcd } from "../services/etcd.ts";
import { startTcpProxy, type TcpProxy } from "../services/tcp_proxy.ts";

let etcd: EtcdService;
let proxy: TcpProxy;

/** etcd's default requestTimeout (DEFAULT_REQUEST_TIMEOUT_MS in backends/etcd/mod.ts). */
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** The ids (hex) of every lease etcd holds now. */
function leases(): Set<string> {
  const lines = etcdctl(etcd.endpoint, ["lease", "list"]).trim().split("\n");
  return new Set(lines.slice(1).map((line) => line.trim()).filter(Boolean));
}

function through(proxy: TcpProxy, options: Record<string, unknown> = {}) {
  return openStore(`etcd://127.0.0.1:${proxy.port}`, options);
}

describe("etcd interop and resilience", () => {
  before(async () => {
    etcd = await startEtcd();
    proxy = await startTcpProxy(etcd.port);
  });
  after(async () => {
    await proxy?.close();
    await etcd?.stop();
  });

  test("etcdctl reads the raw bytes at the put key, and lastIndex is the mod revision", async () => {
    await using store = await openStore(etcd.url, { prefix: "interop" });
    const bytes = new Uint8Array([0, 1, 2, 255, 104, 105]);
    await store.put("raw/bin", bytes);
    const { kvs } = JSON.parse(
      etcdctl(etcd.endpoint, ["get", "interop/raw/bin", "-w", "json"]),
    );
    assert.equal(
      Buffer.from(kvs[0].key, "base64").toString(),
      "interop/raw/bin",
    );
    assert.deepEqual(
      new Uint8Array(Buffer.from(kvs[0].value, "base64")),
      bytes,
    );
    assert.equal(
      BigInt(kvs[0].mod_revision),
      (await store.get("raw/bin"))!.lastIndex,
    );
    etcdctl(etcd.endpoint, ["put", "interop/raw/text", "from etcdctl"]);
    assert.equal(text(await store.get("raw/text")), "from etcdctl");
  });

  test("the path of an etcd:// URL is the key prefix", async () => {
    await using store = await openStore(`${etcd.url}/from-url/app`);
    await store.put("k", "v");
    assert.equal(
      etcdctl(etcd.endpoint, ["get", "from-url/app/k", "--print-value-only"])
        .trim(),
      "v",
    );
  });

  test("a key's lease is revoked when it is overwritten without a TTL, with a new TTL, or deleted", async () => {
    await using store = await openStore(etcd.url, { prefix: "interop" });
    const added = async (write: () => Promise<unknown>) => {
      const before = leases();
      await write();
      return [...leases()].filter((id) => !before.has(id));
    };
    const [first] = await added(() =>
      store.put("lease/k", "v", { ttl: 60_000 })
    );
    assert.ok(first, "a put with a TTL grants a lease");
    await store.put("lease/k", "permanent");
    await eventually(
      "the first lease revoked",
      5_000,
      () => Promise.resolve(!leases().has(first)),
    );
    const [second] = await added(() =>
      store.put("lease/k", "v2", { ttl: 60_000 })
    );
    const [third] = await added(() =>
      store.put("lease/k", "v3", { ttl: 60_000 })
    );
    await eventually(
      "the second lease revoked",
      5_000,
      () => Promise.resolve(!leases().has(second)),
    );
    assert.ok(leases().has(third), "the key's current lease stays");
    await store.delete("lease/k");
    await eventually(
      "the third lease revoked",
      5_000,
      () => Promise.resolve(!leases().has(third)),
    );
  });

  test("a loop of puts with a TTL leaves no lease behind", async () => {
    await using store = await openStore(etcd.url, { prefix: "interop" });
    const before = leases().size;
    for (let i = 0; i < 50; i++) {
      await store.put("loop/k", `v${i}`, { ttl: 60_000 });
    }
    await store.atomic().put("loop/k", "tx", { ttl: 60_000 }).commit();
    await eventually(
      "leases settle",
      10_000,
      () => Promise.resolve(leases().size <= before + 1),
    );
    await store.put("loop/k", "permanent");
    await eventually(
      "no lease left",
      5_000,
      () => Promise.resolve(leases().size <= before),
    );
  });

  test("a scan reports when each key's lease ends, also a lease another client granted", async () => {
    await using store = await openStore(etcd.url, { prefix: "scanttl" });
    const before = Date.now();
    await store.put("a", "mine", { ttl: 30_000 });
    await store.put("b", "no ttl");
    // etcdctl grants a lease of 40 s and puts c with it.
    const granted = etcdctl(etcd.endpoint, ["lease", "grant", "40"]);
    const id = /lease ([0-9a-f]+) granted/.exec(granted)?.[1];
    assert.ok(id, granted);
    etcdctl(etcd.endpoint, ["put", "scanttl/c", "theirs", `--lease=${id}`]);
    const pairs = [];
    for await (const pair of store.scan("")) pairs.push(pair);
    assert.deepEqual(pairs.map((p) => p.key), ["a", "b", "c"]);
    const [a, b, c] = pairs.map((p) => expiresAt(p));
    // Whole seconds: never before the TTL given, at most a second after.
    assert.ok(a !== undefined && a >= before + 29_000, `a ends ${a}`);
    assert.ok(a <= Date.now() + 31_000, `a ends ${a}`);
    assert.equal(b, undefined);
    assert.ok(c !== undefined && c >= before + 39_000, `c ends ${c}`);
    assert.ok(c <= Date.now() + 41_000, `c ends ${c}`);
    // A keys-only scan asks no lease.
    for await (const pair of store.scan("", { keysOnly: true })) {
      assert.equal(expiresAt(pair), undefined, pair.key);
    }
  });

  test("lock waiter keys live under a NUL namespace that list('') never shows", async () => {
    await using store = await openStore(etcd.url);
    await using lock = await store.lock("interop/locked", { value: "holder" });
    const all = etcdctl(etcd.endpoint, ["get", "", "--from-key", "--keys-only"])
      .split("\n").filter(Boolean);
    const waiters = all.filter((key) =>
      key.startsWith("\u0000valkeyrie/lock/interop/locked\u0000")
    );
    assert.equal(waiters.length, 1, `waiter keys in ${JSON.stringify(all)}`);
    const listed = (await store.list("")).map((pair) => pair.key);
    assert.ok(listed.includes("interop/locked"));
    assert.ok(listed.every((key) => !key.includes("\u0000")), "no waiter key");
    assert.equal(text(await store.get("interop/locked")), "holder");
    assert.equal(
      (await store.get("interop/locked"))!.lastIndex,
      lock.lastIndex,
      "the fencing token is the revision of the value's write",
    );
  });

  test("watches of a store share one stream and cancelling frees them on the server", async () => {
    const gauge = async (name: string) => {
      const metrics = await (await fetch(`${etcd.endpoint}/metrics`)).text();
      const line = metrics.split("\n").find((l) => l.startsWith(`${name} `));
      return Number(line?.split(" ")[1]);
    };
    const streams = await gauge("etcd_debugging_mvcc_watch_stream_total");
    const watchers = await gauge("etcd_debugging_mvcc_watcher_total");
    await using store = await openStore(etcd.url, { prefix: "interop/hub" });
    const readers = [
      ...Array.from({ length: 5 }, (_, i) => store.watch(`k${i}`)),
      ...Array.from({ length: 5 }, (_, i) => store.watchTree(`t${i}`)),
    ].map((stream) => new StreamReader<unknown>(stream));
    for (const reader of readers) await reader.next();
    // A watch reports its first state from the initial read, before etcd
    // may have registered it: wait for the server's counts to settle.
    await eventually(
      "one stream and ten watchers registered",
      5_000,
      async () =>
        await gauge("etcd_debugging_mvcc_watch_stream_total") ===
          streams + 1 &&
        await gauge("etcd_debugging_mvcc_watcher_total") === watchers + 10,
    );
    for (const reader of readers) await reader.cancel();
    await eventually(
      "watchers freed",
      5_000,
      async () =>
        await gauge("etcd_debugging_mvcc_watcher_total") === watchers &&
        await gauge("etcd_debugging_mvcc_watch_stream_total") === streams,
    );
  });

  test("an atomic() over etcd's request size is refused before any I/O", async () => {
    await using store = await openStore(etcd.url, { prefix: "interop" });
    const big = new Uint8Array(store.limits.maxValueBytes);
    // Refused as the step that passes maxAtomicBytes is added.
    assert.throws(
      () => store.atomic().put("big/a", big).put("big/b", big),
      InvalidArgumentError,
    );
    assert.deepEqual(await store.list("big"), []);
  });

  test("a lock is lost when its lease is revoked from outside, and passes on", async () => {
    await using store = await openStore(etcd.url, { prefix: "interop" });
    await using other = await openStore(etcd.url, { prefix: "interop" });
    const ttl = 2_000;
    const lock = await store.lock("revoked", { ttl });
    for (const id of leases()) etcdctl(etcd.endpoint, ["lease", "revoke", id]);
    // Lost at the next renewal, and by the handle's own deadline a ttl after
    // the last one at the latest: the kit's headroom for a late timer.
    await eventually(
      "lost",
      lateBound(ttl),
      () => Promise.resolve(lock.lost.aborted),
    );
    const next = await other.lock("revoked", {
      signal: AbortSignal.timeout(5_000),
    });
    assert.ok(next.lastIndex > lock.lastIndex);
    await next.unlock();
    // Unlocking a lost lock says so.
    await assert.rejects(lock.unlock(), LockLostError);
  });

  describe("through a connection that drops", () => {
    let watched: Store;
    let direct: Store;
    before(async () => {
      watched = await through(proxy, { prefix: "resume" });
      direct = await openStore(etcd.url, { prefix: "resume" });
    });
    after(async () => {
      await proxy.resume().catch(() => {});
      await watched?.close();
      await direct?.close();
    });

    test("watches resume from their last revision and lose no event", async () => {
      const key = new StreamReader(watched.watch("k"));
      const tree = new StreamReader(watched.watchTree("t"));
      assert.equal(await key.next(), null);
      assert.deepEqual(await tree.next(), []);
      await proxy.cut();
      for (let i = 0; i < 5; i++) await direct.put("k", `v${i}`);
      await direct.put("t/a", "a");
      await direct.put("t/b", "b");
      await direct.delete("t/a");
      await proxy.resume();
      for (let i = 0; i < 5; i++) {
        assert.equal(text(await key.next()), `v${i}`, "every change, in order");
      }
      const snapshot = await tree.until((l) => l.length === 1);
      assert.deepEqual(snapshot, await direct.list("t"));
      await direct.put("k", "after");
      assert.equal(text(await key.next()), "after");
      await key.cancel();
      await tree.cancel();
    });

    test("a watch that resumes after a compaction re-reads and carries on", async () => {
      const key = new StreamReader(watched.watch("c"));
      const tree = new StreamReader(watched.watchTree("ct"));
      assert.equal(await key.next(), null);
      assert.deepEqual(await tree.next(), []);
      await proxy.cut();
      await direct.put("c", "w1");
      await direct.put("ct/x", "x");
      await direct.put("c", "w2");
      const latest = (await direct.get("c"))!.lastIndex;
      etcdctl(etcd.endpoint, ["compact", String(latest)]);
      await proxy.resume();
      const pair = await key.until((p) => p?.lastIndex === latest);
      assert.equal(text(pair), "w2");
      assert.deepEqual(
        await tree.until((l) => l.length === 1),
        await direct.list("ct"),
      );
      await direct.put("c", "after compaction");
      assert.equal(text(await key.next()), "after compaction");
      await key.cancel();
      await tree.cancel();
    });

    test("a call while etcd is out of reach fails with NotReachableError within requestTimeout", async () => {
      await using store = await through(proxy, { requestTimeout: 1_000 });
      await store.put("reach", "v");
      await proxy.cut();
      const started = Date.now();
      await assert.rejects(store.get("reach"), NotReachableError);
      // Within the 1 s asked for, not the 10 s default (or never).
      const took = Date.now() - started;
      assert.ok(took < DEFAULT_REQUEST_TIMEOUT_MS / 2, `took ${took} ms`);
      await proxy.resume();
      await eventually(
        "served again",
        5_000,
        async () => text(await store.get("reach").catch(() => null)) === "v",
      );
    });

    test("a held lock is lost when etcd stays out of reach past its TTL", async () => {
      await using holder = await through(proxy, { prefix: "resume" });
      const ttl = 2_000;
      const lock = await holder.lock("far", { ttl });
      await proxy.cut();
      // Lost by the handle's own deadline, a ttl after the last renewal
      // (before the cut), with the kit's headroom for a late timer.
      await eventually(
        "lost",
        lateBound(ttl),
        () => Promise.resolve(lock.lost.aborted),
      );
      // The lease was not renewed, so etcd frees the lock for the next one
      // within its ttl and etcd's own expiry granularity, with the same
      // headroom (etcd's timers run on this loaded machine too).
      const next = await direct.lock("far", {
        signal: AbortSignal.timeout(
          lateBound(ttl + holder.limits.ttlGranularityMs),
        ),
      });
      assert.ok(next.lastIndex > lock.lastIndex);
      await next.unlock();
      await proxy.resume();
      await assert.rejects(lock.unlock(), LockLostError);
    });
  });
});
