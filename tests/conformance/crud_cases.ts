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
