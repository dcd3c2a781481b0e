// CONTRACT.md "Operations": get, exists, put, delete, lastIndex, and the
// store's shape (backend name, limits).
import assert from "node:assert/strict";
import {
  caseDefiner,
  type ConformanceTarget,
  type TestRunner,
  text,
} from "./harness.ts";

export function crudCases(runner: TestRunner, target: ConformanceTarget): void {
  const test = caseDefiner(runner, target);

  test("the store names its backend and declares sane limits", (c) => {
    const s = c.a;
    assert.equal(typeof s.backend, "string");
    assert.ok(s.backend.length > 0);
    const {
      maxKeyBytes,
      maxValueBytes,
      ttlGranularityMs,
      maxAtomicOperations,
    } = s.limits;
    for (
      const [name, value] of Object.entries({ maxKeyBytes, maxValueBytes })
    ) {
      assert.ok(Number.isInteger(value) && value > 0, `${name} is ${value}`);
    }
    assert.ok(ttlGranularityMs >= 0 && Number.isFinite(ttlGranularityMs));
    assert.ok(
      Number.isInteger(maxAtomicOperations) && maxAtomicOperations >= 2,
    );
  });

  // valkeyrie's testPutGetDeleteExists, with its plain, trailing-slash and
  // nested keys.
  test("put, get, exists and delete work on plain, trailing-slash and nested keys", async (c) => {
    const s = c.a;
    const base = c.k("testPutGetDeleteExists");
    for (
      const key of [
        base,
        `${base}/`,
        `${base}/testbar/`,
        `${base}/testbar/testfoobar`,
      ]
    ) {
      const normalized = key.replace(/\/$/, "");
      await s.put(key, "bar");
      const pair = await s.get(key);
      assert.notEqual(pair, null, key);
      assert.equal(text(pair), "bar");
      assert.equal(pair!.key, normalized);
      assert.equal(typeof pair!.lastIndex, "bigint");
      assert.ok(pair!.lastIndex > 0n);
      assert.equal(await s.exists(key), true);
      await s.delete(key);
      assert.equal(await s.get(key), null);
      assert.equal(await s.exists(key), false);
    }
  });

  test("a missing key reads as null and does not exist", async (c) => {
    assert.equal(await c.a.get(c.k("missing")), null);
    assert.equal(await c.a.exists(c.k("missing")), false);
    assert.equal(await c.a.get(c.k("missing"), { consistent: false }), null);
  });

  test("lastIndex changes on every write, also of the same bytes, and grows", async (c) => {
    const s = c.a;
    await s.put(c.k("v"), "same");
    const first = (await s.get(c.k("v")))!.lastIndex;
    await s.put(c.k("v"), "same");
    const second = (await s.get(c.k("v")))!.lastIndex;
    assert.ok(second > first, `${second} after ${first}`);
    await s.delete(c.k("v"));
    await s.put(c.k("v"), "same");
    const third = (await s.get(c.k("v")))!.lastIndex;
    assert.ok(third > second, `re-created: ${third} after ${second}`);
  });

  // CONTRACT.md "Second wave", Writes report their version.
  test("put resolves the key's new lastIndex, as a get right after reports it", async (c) => {
    const s = c.a;
    const index = await s.put(c.k("versioned"), "one");
    assert.equal(typeof index, "bigint");
    assert.ok(index > 0n, `${index}`);
    assert.equal((await s.get(c.k("versioned")))!.lastIndex, index);
    const nested = await s.put(c.k("versioned", "child"), new Uint8Array());
    assert.equal((await s.get(c.k("versioned", "child")))!.lastIndex, nested);
  });

  test("put's lastIndex grows with each put of the key, also of the same bytes", async (c) => {
    const s = c.a;
    let last = 0n;
    for (const value of ["same", "same", "other", "same"]) {
      const index = await s.put(c.k("growing"), value);
      assert.ok(index > last, `${index} after ${last}`);
      assert.equal((await s.get(c.k("growing")))!.lastIndex, index);
      last = index;
    }
    await s.delete(c.k("growing"));
    const recreated = await s.put(c.k("growing"), "same");
    assert.ok(recreated > last, `re-created: ${recreated} after ${last}`);
    assert.equal((await s.get(c.k("growing")))!.lastIndex, recreated);
  });

  test("put's lastIndex through one handle is what another handle's get reports", async (c) => {
    const b = await c.open();
    const fromB = await b.put(c.k("handles"), "from b");
    assert.equal((await c.a.get(c.k("handles")))!.lastIndex, fromB);
    const fromA = await c.a.put(c.k("handles"), "from a");
    assert.ok(fromA > fromB, `${fromA} after ${fromB}`);
    assert.equal((await b.get(c.k("handles")))!.lastIndex, fromA);
  });

  test("put with a ttl resolves its lastIndex too, and so does the put that makes it permanent", async (c) => {
    const s = c.a;
    // A TTL far beyond the case, so the reads cannot race the expiry.
    const withTtl = await s.put(c.k("ttl"), "expiring", { ttl: 60_000 });
    assert.equal(typeof withTtl, "bigint");
    assert.equal((await s.get(c.k("ttl")))!.lastIndex, withTtl);
    const renewed = await s.put(c.k("ttl"), "expiring", { ttl: 60_000 });
    assert.ok(renewed > withTtl, `${renewed} after ${withTtl}`);
    assert.equal((await s.get(c.k("ttl")))!.lastIndex, renewed);
    const permanent = await s.put(c.k("ttl"), "kept");
    assert.ok(permanent > renewed, `${permanent} after ${renewed}`);
    assert.equal((await s.get(c.k("ttl")))!.lastIndex, permanent);
  });

  test("put of a key this handle holds a lock on resolves its lastIndex too", async (c) => {
    const s = c.a;
    const lock = await s.lock(c.k("locked"), { value: "holder", ttl: 10_000 });
    try {
      const before = (await s.get(c.k("locked")))!.lastIndex;
      const index = await s.put(c.k("locked"), "written while held");
      assert.ok(index > before, `${index} after ${before}`);
      assert.equal((await s.get(c.k("locked")))!.lastIndex, index);
    } finally {
      await lock.unlock();
    }
  });

  test("put overwrites the value", async (c) => {
    const s = c.a;
    await s.put(c.k("o"), "one");
    await s.put(c.k("o"), "two");
    assert.equal(text(await s.get(c.k("o"))), "two");
    assert.equal(text(await s.get(c.k("o"), { consistent: true })), "two");
  });

  test("delete and deleteTree of what is not there are not errors", async (c) => {
    await c.a.delete(c.k("nothing"));
    await c.a.deleteTree(c.k("nothing"));
    await c.a.put(c.k("x"), "x");
    await c.a.delete(c.k("x"));
    await c.a.delete(c.k("x"));
  });

  test("a write through one handle is read through another", async (c) => {
    const b = await c.open();
    await c.a.put(c.k("shared"), "from a");
    assert.equal(text(await b.get(c.k("shared"))), "from a");
    await b.put(c.k("shared"), "from b");
    assert.equal(text(await c.a.get(c.k("shared"))), "from b");
    await b.delete(c.k("shared"));
    assert.equal(await c.a.exists(c.k("shared")), false);
  });
}
