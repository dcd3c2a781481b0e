// The sorted key index of in-memory scans (memory: and the read cache)
// against the obvious answer, pageOfList over every key, on random keys,
// bounds and changes; including enough changes to make it rebuild.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Entry, ScanRange } from "../../core/driver.ts";
import { pageOfList } from "../../core/scan.ts";
import { SortedKeys } from "../../core/sorted_keys.ts";

// A small seeded generator, so a failure can be replayed.
function random(seed: number): () => number {
  return () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
}

const PARTS = ["a", "b", "a0", "é", "z", "\u{1F600}", "\uFFFD"];

function key(next: () => number): string {
  const depth = 1 + Math.floor(next() * 3);
  const parts: string[] = [];
  for (let i = 0; i < depth; i++) {
    parts.push(PARTS[Math.floor(next() * PARTS.length)]);
  }
  return parts.join("/");
}

function entry(key: string): Entry {
  return { key, value: new Uint8Array(0), lastIndex: 1n };
}

describe("SortedKeys", () => {
  test("pages match pageOfList for random keys, bounds, directions and changes", () => {
    const next = random(7);
    const keys = new Set<string>();
    const index = new SortedKeys(() => keys);
    for (let round = 0; round < 400; round++) {
      // Between reads: a few changes, now and then more than the index
      // keeps up with (it rebuilds).
      const changes = round % 50 === 0 ? 1_500 : Math.floor(next() * 5);
      for (let i = 0; i < changes; i++) {
        const k = key(next);
        if (next() < 0.6) {
          if (!keys.has(k)) {
            keys.add(k);
            index.added(k);
          }
        } else if (keys.delete(k)) index.removed(k);
      }
      const dirs = ["", "a/", "a/b/", "é/", "\u{1F600}/"];
      const range: ScanRange = {
        dir: dirs[Math.floor(next() * dirs.length)],
        lowerInclusive: next() < 0.5,
        reverse: next() < 0.5,
        limit: 1 + Math.floor(next() * 8),
        keysOnly: false,
      };
      if (next() < 0.5) range.lower = key(next);
      if (next() < 0.5) range.upper = key(next);
      const expected = pageOfList([...keys].map(entry), range).map((e) =>
        e.key
      );
      assert.deepEqual(
        index.page(range, (k) => k),
        expected,
        `round ${round}: ${JSON.stringify(range)}`,
      );
    }
  });

  test("keys the reader skips (expired) are left out and the page still fills", () => {
    const keys = new Set(["t/1", "t/2", "t/3", "t/4", "u/1"]);
    const index = new SortedKeys(() => keys);
    const range: ScanRange = {
      dir: "t/",
      lowerInclusive: true,
      reverse: false,
      limit: 2,
      keysOnly: false,
    };
    assert.deepEqual(
      index.page(range, (k) => (k === "t/1" ? undefined : k)),
      ["t/2", "t/3"],
    );
    assert.deepEqual(
      index.page({ ...range, reverse: true }, (k) => k),
      ["t/4", "t/3"],
    );
    index.clear();
    keys.clear();
    assert.deepEqual(index.page(range, (k) => k), []);
  });
});
