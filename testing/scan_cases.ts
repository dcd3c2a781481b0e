// CONTRACT.md "Second wave", Streamed listing: scan has list's membership
// and order (UTF-8 byte order of whole keys), pages of batchSize, a cursor
// that resumes right after its key (also on another handle), reverse,
// start/end, keysOnly, limit, and keys written or deleted while it runs seen
// or not by their position alone (Dapr's "pagination while deleting").
import assert from "node:assert/strict";
import { InvalidArgumentError, StoreClosedError } from "../core/errors.ts";
import type { KVPair, ScanOptions, Store } from "../core/types.ts";
import {
  caseDefiner,
  type ConformanceTarget,
  keys,
  type TestRunner,
  text,
} from "./harness.ts";

/**
 * Names whose byte order is not their segment-by-segment order: "a-c" and
 * "a.x" sort before "a/b" ('-' and '.' are below '/'), and "é" and "日本"
 * after every ASCII name.
 */
const NAMES = ["a", "a-c", "a.x", "a/b", "a/b/c", "a0", "b", "é", "日本"];

async function all(
  store: Store,
  prefix: string,
  options?: ScanOptions,
): Promise<KVPair[]> {
  const pairs: KVPair[] = [];
  for await (const pair of store.scan(prefix, options)) pairs.push(pair);
  return pairs;
}

