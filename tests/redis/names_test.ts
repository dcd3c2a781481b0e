// Pure parts of the Redis backend on their own: how bookkeeping names are
// made (each in its key's cluster slot) and told apart from store keys.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  companionsPattern,
  counterKey,
  decodeName,
  isStoreKey,
  keyOfCompanion,
  lockKey,
  startsWithPattern,
  versionKey,
} from "../../backends/redis/names.ts";
import { keySlot } from "../../backends/redis/slots.ts";

describe("redis names", () => {
  const keys = ["a", "app/config", "{user42}/cart", "ünï/🙂", "a*b?[c]"];

  test("a key's companions live in its cluster slot", () => {
    for (const key of keys) {
      const slot = keySlot(key);
      assert.equal(keySlot(versionKey(key)), slot, `version of ${key}`);
      assert.equal(keySlot(lockKey(key)), slot, `lock of ${key}`);
      assert.equal(keySlot(counterKey(key)), slot, `counter of ${key}`);
    }
  });

  test("a version companion names its key back, and nothing else does", () => {
    for (const key of keys) {
      assert.equal(keyOfCompanion(versionKey(key)), key);
    }
    assert.equal(keyOfCompanion(lockKey("a")), undefined);
    assert.equal(keyOfCompanion("/v/{zzz}a"), undefined, "a foreign tag");
    assert.equal(keyOfCompanion("plain"), undefined);
  });

  test("bookkeeping and foreign names are no store keys", () => {
    for (const key of keys) assert.equal(isStoreKey(key, 1024), true, key);
    for (
      const name of [versionKey("a"), lockKey("a"), counterKey("a"), "", "a//b"]
    ) {
      assert.equal(isStoreKey(name, 1024), false, name);
    }
    assert.equal(isStoreKey("x".repeat(2_000), 1024), false, "too long");
  });

  test("glob patterns escape what a prefix holds", () => {
    assert.equal(startsWithPattern("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\*");
    assert.match(companionsPattern("p/"), /^\/v\/\{\?+\}p\/\*$/);
  });

  test("names that are not UTF-8 decode to undefined", () => {
    assert.equal(decodeName(new TextEncoder().encode("ok")), "ok");
    assert.equal(decodeName(new Uint8Array([0xff, 0xfe])), undefined);
  });
});
