// The Keyv adapter passes Keyv's own compliance suite (@keyv/test-suite) on
// the memory backend; tests/adapters/keyv_backends_test.ts runs it on the others.
import { describe, test } from "node:test";
import Keyv from "keyv";
import keyvTestSuite, { keyvIteratorTests } from "@keyv/test-suite";
import assert from "node:assert/strict";
import { KeyvValkeyrie } from "../../adapters/keyv/mod.ts";
import { openStore } from "../../mod.ts";
import { vitestShim } from "./keyv_suite_shim.ts";

describe("Keyv compliance suite: memory", () => {
  const store = () => new KeyvValkeyrie("memory:keyv-suite");
  keyvTestSuite(vitestShim(test) as never, Keyv, store);
  keyvIteratorTests(vitestShim(test) as never, Keyv, store);
});

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
});
