// The Keyv adapter passes Keyv's own compliance suite (@keyv/test-suite) on
// the memory backend, with Keyv 5 and Keyv 6 (installed as the alias
// `keyv6`); tests/adapters/keyv_backends_test.ts runs it on the others.
import { describe, test } from "node:test";
import Keyv from "keyv";
import Keyv6, { KeyvMemoryAdapter } from "keyv6";
import keyvTestSuite, { keyvIteratorTests } from "@keyv/test-suite";
import assert from "node:assert/strict";
import { KeyvValkeyrie } from "../../adapters/keyv/mod.ts";
import { expiresAt, openStore } from "../../mod.ts";
import { vitestShim } from "./keyv_suite_shim.ts";

describe("Keyv compliance suite: memory", () => {
  const store = () => new KeyvValkeyrie("memory:keyv-suite");
  keyvTestSuite(vitestShim(test) as never, Keyv, store);
  keyvIteratorTests(vitestShim(test) as never, Keyv, store);
});

// @keyv/test-suite's newest release (2.1.2) was written for Keyv 5, and a
// few of its cases check Keyv 5's own API (deleteMany resolving one boolean),
// which Keyv 6 changed: Keyv 6 fails them with its own in-memory store too.
// So each case runs on the adapter and on Keyv 6's own store: the adapter
// must pass every case, but may fail one that Keyv 6's store fails too; the
// cases it fails are listed by name.
describe("Keyv 6 compliance suite: memory, against Keyv 6's own store", () => {
  const cases = (store: () => unknown) => {
    const found = new Map<string, () => Promise<void>>();
    const collect = (name: string, fn: () => Promise<void>) =>
      void found.set(name, fn);
    keyvTestSuite(vitestShim(collect) as never, Keyv6 as never, store as never);
    keyvIteratorTests(
      vitestShim(collect) as never,
      Keyv6 as never,
      store as never,
    );
    return found;
  };
  const ours = cases(() => new KeyvValkeyrie("memory:keyv6-suite"));
  const theirs = cases(() => new KeyvMemoryAdapter(new Map()));
  const outcome = async (fn: () => Promise<void>) => {
    try {
      await fn();
      return "passes";
    } catch (error) {
      return `fails: ${(error as Error).message}`;
    }
  };
  const sharedFailures: string[] = [];
  for (const [name, fn] of ours) {
    test(name, async () => {
      const mine = await outcome(fn);
      if (mine === "passes") return;
      const reference = await outcome(theirs.get(name)!);
      assert.notEqual(
        reference,
        "passes",
        `adapter ${mine}; Keyv 6's own store passes`,
      );
      sharedFailures.push(name);
    });
  }
  test("the one case failed, with Keyv 6's own store too, checks Keyv 5's API", () => {
    assert.equal(ours.size, theirs.size);
    assert.ok(ours.size >= 40, `${ours.size} cases`);
    // Keyv 5's deleteMany resolved one boolean, Keyv 6's one per key.
    assert.deepEqual(sharedFailures, [
      ".deleteMany([keys]) with nonexistent keys resolves to false",
    ]);
  });
});

for (
  const [version, KeyvClass] of [["5", Keyv], ["6", Keyv6]] as [
    string,
    typeof Keyv,
  ][]
) {
  describe(`Keyv ${version} namespaces over one store`, () => {
    test("two namespaces keep their own values, clears and iterations", async () => {
      await using store = await openStore(`memory:keyv${version}-namespaces`);
      const a = new KeyvClass({
        store: new KeyvValkeyrie(store),
        namespace: "a",
      });
      const b = new KeyvClass({
        store: new KeyvValkeyrie(store),
        namespace: "b",
      });
      await a.set("k", "from-a");
      await b.set("k", "from-b");
      assert.equal(await a.get("k"), "from-a");
      assert.equal(await b.get("k"), "from-b");
      assert.deepEqual(await a.get(["k", "missing"]), ["from-a", undefined]);
      await a.setMany([{ key: "m", value: 1 }, { key: "n", value: 2 }]);
      assert.deepEqual(await b.get(["m", "n"]), [undefined, undefined]);
      assert.deepEqual((await store.list("")).map((p) => p.key), [
        "a/k",
        "a/m",
        "a/n",
        "b/k",
      ]);
      assert.equal(await b.has("m"), false);
      assert.equal(await a.has("m"), true);
      const seen = [];
      for await (const entry of a.iterator!(undefined)) seen.push(entry);
      assert.deepEqual(seen, [["k", "from-a"], ["m", 1], ["n", 2]]);
      assert.equal(await b.delete("m"), false);
      assert.equal(await a.get("m"), 1);
      await a.deleteMany(["m", "n"]);
      assert.deepEqual(await a.get(["m", "n"]), [undefined, undefined]);
      await a.clear();
      assert.equal(await a.get("k"), undefined);
      assert.equal(await b.get("k"), "from-b");
    });

    test("a TTL becomes the store's TTL", async () => {
      await using store = await openStore(`memory:keyv${version}-ttl`);
      const keyv = new KeyvClass({ store: new KeyvValkeyrie(store) });
      await keyv.set("brief", "x", 60_000);
      await keyv.set("kept", "y");
      const brief = (await store.list("")).find((p) =>
        p.key.endsWith("brief")
      )!;
      const kept = (await store.list("")).find((p) => p.key.endsWith("kept"))!;
      const at = expiresAt(brief);
      assert.ok(at !== undefined, "the TTL reached the store");
      // Within the minute it was given (whole milliseconds, rounded up).
      assert.ok(at <= Date.now() + 60_001);
      assert.equal(expiresAt(kept), undefined);
    });
  });
}

describe("Keyv adapter", () => {
  test("maps namespaces to key segments and escapes what keys cannot hold", async () => {
    await using store = await openStore("memory:");
    const keyv = new Keyv({
      store: new KeyvValkeyrie(store),
      namespace: "cache",
    });
    await keyv.set("user:42", "alice");
    await keyv.set("a/b", 1);
    await keyv.set(".hidden", true);
    const other = new Keyv({
      store: new KeyvValkeyrie(store),
      namespace: "other",
    });
    await other.set("x", "y");
    assert.deepEqual((await store.list("")).map((p) => p.key), [
      "cache/%2Ehidden",
      "cache/a%2Fb",
      "cache/user:42",
      "other/x",
    ]);
    assert.equal(await keyv.get("a/b"), 1);
    await keyv.clear();
    assert.deepEqual((await store.list("")).map((p) => p.key), ["other/x"]);
    const entries = [];
    for await (const entry of other.iterator!(undefined)) entries.push(entry);
    assert.deepEqual(entries, [["x", "y"]]);
  });

  test("a wrong store or options fail when the adapter is made", () => {
    const bad: [unknown, unknown, RegExp][] = [
      [{}, undefined, /store must be a Store or a store URL/],
      [undefined, undefined, /store must be a Store or a store URL/],
      ["no scheme", undefined, /KeyvValkeyrie: store: /],
      ["memory:", { openOption: {} }, /unknown option "openOption"/],
      ["memory:", { openOptions: "x" }, /openOptions must be an object/],
    ];
    for (const [store, options, message] of bad) {
      assert.throws(
        () => new KeyvValkeyrie(store as never, options as never),
        { name: "InvalidConfigurationError", message },
      );
    }
  });
});
