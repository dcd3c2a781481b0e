// CONTRACT.md "Keys": normalisation, invalid keys, length limit, hierarchy by
// segment, invisible parents, a key with a value and children at once.
import assert from "node:assert/strict";
import { InvalidKeyError } from "../core/errors.ts";
import type { KVPair } from "../core/types.ts";
import {
  caseDefiner,
  type ConformanceTarget,
  keys,
  StreamReader,
  type TestRunner,
  text,
} from "./harness.ts";

/** Keys every operation must reject, with why. */
export const INVALID_KEYS: ReadonlyArray<[string, string]> = [
  ["", "empty"],
  ["/", "empty once the slash is ignored"],
  ["//", "empty once the slashes are ignored"],
  ["a//b", "an empty segment"],
  ["a//", "an empty last segment"],
  ["//a", "an empty first segment"],
  [".", "a '.' segment"],
  ["a/./b", "a '.' segment"],
  ["a/..", "a '..' segment"],
  ["../a", "a '..' segment"],
  ["a\u0000b", "U+0000"],
  ["a\nb", "a newline"],
  ["a\u001fb", "U+001F"],
  ["a\u007fb", "U+007F"],
  ["a\ud800", "a lone high surrogate"],
  ["\udc00a", "a lone low surrogate"],
];

/** Keys that are valid everywhere although they look odd. */
export const ODD_KEYS: readonly string[] = [
  "star*",
  "question?",
  "[brackets]",
  "{braces}",
  "percent%20",
  "with space",
  "colon:here",
  "back\\slash",
  "plus+hash#amp&eq=",
  "tilde~",
  "ünïcödé",
  "emoji😀",
  "...",
  ".hidden",
  "a.b",
];

