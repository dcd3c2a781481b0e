// CONTRACT.md "Values": bytes and strings, the empty value, the size limit
// checked before any I/O, and values owned by the caller.
import assert from "node:assert/strict";
import { InvalidArgumentError, ValueTooLargeError } from "../core/errors.ts";
import {
  bytes,
  caseDefiner,
  type ConformanceTarget,
  type TestRunner,
  text,
} from "./harness.ts";

/** The largest value the kit writes, to keep runs fast on big limits. */
const BIGGEST_TESTED_VALUE = 16 * 1024 * 1024;

export function valueCases(
  runner: TestRunner,
  target: ConformanceTarget,
): void {
  const test = caseDefiner(runner, target);

  test("a string is stored as UTF-8 and bytes are stored as they are", async (c) => {
    const s = c.a;
    await s.put(c.k("text"), "héllo wörld ✓");
    const pair = await s.get(c.k("text"));
    assert.ok(pair?.value instanceof Uint8Array);
    assert.deepEqual(pair.value, bytes("héllo wörld ✓"));
    const all = new Uint8Array(256).map((_, i) => i);
    await s.put(c.k("binary"), all);
    assert.deepEqual((await s.get(c.k("binary")))?.value, all);
  });

  test("the empty value is a value, distinct from absence", async (c) => {
    const s = c.a;
    await s.put(c.k("empty"), new Uint8Array());
    const pair = await s.get(c.k("empty"));
    assert.notEqual(pair, null);
    assert.equal(pair!.value.length, 0);
    assert.equal(await s.exists(c.k("empty")), true);
    assert.deepEqual((await s.list(c.k())).map((p) => p.key), [c.k("empty")]);
    await s.put(c.k("empty-string"), "");
    assert.equal(text(await s.get(c.k("empty-string"))), "");
  });

  test("a value of the size limit works and one byte more changes nothing", async (c) => {
    const s = c.a;
    const max = s.limits.maxValueBytes;
    assert.ok(max >= 1024, `maxValueBytes is ${max}, too small to be useful`);
    const size = Math.min(max, BIGGEST_TESTED_VALUE);
    const big = new Uint8Array(size).map((_, i) => (i * 7) & 0xff);
    await s.put(c.k("big"), big);
    assert.deepEqual((await s.get(c.k("big")))?.value, big);
    await s.put(c.k("kept"), "before");
    const before = await s.get(c.k("kept"));
    const over = new Uint8Array(max + 1);
    await assert.rejects(s.put(c.k("kept"), over), ValueTooLargeError);
    await assert.rejects(
      s.put(c.k("kept"), "x".repeat(max + 1)),
      ValueTooLargeError,
    );
    await assert.rejects(
      s.atomicPut(c.k("kept"), over, before),
      ValueTooLargeError,
    );
    assert.throws(() => s.atomic().put(c.k("kept"), over), ValueTooLargeError);
    await assert.rejects(
      s.lock(c.k("kept"), { value: over }),
      ValueTooLargeError,
    );
    await assert.rejects(s.put(c.k("new"), over), ValueTooLargeError);
    assert.deepEqual(await s.get(c.k("kept")), before);
    assert.equal(await s.exists(c.k("new")), false);
  });

  test("a value that is neither bytes nor a string is rejected", async (c) => {
    const s = c.a;
    for (const value of [42, null, undefined, { a: 1 }, [1, 2], true]) {
      await assert.rejects(
        s.put(c.k("bad"), value as unknown as string),
        InvalidArgumentError,
      );
    }
    await assert.rejects(
      s.put(c.k("bad"), "lone \ud800"),
      InvalidArgumentError,
    );
    assert.equal(await s.exists(c.k("bad")), false);
  });

  test("values belong to the caller: changing them changes nothing stored", async (c) => {
    const s = c.a;
    const input = bytes("original");
    await s.put(c.k("owned"), input);
    input.fill(0);
    const first = await s.get(c.k("owned"));
    assert.equal(text(first), "original");
    first!.value.fill(0);
    assert.equal(text(await s.get(c.k("owned"))), "original");
    const listed = await s.list(c.k());
    listed[0].value.fill(0);
    assert.equal(text(await s.get(c.k("owned"))), "original");
  });
}
