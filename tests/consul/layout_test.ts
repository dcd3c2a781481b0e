// What a Consul store leaves in Consul, as other Consul clients see it: raw
// values at the put keys, ModifyIndex as lastIndex, TTL deadlines in Flags
// with sessions that delete the keys, locks as sessions, nothing left
// behind. Against the Consul double (these look at its sessions too).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { InvalidKeyError, LockLostError } from "../../mod.ts";
import { ConsulStore } from "../../backends/consul/mod.ts";
import { type ConsulDouble, startConsulDouble } from "../consul_double/mod.ts";
import { waitUntil } from "../services/process.ts";

const TTL_MS = 1_500;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// deno-lint-ignore no-explicit-any
async function raw(consul: ConsulDouble, path: string): Promise<any> {
  const response = await fetch(`${consul.url}/v1${path}`);
  const text = await response.text();
  return response.status === 404 ? null : JSON.parse(text);
}

describe("a Consul store's data as Consul holds it", () => {
  let consul: ConsulDouble;
  let store: ConsulStore;
  let other: ConsulStore;

  before(async () => {
    consul = await startConsulDouble({ sessionTtlMinMs: 1_000 });
    const options = { endpoints: [consul.address], sessionTtlMin: 1_000 };
    store = await ConsulStore.connect(options);
    other = await ConsulStore.connect(options);
  });

  after(async () => {
    await store.close();
    await other.close();
    await consul.close();
  });

  test("a value is stored raw at its key and lastIndex is its ModifyIndex", async () => {
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    await store.put("layout/raw", bytes);
    const [entry] = await raw(consul, "/kv/layout/raw");
    assert.deepEqual(
      Uint8Array.from(atob(entry.Value), (c) => c.charCodeAt(0)),
      bytes,
    );
    assert.equal(entry.Flags, 0);
    assert.equal(
      (await store.get("layout/raw"))!.lastIndex,
      BigInt(entry.ModifyIndex),
    );
    const scoped = await ConsulStore.connect({
      endpoints: [consul.address],
      prefix: "app",
    });
    await scoped.put("k", "v");
    assert.equal(
      await (await fetch(`${consul.url}/v1/kv/app/k?raw`)).text(),
      "v",
    );
    await scoped.close();
  });

  test("a key put with a ttl keeps its deadline in Flags and a delete session without checks, which Consul ends within twice its TTL", async () => {
    const started = Date.now();
    await store.put("layout/ttl", "v", { ttl: TTL_MS });
    const [entry] = await raw(consul, "/kv/layout/ttl");
    assert.ok(entry.Flags > 0);
    const [session] = await raw(consul, `/session/info/${entry.Session}`);
    assert.equal(session.Behavior, "delete");
    assert.deepEqual(session.NodeChecks, []);
    assert.equal(session.TTL, "1.5s");
    // Consul promises twice the TTL; its timers (the double's, here in the
    // test's own process) slip on a loaded machine, so wait as long again.
    // A key whose session never ended would stay.
    await waitUntil(
      "Consul deletes the key",
      2 * (2 * TTL_MS),
      async () => (await raw(consul, "/kv/layout/ttl")) === null,
    );
    assert.ok(Date.now() - started >= TTL_MS, "not before its TTL");
  });

  test("a put without ttl frees the key from its TTL session", async () => {
    await store.put("layout/perm", "temporary", { ttl: TTL_MS });
    await store.put("layout/perm", "permanent");
    const [entry] = await raw(consul, "/kv/layout/perm");
    assert.equal(entry.Session, undefined);
    assert.equal(entry.Flags, 0);
    await sleep(2 * TTL_MS + 500);
    assert.ok(await raw(consul, "/kv/layout/perm"), "Consul did not delete it");
  });

  test("putting a key with a ttl again destroys its previous TTL session", async () => {
    await store.put("layout/again", "1", { ttl: 60_000 });
    const first = (await raw(consul, "/kv/layout/again"))[0].Session;
    await store.put("layout/again", "2", { ttl: 60_000 });
    const second = (await raw(consul, "/kv/layout/again"))[0].Session;
    assert.notEqual(first, second);
    // Destroyed by the put, not ended by its 60 s TTL: well before that.
    await waitUntil(
      "the first session is destroyed",
      10_000,
      async () => (await raw(consul, `/session/info/${first}`)).length === 0,
    );
  });

  test("a lock is the key held by a release session without lock delay; its ModifyIndex is the fencing token", async () => {
    const lock = await store.lock("layout/lock", {
      value: "holder",
      ttl: 4_000,
    });
    const [entry] = await raw(consul, "/kv/layout/lock");
    assert.equal(lock.lastIndex, BigInt(entry.ModifyIndex));
    const [session] = await raw(consul, `/session/info/${entry.Session}`);
    assert.equal(session.Behavior, "release");
    assert.equal(session.LockDelay, 0);
    assert.equal(session.TTL, "2s", "half the lock's ttl");
    await lock.unlock();
    const [released] = await raw(consul, "/kv/layout/lock");
    assert.equal(released.Session, undefined);
    assert.equal(atob(released.Value), "holder");
    assert.deepEqual(await raw(consul, `/session/info/${entry.Session}`), []);
  });

  test("the holder's own writes keep its lock; another store's write takes it away", async () => {
    const lock = await store.lock("layout/held", { value: "a", ttl: 60_000 });
    await store.put("layout/held", "a2");
    await store.atomic().put("layout/held", "a3").commit();
    assert.ok((await raw(consul, "/kv/layout/held"))[0].Session);
    await sleep(200);
    assert.equal(lock.lost.aborted, false);
    await other.put("layout/held", "b");
    // Within half the lock's first renewal (20 s: a third of its 60 s TTL),
    // so only the blocking query on the key can have told it.
    await waitUntil(
      "the holder hears it lost the lock",
      10_000,
      () => Promise.resolve(lock.lost.aborted),
    );
    // Unlocking a lost lock says so.
    await assert.rejects(lock.unlock(), LockLostError);
  });

  test("waiting and aborted locks leave no session behind", async () => {
    const held = await store.lock("layout/busy", { ttl: 60_000 });
    const controller = new AbortController();
    const waiting = other.lock("layout/busy", {
      ttl: 60_000,
      signal: controller.signal,
    });
    await sleep(200);
    controller.abort(new Error("enough"));
    await assert.rejects(waiting, /enough/);
    await held.unlock();
    // Destroyed on abort and unlock, not ended by their TTL (30 s sessions
    // for 60 s locks, which Consul ends within a minute): well before that.
    await waitUntil(
      "every lock session is gone",
      10_000,
      async () =>
        (await raw(consul, "/session/list")).every((
          session: { Behavior: string },
        ) => session.Behavior !== "release"),
    );
  });

  test("keys Consul refuses are InvalidKeyError, before any request", async () => {
    const before = consul.requests;
    for (const key of ["a/.../b", " lead", "trail ", "x/..%2fy"]) {
      await assert.rejects(store.put(key, "v"), InvalidKeyError, key);
      await assert.rejects(store.get(key), InvalidKeyError, key);
    }
    assert.equal(consul.requests, before);
  });
});

