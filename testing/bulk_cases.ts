// CONTRACT.md "Second wave", Bulk calls: getMany, putMany and deleteMany —
// results in the order asked, every key and value checked before any I/O,
// more entries than one batch of any backend (DynamoDB's 25 writes and 100
// reads, Consul's 64 and etcd's 128 operations per transaction, the 256 keys
// per read of Redis), and put's lastIndex for each.
import assert from "node:assert/strict";
import {
  InvalidArgumentError,
  InvalidKeyError,
  ValueTooLargeError,
} from "../core/errors.ts";
import type { PutEntry } from "../core/types.ts";
import {
  caseDefiner,
  type ConformanceTarget,
  sleep,
  type TestRunner,
  text,
} from "./harness.ts";
import { expiryBound, TTL_MS } from "./ttl_cases.ts";

/**
 * How many keys the bulk cases write: more than one batch (or transaction)
 * of any backend, so a call that chunks must get its chunks right.
 */
const BEYOND_BATCH = 300;

export function bulkCases(
  runner: TestRunner,
  target: ConformanceTarget,
): void {
  const test = caseDefiner(runner, target);

  test("getMany returns pairs in the order asked, null for what is absent", async (c) => {
    const s = c.a;
    await s.put(c.k("a"), "1");
    await s.put(c.k("c"), "3");
    const pairs = await s.getMany([c.k("c"), c.k("b"), c.k("a"), c.k("c")]);
    assert.deepEqual(pairs.map(text), ["3", null, "1", "3"]);
    assert.equal(pairs[0]!.key, c.k("c"));
    assert.equal(pairs[0]!.lastIndex, (await s.get(c.k("c")))!.lastIndex);
    assert.deepEqual(await s.getMany([]), []);
  });

  test(
    "getMany of more keys than one batch keeps the order, absent ones too",
    async (c) => {
      const s = c.a;
      const keys = Array.from(
        { length: BEYOND_BATCH },
        (_, i) => c.k("g", String(i)),
      );
      // Every other key written, the rest absent; asked for in reverse.
      await s.putMany(
        keys.filter((_, i) => i % 2 === 0).map((key) => ({ key, value: key })),
      );
      const asked = [...keys].reverse();
      const pairs = await s.getMany(asked);
      assert.equal(pairs.length, asked.length);
      pairs.forEach((pair, i) => {
        const written = keys.indexOf(asked[i]) % 2 === 0;
        assert.equal(text(pair), written ? asked[i] : null, asked[i]);
        if (pair) assert.equal(pair.key, asked[i]);
      });
    },
    120_000,
  );

  test(
    "putMany writes every entry, returns each lastIndex, and honours ttl",
    async (c) => {
      const s = c.a;
      const entries = Array.from({ length: BEYOND_BATCH }, (_, i) => ({
        key: c.k("many", String(i).padStart(3, "0")),
        value: `v${i}`,
      }));
      const indexes = await s.putMany([
        ...entries,
        { key: c.k("short"), value: "soon gone", ttl: TTL_MS },
      ]);
      const written = Date.now();
      assert.equal(indexes.length, entries.length + 1);
      for (const index of indexes) assert.equal(typeof index, "bigint");
      const pairs = await s.getMany(entries.map((e) => e.key));
      pairs.forEach((pair, i) => {
        assert.equal(text(pair), `v${i}`, entries[i].key);
        assert.equal(pair!.lastIndex, indexes[i], entries[i].key);
      });
      assert.equal((await s.list(c.k("many"))).length, entries.length);
      // Past the bound, measured from the end of the call: gone by then.
      await sleep(expiryBound(s) - (Date.now() - written));
      assert.equal(await s.get(c.k("short")), null);
      assert.deepEqual(await s.putMany([]), []);
    },
    120_000,
  );

  test(
    "deleteMany deletes every key, absent ones too, and nothing beside",
    async (c) => {
      const s = c.a;
      const keys = Array.from(
        { length: BEYOND_BATCH },
        (_, i) => c.k("d", String(i)),
      );
      await s.putMany(keys.map((key) => ({ key, value: "x" })));
      await s.put(c.k("d-stays"), "y");
      await s.deleteMany([...keys, c.k("never-there")]);
      assert.deepEqual(await s.list(c.k("d")), []);
      assert.equal(text(await s.get(c.k("d-stays"))), "y");
      await s.deleteMany([]);
    },
    120_000,
  );

  test("a bad key or value anywhere in a bulk call fails it before any I/O", async (c) => {
    const s = c.a;
    await s.put(c.k("keep"), "kept");
    await assert.rejects(
      s.putMany([{ key: c.k("ok"), value: "1" }, { key: "a//b", value: "2" }]),
      InvalidKeyError,
    );
    await assert.rejects(
      s.putMany([
        { key: c.k("ok"), value: "1" },
        {
          key: c.k("big"),
          value: new Uint8Array(s.limits.maxValueBytes + 1),
        },
      ]),
      ValueTooLargeError,
    );
    // The bad entry comes last: nothing before it may have been written.
    await assert.rejects(
      s.putMany([
        { key: c.k("ok"), value: "1" },
        { key: c.k("bad"), value: "2", ttl: -5 },
      ]),
      InvalidArgumentError,
    );
    await assert.rejects(
      s.putMany([
        { key: c.k("ok"), value: "1" },
        { key: c.k("bad"), value: 5 as unknown as string },
      ]),
      InvalidArgumentError,
    );
    await assert.rejects(
      s.putMany([
        { key: c.k("ok"), value: "1" },
        null as unknown as PutEntry,
      ]),
      InvalidArgumentError,
    );
    await assert.rejects(
      s.putMany("not an array" as unknown as PutEntry[]),
      InvalidArgumentError,
    );
    assert.equal(await s.get(c.k("ok")), null);
    assert.equal(await s.get(c.k("bad")), null);
    await assert.rejects(
      s.deleteMany([c.k("keep"), "a/../b"]),
      InvalidKeyError,
    );
    assert.equal(text(await s.get(c.k("keep"))), "kept");
    await assert.rejects(s.getMany([c.k("keep"), ""]), InvalidKeyError);
    await assert.rejects(
      s.getMany("not an array" as unknown as string[]),
      InvalidArgumentError,
    );
  });
}
