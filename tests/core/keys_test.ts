// core/keys.ts and core/url.ts: the key rules and store URLs, case by case.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  InvalidConfigurationError,
  InvalidKeyError,
} from "../../core/errors.ts";
import {
  compareKeys,
  dirOf,
  joinKey,
  normalizeKey,
  normalizePrefix,
  utf8Length,
} from "../../core/keys.ts";
import { parseStoreUrl } from "../../core/url.ts";

describe("normalizeKey", () => {
  test("drops one leading and one trailing slash and nothing else", () => {
    assert.equal(normalizeKey("a/b", 100), "a/b");
    assert.equal(normalizeKey("/a/b", 100), "a/b");
    assert.equal(normalizeKey("a/b/", 100), "a/b");
    assert.equal(normalizeKey("/a/b/", 100), "a/b");
    assert.throws(() => normalizeKey("//a", 100), InvalidKeyError);
    assert.throws(() => normalizeKey("a//", 100), InvalidKeyError);
  });

  test("rejects empty keys and empty, dot and dot-dot segments", () => {
    for (
      const key of ["", "/", "//", "a//b", ".", "..", "a/.", "./a", "a/../b"]
    ) {
      assert.throws(() => normalizeKey(key, 100), InvalidKeyError, key);
    }
  });

  test("accepts segments that merely contain dots", () => {
    for (const key of ["...", ".a", "a.", "a..b", "a/.../b", "..a"]) {
      assert.equal(normalizeKey(key, 100), key);
    }
  });

  test("rejects control characters and lone surrogates, accepts pairs", () => {
    for (const c of ["\u0000", "\t", "\n", "\u001f", "\u007f"]) {
      assert.throws(() => normalizeKey(`a${c}b`, 100), InvalidKeyError);
    }
    assert.throws(() => normalizeKey("a\ud83d", 100), InvalidKeyError);
    assert.throws(() => normalizeKey("\ude00a", 100), InvalidKeyError);
    assert.equal(normalizeKey("a😀b", 100), "a😀b");
    assert.equal(normalizeKey("\u0080\u00ff\ufffd", 100), "\u0080\u00ff\ufffd");
  });

  test("counts the limit in UTF-8 bytes, excluding the ignored slashes", () => {
    assert.equal(normalizeKey("/" + "x".repeat(10) + "/", 10), "x".repeat(10));
    assert.throws(() => normalizeKey("x".repeat(11), 10), InvalidKeyError);
    assert.equal(normalizeKey("é".repeat(5), 10), "é".repeat(5));
    assert.throws(() => normalizeKey("é".repeat(5) + "x", 10), /11 bytes/);
    assert.equal(normalizeKey("😀😀", 8), "😀😀");
    assert.throws(() => normalizeKey("😀😀", 7), InvalidKeyError);
  });

  test("says why a key is invalid", () => {
    assert.throws(() => normalizeKey("a//b", 100), /empty segment/);
    assert.throws(() => normalizeKey("a/../b", 100), /'\.\.'/);
    assert.throws(() => normalizeKey("a\u0001", 100), /U\+0001/);
    assert.throws(() => normalizeKey(42 as unknown as string, 100), /string/);
  });
});

describe("normalizePrefix", () => {
  test("allows the root, written as empty or as one slash", () => {
    assert.equal(normalizePrefix("", 10), "");
    assert.equal(normalizePrefix("/", 10), "");
    assert.equal(normalizePrefix("/a/", 10), "a");
    assert.throws(() => normalizePrefix("a//b", 10), InvalidKeyError);
  });
});

describe("key helpers", () => {
  test("utf8Length matches TextEncoder", () => {
    for (const text of ["", "abc", "é", "€", "😀", "a😀é€z", "\u07ff\u0800"]) {
      assert.equal(utf8Length(text), new TextEncoder().encode(text).length);
    }
  });

  test("compareKeys orders by UTF-8 bytes", () => {
    const keys = [
      "b",
      "a",
      "\uffff",
      "😀",
      "\ufb01",
      "é",
      "a/b",
      "a-",
      "~",
      "",
    ];
    const bytes = (s: string) => [...new TextEncoder().encode(s)];
    const byBytes = [...keys].sort((x, y) => {
      const a = bytes(x);
      const b = bytes(y);
      for (let i = 0; i < Math.min(a.length, b.length); i++) {
        if (a[i] !== b[i]) return a[i] - b[i];
      }
      return a.length - b.length;
    });
    assert.deepEqual([...keys].sort(compareKeys), byBytes);
    assert.ok(compareKeys("\uffff", "😀") < 0, "U+FFFF before U+1F600");
  });

  test("joinKey and dirOf build full keys and tree prefixes", () => {
    assert.equal(joinKey("", "a"), "a");
    assert.equal(joinKey("p", ""), "p");
    assert.equal(joinKey("p", "a/b"), "p/a/b");
    assert.equal(dirOf(""), "");
    assert.equal(dirOf("app"), "app/");
  });
});

describe("parseStoreUrl", () => {
  test("reads several hosts, credentials, a path and parameters", () => {
    const url = parseStoreUrl(
      "etcd://user:p%40ss@h1:2379,h2:2379/some/path?timeout=5&x=a%20b#frag",
    );
    assert.deepEqual(url, {
      scheme: "etcd",
      hosts: ["h1:2379", "h2:2379"],
      username: "user",
      password: "p@ss",
      path: "/some/path",
      params: { timeout: "5", x: "a b" },
    });
  });

  test("reads opaque URLs as a path", () => {
    assert.deepEqual(parseStoreUrl("file:./data.vkr"), {
      scheme: "file",
      hosts: [],
      path: "./data.vkr",
      params: {},
    });
    assert.equal(parseStoreUrl("memory:").path, "");
    assert.equal(parseStoreUrl("FILE:///abs/x.db").path, "/abs/x.db");
    assert.equal(parseStoreUrl(new URL("redis://h:1/2")).hosts[0], "h:1");
  });

  test("rejects what is not a store URL", () => {
    for (const bad of ["", "no-scheme", "://x", "redis://a,,b", "x:%zz"]) {
      assert.throws(() => parseStoreUrl(bad), InvalidConfigurationError, bad);
    }
  });
});