export function scanCases(
  runner: TestRunner,
  target: ConformanceTarget,
): void {
  const test = caseDefiner(runner, target);

  async function fill(s: Store, root: string[]): Promise<string[]> {
    const put = NAMES.map((name) => [...root, name].join("/"));
    await s.putMany(put.map((key) => ({ key, value: `v:${key}` })));
    return put;
  }

  test("scan yields what list does, in UTF-8 byte order, for every page size", async (c) => {
    const s = c.a;
    await fill(s, [c.ns, "t"]);
    await s.put(c.k("t"), "the prefix itself is not under it");
    await s.put(c.k("tx"), "a sibling is not under it");
    const listed = await s.list(c.k("t"));
    assert.equal(listed.length, NAMES.length);
    for (const batchSize of [1, 2, 3, 100, undefined]) {
      assert.deepEqual(
        await all(s, c.k("t"), { batchSize }),
        listed,
        `batchSize ${batchSize}`,
      );
    }
    assert.deepEqual(await all(s, c.k("empty")), []);
  });

  test("reverse yields the same pairs in descending order", async (c) => {
    const s = c.a;
    await fill(s, [c.ns, "t"]);
    const listed = await s.list(c.k("t"));
    for (const batchSize of [1, 4, undefined]) {
      assert.deepEqual(
        await all(s, c.k("t"), { reverse: true, batchSize }),
        [...listed].reverse(),
      );
    }
  });

  test("start is inclusive, end exclusive, in both directions", async (c) => {
    const s = c.a;
    await fill(s, [c.ns, "t"]);
    const between = [c.k("t", "a.x"), c.k("t", "a/b"), c.k("t", "a/b/c")];
    const range = { start: c.k("t", "a.x"), end: c.k("t", "a0") };
    assert.deepEqual(keys(await all(s, c.k("t"), range)), between);
    assert.deepEqual(
      keys(await all(s, c.k("t"), { ...range, reverse: true, batchSize: 2 })),
      [...between].reverse(),
    );
    // A bound need not be a stored key.
    assert.deepEqual(
      keys(await all(s, c.k("t"), { start: c.k("t", "a/a"), limit: 2 })),
      [c.k("t", "a/b"), c.k("t", "a/b/c")],
    );
    assert.deepEqual(
      keys(await all(s, c.k("t"), { end: c.k("t", "a-c") })),
      [c.k("t", "a")],
    );
    assert.deepEqual(
      await all(s, c.k("t"), { start: c.k("t", "b"), end: c.k("t", "b") }),
      [],
    );
  });

  test("limit stops the scan and its cursor resumes right after, also on another handle", async (c) => {
    const s = c.a;
    await fill(s, [c.ns, "t"]);
    const sorted = keys(await s.list(c.k("t")));
    const first = s.scan(c.k("t"), { limit: 4, batchSize: 3 });
    assert.equal(first.cursor, "", "no cursor before the first pair");
    const seen: string[] = [];
    for await (const pair of first) seen.push(pair.key);
    assert.deepEqual(seen, sorted.slice(0, 4));
    const cursor = first.cursor;
    assert.equal(typeof cursor, "string");
    assert.notEqual(cursor, "");
    const other = await c.open();
    const rest = other.scan(c.k("t"), { cursor });
    assert.equal(rest.cursor, cursor, "a given cursor stands until a pair");
    assert.deepEqual(keys(await all(other, c.k("t"), { cursor })), [
      ...sorted.slice(4),
    ]);
    await rest.return?.();
    // Backwards from the same cursor: the keys before it, descending.
    assert.deepEqual(
      keys(await all(s, c.k("t"), { cursor, reverse: true })),
      sorted.slice(0, 3).reverse(),
    );
    // The cursor of a scan that ended points after its last pair.
    const whole = s.scan(c.k("t"));
    for await (const _ of whole) { /* drain */ }
    assert.deepEqual(await all(s, c.k("t"), { cursor: whole.cursor }), []);
  });

  test("keysOnly yields every key with an empty value", async (c) => {
    const s = c.a;
    await fill(s, [c.ns, "t"]);
    const listed = await s.list(c.k("t"));
    const pairs = await all(s, c.k("t"), { keysOnly: true, batchSize: 4 });
    assert.deepEqual(keys(pairs), keys(listed));
    for (const [i, pair] of pairs.entries()) {
      assert.equal(pair.value.byteLength, 0);
      assert.equal(pair.lastIndex, listed[i].lastIndex);
    }
  });

  test("keys written and deleted while a scan runs are seen by their position", async (c) => {
    const s = c.a;
    const names = Array.from(
      { length: 20 },
      (_, i) => `k${String(i).padStart(2, "0")}`,
    );
    await s.putMany(
      names.map((name) => ({ key: c.k("t", name), value: name })),
    );
    const seen: string[] = [];
    const scan = s.scan(c.k("t"), { batchSize: 3 });
    for await (const pair of scan) {
      seen.push(pair.key.slice(c.k("t").length + 1));
      if (seen.length === 5) {
        // Behind the scan: never seen. Ahead: seen if still there.
        await s.put(c.k("t", "k00a"), "behind");
        await s.delete(c.k("t", "k01"));
        await s.deleteMany([c.k("t", "k10"), c.k("t", "k11")]);
        await s.put(c.k("t", "k15a"), "ahead");
      }
    }
    const expected = [
      ...names.slice(0, 5),
      ...names.slice(5).filter((n) => n !== "k10" && n !== "k11"),
      "k15a",
    ].sort();
    assert.deepEqual(seen, expected);
  });

  test("a scoped handle's scan yields keys without its prefix and takes them back", async (c) => {
    const scoped = await c.openScoped();
    await scoped.putMany(
      NAMES.map((name) => ({ key: `t/${name}`, value: name })),
    );
    const pairs = await all(scoped, "t", { limit: 3 });
    assert.deepEqual(
      keys(pairs),
      keys(await scoped.list("t")).slice(0, 3),
    );
    assert.ok(pairs.every((p) => p.key.startsWith("t/")));
    const scan = scoped.scan("t", { limit: 1, start: "t/a/b" });
    for await (const pair of scan) assert.equal(text(pair), "a/b");
    const next = await all(scoped, "t", { cursor: scan.cursor, limit: 1 });
    assert.deepEqual(keys(next), ["t/a/b/c"]);
    // The whole keyspace of a scoped handle.
    assert.equal((await all(scoped, "")).length, NAMES.length);
  });

  test("bad options are InvalidArgumentError before any I/O", async (c) => {
    const s = c.a;
    const bad: unknown[] = [
      { limit: 0 },
      { limit: 1.5 },
      { limit: -1 },
      { batchSize: 0 },
      { batchSize: 10_001 },
      { reverse: "yes" },
      { keysOnly: 1 },
      { cursor: "not a cursor!" },
      { cursor: 42 },
      { start: c.k("elsewhere", "a") },
      { end: c.k("t") },
      "options",
    ];
    for (const options of bad) {
      assert.throws(
        () => s.scan(c.k("t"), options as ScanOptions),
        InvalidArgumentError,
        JSON.stringify(options),
      );
    }
    // A cursor of another prefix's scan is refused, not misread.
    await s.put(c.k("u", "x"), "x");
    const other = s.scan(c.k("u"));
    for await (const _ of other) { /* drain */ }
    assert.throws(
      () => s.scan(c.k("t"), { cursor: other.cursor }),
      InvalidArgumentError,
    );
  });

  test("breaking out ends the scan; an abort or a close rejects the next page", async (c) => {
    const s = c.a;
    await fill(s, [c.ns, "t"]);
    const scan = s.scan(c.k("t"), { batchSize: 2 });
    for await (const _ of scan) break;
    assert.deepEqual(await scan.next(), { done: true, value: undefined });

    const controller = new AbortController();
    const aborted = s.scan(c.k("t"), {
      batchSize: 2,
      signal: controller.signal,
    });
    assert.equal((await aborted.next()).done, false);
    assert.equal((await aborted.next()).done, false);
    const reason = new Error("stop here");
    controller.abort(reason);
    await assert.rejects(aborted.next(), (e) => e === reason);
    assert.throws(
      () => s.scan(c.k("t"), { signal: controller.signal }),
      (e) => e === reason,
    );

    const b = await c.open();
    const closing = b.scan(c.k("t"), { batchSize: 2 });
    assert.equal((await closing.next()).done, false);
    await closing.next();
    await b.close();
    await assert.rejects(closing.next(), StoreClosedError);
    assert.throws(() => b.scan(c.k("t")), StoreClosedError);
  });
}
