// Bulk calls on Consul are transactions: a chunk of getMany is one read of
// `get-or-empty` operations, of putMany and deleteMany one write (more only
// when large values would pass the 512 KiB body), and putMany's writes are
// put's, TTL sessions and locks included. Against the Consul double, which
// logs the requests it gets.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { StoreError } from "../../mod.ts";
import { ConsulStore } from "../../backends/consul/mod.ts";
import { MAX_VALUE_BYTES } from "../../backends/consul/driver.ts";
import { expiryOf } from "../../backends/consul/expiry.ts";
import { type ConsulDouble, startConsulDouble } from "../consul_double/mod.ts";

const text = (pair: { value: Uint8Array } | null) =>
  pair && new TextDecoder().decode(pair.value);

// deno-lint-ignore no-explicit-any
async function raw(consul: ConsulDouble, path: string): Promise<any> {
  const response = await fetch(`${consul.url}/v1${path}`);
  const body = await response.text();
  return response.status === 404 ? null : JSON.parse(body);
}

describe("bulk calls on Consul", () => {
  let consul: ConsulDouble;
  let store: ConsulStore;

  before(async () => {
    consul = await startConsulDouble({
      sessionTtlMinMs: 1_000,
      recordRequests: true,
    });
    store = await ConsulStore.connect({
      endpoints: [consul.address],
      sessionTtlMin: 1_000,
    });
  });

  after(async () => {
    await store.close();
    await consul.close();
  });

  async function requests<T>(run: () => Promise<T>): Promise<[T, string[]]> {
    consul.requestLog.length = 0;
    const result = await run();
    return [result, consul.requestLog.splice(0)];
  }

  const keys = (name: string, n: number) =>
    Array.from(
      { length: n },
      (_, i) => `${name}/${String(i).padStart(2, "0")}`,
    );

  test("a batch of 32 keys is one transaction per call", async () => {
    const batch = store.limits.maxBatchKeys!;
    assert.equal(batch, 32);
    const all = keys("one", batch);
    const [indexes, puts] = await requests(() =>
      store.putMany(all.map((key) => ({ key, value: key })))
    );
    assert.deepEqual(puts.map((line) => line.split("?")[0]), ["PUT /v1/txn"]);
    for (const [i, key] of all.entries()) {
      const [entry] = await raw(consul, `/kv/${key}`);
      assert.equal(indexes[i], BigInt(entry.ModifyIndex), key);
    }
    // Half of them gone, asked in reverse with a key never written.
    const absent = all.filter((_, i) => i % 2 === 1);
    const [, deletes] = await requests(() => store.deleteMany(absent));
    assert.equal(deletes.length, 1);
    assert.match(deletes[0], /^PUT \/v1\/txn/);
    const asked = [...all].reverse().slice(0, batch - 1).concat(["one/never"]);
    const [pairs, gets] = await requests(() => store.getMany(asked));
    assert.equal(gets.length, 1);
    assert.match(gets[0], /^PUT \/v1\/txn.*[?&]consistent/);
    pairs.forEach((pair, i) => {
      const key = asked[i];
      assert.equal(
        text(pair),
        absent.includes(key) || key === "one/never" ? null : key,
        key,
      );
      if (pair) assert.equal(pair.lastIndex, indexes[all.indexOf(key)]);
    });
    const [, stale] = await requests(() =>
      store.getMany(asked, { consistent: false })
    );
    assert.match(stale[0], /^PUT \/v1\/txn.*[?&]stale/);
  });

  test("large values split a chunk into transactions within 512 KiB", async () => {
    const value = new Uint8Array(MAX_VALUE_BYTES).fill(7);
    const entries = keys("large", 3).map((key) => ({ key, value }));
    entries.push({ key: "large/small", value: new Uint8Array([1]) });
    const [indexes, log] = await requests(() => store.putMany(entries));
    assert.equal(log.length, 3, log.join("\n"));
    const pairs = await store.getMany(entries.map((e) => e.key));
    pairs.forEach((pair, i) => {
      assert.deepEqual(pair!.value, entries[i].value);
      assert.equal(pair!.lastIndex, indexes[i]);
    });
  });

  test("putMany with a ttl acts as put: a session of its own, the old one destroyed, and none once put without", async () => {
    const sessions = async () =>
      ((await raw(consul, "/session/list")) ?? []).map((s: { ID: string }) =>
        s.ID
      );
    const before = await sessions();
    const started = Date.now();
    await store.putMany([
      { key: "ttl/a", value: "1", ttl: 60_000 },
      { key: "ttl/b", value: "1", ttl: 60_000 },
    ]);
    const [first] = await raw(consul, "/kv/ttl/a");
    assert.ok(first.Session);
    assert.ok(first.Flags > 0, "the deadline is in the flags");
    const [session] = await raw(consul, `/session/info/${first.Session}`);
    assert.equal(session.Behavior, "delete");
    assert.equal(session.TTL, "60s");
    const deadline = expiryOf(first.Flags)!;
    assert.ok(deadline >= started + 60_000 && deadline <= Date.now() + 60_000);

    await store.putMany([
      { key: "ttl/a", value: "2", ttl: 30_000 },
      { key: "ttl/b", value: "2" },
    ]);
    const [second] = await raw(consul, "/kv/ttl/a");
    assert.ok(second.Session && second.Session !== first.Session);
    const [permanent] = await raw(consul, "/kv/ttl/b");
    assert.equal(permanent.Session, undefined, "freed from its TTL session");
    assert.equal(permanent.Flags, 0);
    // The replaced session of ttl/a is destroyed; ttl/b's, now holding
    // nothing, is left to expire as put leaves it.
    const giveUp = Date.now() + 5_000;
    while ((await sessions()).includes(first.Session)) {
      assert.ok(Date.now() < giveUp, "the old session is destroyed");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const now = await sessions();
    assert.ok(now.includes(second.Session));
    assert.equal(now.filter((id: string) => !before.includes(id)).length, 2);
    assert.equal(text(await store.get("ttl/a")), "2");
  });

  test("putMany on a key this store holds a lock on keeps the lock", async () => {
    const lock = await store.lock("locked/k", { ttl: 10_000 });
    const [held] = await raw(consul, "/kv/locked/k");
    const [index] = await store.putMany([
      { key: "locked/k", value: "mine" },
      { key: "locked/other", value: "x" },
    ]);
    const [after] = await raw(consul, "/kv/locked/k");
    assert.equal(after.Session, held.Session);
    assert.equal(BigInt(after.ModifyIndex), index);
    assert.equal(lock.lost.aborted, false);
    await lock.unlock();
  });

  test("a key the token may not read fails getMany instead of reading as absent", async () => {
    const guarded = await startConsulDouble({ aclToken: "root" });
    const reader = await ConsulStore.connect({
      endpoints: [guarded.address],
      // The agent answers /v1/status/leader without a token.
    });
    try {
      await fetch(`${guarded.url}/v1/kv/g/k`, {
        method: "PUT",
        body: "v",
        headers: { "X-Consul-Token": "root" },
      }).then((r) => r.text());
      await assert.rejects(reader.getMany(["g/k"]), StoreError);
    } finally {
      await reader.close();
      await guarded.close();
    }
  });
});