describe("keys past their TTL that Consul has not deleted yet", () => {
  // The agent's default session_ttl_min: Consul keeps an expired key up to
  // 20 s, while this library already treats it as gone.
  let consul: ConsulDouble;
  let store: ConsulStore;

  before(async () => {
    consul = await startConsulDouble();
    store = await ConsulStore.connect({ endpoints: [consul.address] });
  });

  after(async () => {
    await store.close();
    await consul.close();
  });

  test("the limits say how late Consul may be", () => {
    assert.equal(store.limits.ttlGranularityMs, 2 * 10_000 + 500);
  });

  test("are absent for reads, create-only writes and locks, while Consul still has them", async () => {
    await store.put("expired/a", "a", { ttl: 200 });
    await store.put("expired/b", "b", { ttl: 200 });
    await store.put("expired/c", "c", { ttl: 200 });
    await sleep(300);
    assert.ok(await raw(consul, "/kv/expired/a"), "Consul still has it");
    assert.equal(await store.get("expired/a"), null);
    assert.deepEqual(await store.list("expired"), []);
    const created = await store.atomicPut("expired/a", "new", null);
    assert.equal((await store.get("expired/a"))!.lastIndex, created.lastIndex);
    const result = await store.atomic().check("expired/b", null).put(
      "expired/b",
      "new",
    ).commit();
    assert.equal(result.ok, true);
    const lock = await store.lock("expired/c", {
      value: "holder",
      signal: AbortSignal.timeout(2_000),
    });
    assert.equal(
      new TextDecoder().decode((await store.get("expired/c"))!.value),
      "holder",
    );
    await lock.unlock();
  });
});
