// CONTRACT.md "Operations": atomicPut, atomicDelete and atomic() — create
// only, compare-and-set, the errors that tell why, all or nothing, the
// operation limit checked before any I/O.
import assert from "node:assert/strict";
import {
  InvalidArgumentError,
  KeyExistsError,
  KeyModifiedError,
  KeyNotFoundError,
  PreviousNotSpecifiedError,
} from "../core/errors.ts";
import type { KVPair } from "../core/types.ts";
import {
  caseDefiner,
  type ConformanceTarget,
  type TestRunner,
  text,
} from "./harness.ts";

export function atomicCases(
  runner: TestRunner,
  target: ConformanceTarget,
): void {
  const test = caseDefiner(runner, target);

  // valkeyrie's testAtomicPut.
  test("atomicPut on an existing key with no previous fails with KeyExistsError", async (c) => {
    const s = c.a;
    await s.put(c.k("exists"), "original");
    await assert.rejects(
      s.atomicPut(c.k("exists"), "new", null),
      KeyExistsError,
    );
    assert.equal(text(await s.get(c.k("exists"))), "original");
  });

  // valkeyrie's testAtomicPutCreate.
  test("atomicPut with no previous creates, also with a trailing slash", async (c) => {
    const s = c.a;
    const created = await s.atomicPut(`${c.k("create")}/`, "v", null);
    assert.equal(created.key, c.k("create"));
    assert.equal(text(created), "v");
    const read = await s.get(c.k("create"));
    assert.equal(read?.lastIndex, created.lastIndex);
    await assert.rejects(s.atomicPut(c.k("create"), "v", null), KeyExistsError);
  });

  // valkeyrie's testAtomicPutWithSlashSuffixKey and create under missing parents.
  test("atomicPut creates a key whose parents do not exist", async (c) => {
    const s = c.a;
    const pair = await s.atomicPut(c.k("no", "parents", "here"), "deep", null);
    assert.equal(pair.key, c.k("no", "parents", "here"));
    assert.equal(text(await s.get(c.k("no", "parents", "here"))), "deep");
    assert.equal(await s.exists(c.k("no", "parents")), false);
  });

  test("atomicPut with the current pair writes and returns the new pair", async (c) => {
    const s = c.a;
    await s.put(c.k("cas"), "one");
    const one = (await s.get(c.k("cas")))!;
    const two = await s.atomicPut(c.k("cas"), "two", one);
    assert.equal(text(two), "two");
    assert.ok(two.lastIndex > one.lastIndex);
    assert.deepEqual(await s.get(c.k("cas")), two);
    await assert.rejects(
      s.atomicPut(c.k("cas"), "three", one),
      KeyModifiedError,
    );
    assert.equal(text(await s.get(c.k("cas"))), "two");
    // The same bytes written again still count as a modification.
    await s.put(c.k("cas"), "two");
    await assert.rejects(s.atomicPut(c.k("cas"), "x", two), KeyModifiedError);
  });

  test("atomicPut with a previous pair on an absent key fails with KeyNotFoundError", async (c) => {
    const s = c.a;
    await s.put(c.k("gone"), "v");
    const pair = (await s.get(c.k("gone")))!;
    await s.delete(c.k("gone"));
    await assert.rejects(
      s.atomicPut(c.k("gone"), "v2", pair),
      KeyNotFoundError,
    );
    assert.equal(await s.exists(c.k("gone")), false);
  });

  // valkeyrie's testAtomicDelete.
  test("atomicDelete with a stale index fails, with the right one deletes, then finds nothing", async (c) => {
    const s = c.a;
    await s.put(c.k("del"), "v1");
    const stale = (await s.get(c.k("del")))!;
    await s.put(c.k("del"), "v2");
    const current = (await s.get(c.k("del")))!;
    await assert.rejects(s.atomicDelete(c.k("del"), stale), KeyModifiedError);
    assert.equal(text(await s.get(c.k("del"))), "v2");
    await s.atomicDelete(c.k("del"), current);
    assert.equal(await s.exists(c.k("del")), false);
    await assert.rejects(s.atomicDelete(c.k("del"), current), KeyNotFoundError);
  });

  test("a missing previous is PreviousNotSpecifiedError", async (c) => {
    const s = c.a;
    await s.put(c.k("p"), "v");
    await assert.rejects(
      s.atomicDelete(c.k("p"), undefined as unknown as KVPair),
      PreviousNotSpecifiedError,
    );
    await assert.rejects(
      s.atomicDelete(c.k("p"), null as unknown as KVPair),
      PreviousNotSpecifiedError,
    );
    await assert.rejects(
      s.atomicPut(c.k("p"), "w", undefined as unknown as KVPair),
      PreviousNotSpecifiedError,
    );
    assert.equal(text(await s.get(c.k("p"))), "v");
  });

  test("concurrent compare-and-set from two handles lets exactly one win", async (c) => {
    const b = await c.open();
    await c.a.put(c.k("race"), "start");
    const start = (await c.a.get(c.k("race")))!;
    const attempts = Array.from(
      { length: 10 },
      (_, i) => (i % 2 ? b : c.a).atomicPut(c.k("race"), `w${i}`, start),
    );
    const results = await Promise.allSettled(attempts);
    const won = results.filter((r) => r.status === "fulfilled");
    assert.equal(won.length, 1, "exactly one compare-and-set wins");
    for (const r of results) {
      if (r.status === "rejected") {
        assert.ok(r.reason instanceof KeyModifiedError, String(r.reason));
      }
    }
    const winner = (won[0] as PromiseFulfilledResult<KVPair>).value;
    assert.deepEqual(await b.get(c.k("race")), winner);
  });

  // Writers racing with the same bytes must still be told apart: one wins,
  // the others are refused (DynamoDB once took an equal write of another
  // handle, made in the same millisecond, for its own retried request).
  test("concurrent create-only puts of the same value from two handles let exactly one win", async (c) => {
    const b = await c.open();
    for (let round = 0; round < 5; round++) {
      const key = c.k("same", String(round));
      const results = await Promise.allSettled(
        Array.from(
          { length: 6 },
          (_, i) => (i % 2 ? b : c.a).atomicPut(key, "same bytes", null),
        ),
      );
      const won = results.filter((r) => r.status === "fulfilled");
      assert.equal(won.length, 1, `round ${round}: exactly one create wins`);
      for (const r of results) {
        if (r.status === "rejected") {
          assert.ok(r.reason instanceof KeyExistsError, String(r.reason));
        }
      }
    }
  });

  test("atomic() applies every check, put and delete together", async (c) => {
    const s = c.a;
    await s.put(c.k("tx", "a"), "a1");
    await s.put(c.k("tx", "gone"), "x");
    const a = (await s.get(c.k("tx", "a")))!;
    const result = await s.atomic()
      .check(c.k("tx", "a"), a.lastIndex)
      .check(c.k("tx", "new"), null)
      .put(c.k("tx", "a"), "a2")
      .put(c.k("tx", "new"), "n")
      .delete(c.k("tx", "gone"))
      .commit();
    assert.equal(result.ok, true);
    const newA = (await s.get(c.k("tx", "a")))!;
    const created = (await s.get(c.k("tx", "new")))!;
    assert.equal(text(newA), "a2");
    assert.equal(text(created), "n");
    assert.equal(await s.exists(c.k("tx", "gone")), false);
    const highest = newA.lastIndex > created.lastIndex
      ? newA.lastIndex
      : created.lastIndex;
    assert.ok(result.ok && result.lastIndex >= highest);
    assert.ok(result.ok && result.lastIndex > a.lastIndex);
  });

  test("atomic() with a failing check writes nothing and resolves ok: false", async (c) => {
    const s = c.a;
    await s.put(c.k("tx", "a"), "a1");
    const a = (await s.get(c.k("tx", "a")))!;
    await s.put(c.k("tx", "a"), "a2");
    await s.put(c.k("tx", "keep"), "keep");
    const stale = await s.atomic()
      .check(c.k("tx", "a"), a.lastIndex)
      .put(c.k("tx", "b"), "b")
      .delete(c.k("tx", "keep"))
      .commit();
    assert.deepEqual(stale, { ok: false });
    const present = await s.atomic()
      .check(c.k("tx", "keep"), null)
      .put(c.k("tx", "b"), "b")
      .commit();
    assert.deepEqual(present, { ok: false });
    const absent = await s.atomic()
      .check(c.k("tx", "nothing"), 1n)
      .put(c.k("tx", "b"), "b")
      .commit();
    assert.deepEqual(absent, { ok: false });
    assert.equal(await s.exists(c.k("tx", "b")), false);
    assert.equal(text(await s.get(c.k("tx", "keep"))), "keep");
  });

  test(
    "atomic() holds up to maxAtomicOperations and refuses more before any I/O",
    async (c) => {
      const s = c.a;
      const max = s.limits.maxAtomicOperations;
      const full = s.atomic();
      for (let i = 0; i < max; i++) full.put(c.k("limit", `k${i}`), `${i}`);
      assert.throws(
        () => full.put(c.k("limit", "one-too-many"), "x"),
        InvalidArgumentError,
      );
      const result = await full.commit();
      assert.equal(result.ok, true);
      assert.equal((await s.list(c.k("limit"))).length, max);
    },
    120_000,
  );

  test("atomic() refuses a key written twice, and a commit made twice", async (c) => {
    const s = c.a;
    assert.throws(
      () => s.atomic().put(c.k("twice"), "1").delete(c.k("twice")),
      InvalidArgumentError,
    );
    assert.throws(
      () => s.atomic().check(c.k("twice"), null).check(c.k("twice"), null),
      InvalidArgumentError,
    );
    assert.throws(
      () => s.atomic().check(c.k("twice"), 5 as unknown as bigint),
      InvalidArgumentError,
    );
    const op = s.atomic().check(c.k("twice"), null).put(c.k("twice"), "once");
    assert.equal((await op.commit()).ok, true);
    await assert.rejects(op.commit(), InvalidArgumentError);
    assert.equal(text(await s.get(c.k("twice"))), "once");
    assert.deepEqual(await s.atomic().commit(), { ok: true, lastIndex: 0n });
  });
}
