// Plain puts and deletes issued together are one commit. A large group is
// applied in key order (so each page is copied once) and a small one in the
// order issued; either way each write gets the revision of its place in the
// order issued, and the last write to a key is what stays.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MemoryHost } from "../../engine/host.ts";
import { openDb, Rng } from "./support.ts";

describe("group commit of plain writes", () => {
  for (const cachePages of [16, 65_536]) {
    // 16 pages: a group of more than 16 KiB is sorted; 65,536: none here is.
    test(`writes to repeated keys keep their order (cache of ${cachePages} pages)`, async () => {
      const db = await openDb(new MemoryHost(), cachePages);
      try {
        const rng = new Rng(cachePages);
        const last = new Map<string, { value: string | null; index: number }>();
        const issued: Promise<bigint | void>[] = [];
        for (let i = 0; i < 3_000; i++) {
          const key = `k${rng.below(300)}`;
          if (rng.next() < 0.2) {
            issued.push(db.delete(key));
            last.set(key, { value: null, index: i });
          } else {
            const value = `${key}=${i}`.padEnd(40, ".");
            issued.push(db.put(key, new TextEncoder().encode(value)));
            last.set(key, { value, index: i });
          }
        }
        const results = await Promise.all(issued);
        const revisions = results.filter((r) => typeof r === "bigint");
        for (let i = 1; i < revisions.length; i++) {
          assert.ok(
            revisions[i] > revisions[i - 1],
            "revisions in issue order",
          );
        }
        for (const [key, { value, index }] of last) {
          const entry = db.get(key);
          if (value === null) {
            assert.equal(entry, null, key);
            continue;
          }
          assert.equal(new TextDecoder().decode(entry!.value), value, key);
          assert.equal(entry!.lastIndex, results[index], key);
        }
      } finally {
        await db.close();
      }
    });
  }
});
