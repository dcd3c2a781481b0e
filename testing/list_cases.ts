// CONTRACT.md "Operations": list and deleteTree — strictly under the prefix,
// any depth, sorted by UTF-8 bytes, the whole store for "", any number of
// keys.
import assert from "node:assert/strict";
import {
  caseDefiner,
  type ConformanceTarget,
  keys,
  type TestRunner,
  text,
} from "./harness.ts";
import { eachLimited } from "../core/concurrency.ts";

/** More keys than any backend returns in one page or deletes in one batch. */
const MANY_KEYS = 1_200;

export function listCases(runner: TestRunner, target: ConformanceTarget): void {
  const test = caseDefiner(runner, target);

  // valkeyrie's testList.
  test("list returns the keys under a prefix with their values", async (c) => {
    const s = c.a;
    await s.put(c.k("testList", "first"), "first");
    await s.put(c.k("testList", "second"), "second");
    const pairs = await s.list(c.k("testList"));
    assert.deepEqual(keys(pairs), [
      c.k("testList", "first"),
      c.k("testList", "second"),
    ]);
    assert.deepEqual(pairs.map(text), ["first", "second"]);
    for (const pair of pairs) {
      assert.equal(pair.lastIndex, (await s.get(pair.key))!.lastIndex);
    }
  });

  test("list of a tree with subfolders gives every depth, sorted, without the prefix key", async (c) => {
    const s = c.a;
    const tree = ["b/c/d", "e/f", "a", "b", "b/c", "b/c/e"];
    await s.put(c.k("tree"), "the prefix key itself");
    for (const key of tree) await s.put(c.k("tree", key), key);
    assert.deepEqual(keys(await s.list(c.k("tree"))), [
      c.k("tree", "a"),
      c.k("tree", "b"),
      c.k("tree", "b", "c"),
      c.k("tree", "b", "c", "d"),
      c.k("tree", "b", "c", "e"),
      c.k("tree", "e", "f"),
    ]);
    assert.deepEqual(keys(await s.list(`${c.k("tree", "b")}/`)), [
      c.k("tree", "b", "c"),
      c.k("tree", "b", "c", "d"),
      c.k("tree", "b", "c", "e"),
    ]);
    assert.deepEqual(await s.list(c.k("tree", "a")), []);
    assert.deepEqual(await s.list(c.k("nothing")), []);
  });

  test("list sorts by UTF-8 bytes, not by UTF-16 units", async (c) => {
    const s = await c.openScoped();
    // U+FB01 sorts before U+1F600 in UTF-8 (EF.. < F0..) but after it in
    // UTF-16 (FB01 > D83D).
    const names = ["z", "a", "B", "~", "é", "\ufb01", "😀", "a/b", "a0", "a-"];
    for (const name of names) await s.put(`s/${name}`, name);
    const expected = names.map((n) => `s/${n}`).sort((x, y) => {
      const a = [...new TextEncoder().encode(x)];
      const b = [...new TextEncoder().encode(y)];
      for (let i = 0; i < Math.min(a.length, b.length); i++) {
        if (a[i] !== b[i]) return a[i] - b[i];
      }
      return a.length - b.length;
    });
    assert.deepEqual(keys(await s.list("s")), expected);
  });

  test('list("") and deleteTree("") cover exactly the store\'s prefix', async (c) => {
    const scoped = await c.openScoped();
    const other = await c.open({ prefix: c.k("other") });
    await scoped.put("one", "1");
    await scoped.put("two/three", "3");
    await other.put("elsewhere", "x");
    assert.deepEqual(keys(await scoped.list("")), [
      "one",
      "other/elsewhere",
      "two/three",
    ]);
    assert.deepEqual(keys(await other.list("/")), ["elsewhere"]);
    await other.deleteTree("");
    assert.deepEqual(keys(await scoped.list("")), ["one", "two/three"]);
    await scoped.deleteTree("");
    assert.deepEqual(await scoped.list(""), []);
  });

  test("deleteTree removes the key itself and everything under it, and nothing beside", async (c) => {
    const s = c.a;
    for (const key of ["t", "t/a", "t/a/b", "t/a/b/c/d", "tt", "t-x", "u"]) {
      await s.put(c.k(key), key);
    }
    await s.deleteTree(c.k("t"));
    assert.deepEqual(keys(await s.list(c.k())), [
      c.k("t-x"),
      c.k("tt"),
      c.k("u"),
    ]);
    assert.equal(await s.exists(c.k("t")), false);
    await s.deleteTree(`/${c.k("u")}/`);
    assert.equal(await s.exists(c.k("u")), false);
  });

  test(
    `list and deleteTree handle ${MANY_KEYS} keys: no page or batch limit leaks`,
    async (c) => {
      const s = c.a;
      const names = Array.from(
        { length: MANY_KEYS },
        (_, i) => c.k("many", `d${i % 7}`, `key-${String(i).padStart(5, "0")}`),
      );
      await eachLimited(names, 32, (key) => s.put(key, "v"));
      const listed = await s.list(c.k("many"));
      assert.equal(listed.length, MANY_KEYS);
      assert.deepEqual(keys(listed), [...names].sort());
      await s.deleteTree(c.k("many"));
      assert.deepEqual(await s.list(c.k("many")), []);
    },
    180_000,
  );
}