export function keyCases(runner: TestRunner, target: ConformanceTarget): void {
  const test = caseDefiner(runner, target);

  test("one leading and one trailing slash name the same key", async (c) => {
    const s = c.a;
    await s.put(`/${c.k("a", "b")}/`, "v1");
    assert.equal(text(await s.get(c.k("a", "b"))), "v1");
    assert.equal(text(await s.get(`/${c.k("a", "b")}`)), "v1");
    assert.equal(text(await s.get(`${c.k("a", "b")}/`)), "v1");
    const pair = await s.get(`/${c.k("a", "b")}/`);
    assert.equal(pair?.key, c.k("a", "b"));
    assert.deepEqual(keys(await s.list(`/${c.k("a")}/`)), [c.k("a", "b")]);
  });

  test("invalid keys are rejected by every operation and change nothing", async (c) => {
    const s = await c.openScoped();
    const previous: KVPair = {
      key: "x",
      value: new Uint8Array(),
      lastIndex: 1n,
    };
    for (const [key, why] of INVALID_KEYS) {
      const label = `${JSON.stringify(key)} (${why})`;
      const rejects = (promise: Promise<unknown>, op: string) =>
        assert.rejects(promise, InvalidKeyError, `${op} of ${label}`);
      await rejects(s.put(key, "v"), "put");
      await rejects(s.get(key), "get");
      await rejects(s.exists(key), "exists");
      await rejects(s.delete(key), "delete");
      await rejects(s.atomicPut(key, "v", null), "atomicPut");
      await rejects(s.atomicDelete(key, previous), "atomicDelete");
      await rejects(s.lock(key), "lock");
      assert.throws(() => s.watch(key), InvalidKeyError, `watch of ${label}`);
      assert.throws(() => s.atomic().put(key, "v"), InvalidKeyError);
      assert.throws(() => s.atomic().check(key, null), InvalidKeyError);
      assert.throws(() => s.atomic().delete(key), InvalidKeyError);
      // The empty key is the root of a tree, so only the others are invalid
      // prefixes.
      if (key.replaceAll("/", "") !== "") {
        await rejects(s.list(key), "list");
        await rejects(s.deleteTree(key), "deleteTree");
        assert.throws(() => s.watchTree(key), InvalidKeyError);
      }
    }
    assert.deepEqual(await s.list(""), []);
  });

  test("a key of exactly maxKeyBytes works and one byte more is rejected", async (c) => {
    const s = await c.openScoped();
    const max = s.limits.maxKeyBytes;
    assert.ok(max >= 64, `maxKeyBytes is ${max}, too small to be useful`);
    // Two-byte characters count as two: the limit is in UTF-8 bytes.
    const fits = "k/" + "x".repeat(max - 4) + "é";
    const over = "k/" + "x".repeat(max - 3) + "é";
    assert.equal(new TextEncoder().encode(fits).length, max);
    await s.put(fits, "v");
    assert.equal(text(await s.get(fits)), "v");
    assert.deepEqual(keys(await s.list("k")), [fits]);
    await assert.rejects(s.put(over, "v"), InvalidKeyError);
    await assert.rejects(s.get(over), InvalidKeyError);
    assert.deepEqual(keys(await s.list("")), [fits]);
  });

  test("odd but valid keys round-trip and list exactly", async (c) => {
    const s = await c.openScoped();
    for (const key of ODD_KEYS) await s.put(`odd/${key}`, key);
    for (const key of ODD_KEYS) {
      const pair = await s.get(`odd/${key}`);
      assert.equal(pair?.key, `odd/${key}`);
      assert.equal(text(pair), key);
    }
    const listed = await s.list("odd");
    assert.deepEqual(
      new Set(keys(listed)),
      new Set(ODD_KEYS.map((k) => `odd/${k}`)),
    );
  });

  test("glob characters in a prefix match only that prefix", async (c) => {
    const s = await c.openScoped();
    for (
      const key of [
        "p/[ab]/x",
        "p/a/x",
        "p/b/x",
        "p/*/x",
        "p/ab/x",
        "p/?/x",
        "p/c/x",
      ]
    ) {
      await s.put(key, key);
    }
    assert.deepEqual(keys(await s.list("p/[ab]")), ["p/[ab]/x"]);
    assert.deepEqual(keys(await s.list("p/*")), ["p/*/x"]);
    assert.deepEqual(keys(await s.list("p/?")), ["p/?/x"]);
    const watch = new StreamReader(s.watchTree("p/*"));
    assert.deepEqual(keys(await watch.next()), ["p/*/x"]);
    await s.put("p/a/y", "no");
    await s.put("p/*/y", "yes");
    assert.deepEqual(keys(await watch.next()), ["p/*/x", "p/*/y"]);
    await watch.cancel();
    await s.deleteTree("p/*");
    assert.deepEqual(keys(await s.list("p")), [
      "p/?/x",
      "p/[ab]/x",
      "p/a/x",
      "p/a/y",
      "p/ab/x",
      "p/b/x",
      "p/c/x",
    ]);
  });

  test("hierarchy is by segment, never by string prefix", async (c) => {
    const s = await c.openScoped();
    for (const key of ["app", "app/x", "app/x/y", "apple", "app-x", "app x"]) {
      await s.put(key, key);
    }
    assert.deepEqual(keys(await s.list("app")), ["app/x", "app/x/y"]);
    const tree = new StreamReader(s.watchTree("app"));
    assert.deepEqual(keys(await tree.next()), ["app/x", "app/x/y"]);
    // Every snapshot holds only keys under app/. A deleteTree that is not
    // one atomic step (DynamoDB deletes in batches; a polled watch may see a
    // batch) may show states in between; the last one is the final state.
    const onlyUnderApp = (pairs: KVPair[], final: string[]) => {
      for (const key of keys(pairs)) {
        assert.ok(key.startsWith("app/"), `${key} in the tree of app`);
      }
      return keys(pairs).join() === final.join();
    };
    await s.put("apple", "changed");
    await s.put("app/z", "z");
    const grown = ["app/x", "app/x/y", "app/z"];
    await tree.until((pairs) => onlyUnderApp(pairs, grown));
    await s.deleteTree("app");
    await tree.until((pairs) => onlyUnderApp(pairs, []));
    await tree.cancel();
    assert.deepEqual(keys(await s.list("")), ["app x", "app-x", "apple"]);
  });

  test("a key may hold a value and have children at once", async (c) => {
    const s = c.a;
    await s.put(c.k("dir"), "parent");
    await s.put(c.k("dir", "child"), "child");
    assert.equal(text(await s.get(c.k("dir"))), "parent");
    assert.equal(text(await s.get(c.k("dir", "child"))), "child");
    assert.deepEqual(keys(await s.list(c.k("dir"))), [c.k("dir", "child")]);
    await s.delete(c.k("dir"));
    assert.equal(await s.get(c.k("dir")), null);
    assert.equal(text(await s.get(c.k("dir", "child"))), "child");
    await s.put(c.k("dir"), "again");
    assert.equal(text(await s.get(c.k("dir"))), "again");
  });

  test("only written keys exist: parents of a deep key are invisible", async (c) => {
    const s = c.a;
    await s.put(c.k("p1", "p2", "p3", "leaf"), "leaf");
    for (const parent of [c.k("p1"), c.k("p1", "p2"), c.k("p1", "p2", "p3")]) {
      assert.equal(await s.get(parent), null, parent);
      assert.equal(await s.exists(parent), false, parent);
    }
    assert.deepEqual(keys(await s.list(c.k())), [
      c.k("p1", "p2", "p3", "leaf"),
    ]);
    const tree = new StreamReader(s.watchTree(c.k("p1")));
    assert.deepEqual(keys(await tree.next()), [c.k("p1", "p2", "p3", "leaf")]);
    await tree.cancel();
    await s.delete(c.k("p1", "p2", "p3", "leaf"));
    assert.deepEqual(await s.list(c.k()), []);
  });
}
