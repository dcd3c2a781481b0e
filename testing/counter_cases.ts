// CONTRACT.md "Second wave", Counters: increment and atomic().sum — a missing
// key counts as 0n, the value is stored as decimal text, concurrent writers
// lose no update, and a value that is no counter, an overflow or a bad delta
// is InvalidArgumentError and changes nothing.
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../core/errors.ts";
import {
  caseDefiner,
  type ConformanceTarget,
  goneWithin,
  type TestRunner,
  text,
} from "./harness.ts";
import { expiryBound, TTL_MS } from "./ttl_cases.ts";

const MAX = 2n ** 63n - 1n;

export function counterCases(
  runner: TestRunner,
  target: ConformanceTarget,
): void {
  const test = caseDefiner(runner, target);

  test("increment counts from 0n, by 1n unless told, and stores decimal text", async (c) => {
    const s = c.a;
    assert.equal(await s.increment(c.k("n")), 1n);
    assert.equal(await s.increment(c.k("n"), 41n), 42n);
    assert.equal(text(await s.get(c.k("n"))), "42");
    assert.equal(await s.increment(c.k("neg"), -7n), -7n);
    assert.equal(text(await s.get(c.k("neg"))), "-7");
    // A counter written by anyone as text is a counter.
    await s.put(c.k("given"), "100");
    assert.equal(await s.increment(c.k("given"), -100n), 0n);
    assert.equal(text(await s.get(c.k("given"))), "0");
  });

  test("increment is a write: its lastIndex grows and watches hear it", async (c) => {
    const s = c.a;
    await s.increment(c.k("n"));
    const first = (await s.get(c.k("n")))!.lastIndex;
    await s.increment(c.k("n"));
    const second = (await s.get(c.k("n")))!;
    assert.ok(second.lastIndex > first, `${second.lastIndex} > ${first}`);
    assert.equal(text(second), "2");
  });

  test("concurrent increments from two handles lose no update", async (c) => {
    const b = await c.open();
    const each = 15;
    const results = await Promise.all([
      ...Array.from({ length: each }, () => c.a.increment(c.k("hits"))),
      ...Array.from({ length: each }, () => b.increment(c.k("hits"), 1n)),
    ]);
    // Every increment saw a value of its own: 1..30, each once.
    assert.deepEqual(
      [...results].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)),
      Array.from({ length: 2 * each }, (_, i) => BigInt(i + 1)),
    );
    assert.equal(text(await b.get(c.k("hits"))), String(2 * each));
  }, 120_000);

  test("a value that is no counter, an overflow or a bad delta changes nothing", async (c) => {
    const s = c.a;
    for (const value of ["abc", "1.5", "007", " 1", "+1", "-0", "", "1e3"]) {
      await s.put(c.k("bad"), value);
      await assert.rejects(
        s.increment(c.k("bad")),
        InvalidArgumentError,
        JSON.stringify(value),
      );
      assert.equal(text(await s.get(c.k("bad"))), value);
    }
    await s.put(c.k("top"), MAX.toString());
    await assert.rejects(s.increment(c.k("top")), /overflows/);
    assert.equal(text(await s.get(c.k("top"))), MAX.toString());
    await s.put(c.k("over"), (MAX + 1n).toString());
    await assert.rejects(s.increment(c.k("over"), -1n), InvalidArgumentError);
    await assert.rejects(
      s.increment(c.k("n"), 1 as unknown as bigint),
      InvalidArgumentError,
    );
    await assert.rejects(s.increment(c.k("n"), MAX + 1n), InvalidArgumentError);
    assert.equal(await s.get(c.k("n")), null);
  });

  test(
    "increment with a ttl expires like put; without one the counter is permanent",
    async (c) => {
      const s = c.a;
      await s.increment(c.k("window"), 1n, { ttl: TTL_MS });
      const written = Date.now();
      await s.increment(c.k("kept"), 1n, { ttl: TTL_MS });
      await s.increment(c.k("kept"), 1n);
      await goneWithin(
        "a counter's expiry",
        written,
        expiryBound(s),
        async () => (await s.get(c.k("window"))) !== null,
      );
      assert.equal(text(await s.get(c.k("kept"))), "2");
      await assert.rejects(
        s.increment(c.k("x"), 1n, { ttl: -1 }),
        InvalidArgumentError,
      );
    },
    120_000,
  );

  test("atomic().sum adds to counters together with checks and writes", async (c) => {
    const s = c.a;
    await s.put(c.k("balance", "a"), "10");
    await s.put(c.k("guard"), "open");
    const guard = await s.get(c.k("guard"));
    const result = await s.atomic()
      .check(c.k("guard"), guard!.lastIndex)
      .sum(c.k("balance", "a"), -3n)
      .sum(c.k("balance", "b"), 3n)
      .put(c.k("log"), "moved 3")
      .commit();
    assert.equal(result.ok, true);
    assert.equal(text(await s.get(c.k("balance", "a"))), "7");
    assert.equal(text(await s.get(c.k("balance", "b"))), "3");
    assert.equal(text(await s.get(c.k("log"))), "moved 3");
    // A failing check of the caller's: nothing changes, ok is false.
    const stale = await s.atomic()
      .check(c.k("guard"), null)
      .sum(c.k("balance", "a"), -3n)
      .commit();
    assert.equal(stale.ok, false);
    assert.equal(text(await s.get(c.k("balance", "a"))), "7");
  });

  test("atomic().sum refuses a key also checked or written, and a bad counter", async (c) => {
    const s = c.a;
    assert.throws(
      () => s.atomic().sum(c.k("n")).put(c.k("n"), "1"),
      InvalidArgumentError,
    );
    assert.throws(
      () => s.atomic().check(c.k("n"), null).sum(c.k("n")),
      InvalidArgumentError,
    );
    assert.throws(
      () => s.atomic().sum(c.k("n")).sum(c.k("n")),
      InvalidArgumentError,
    );
    assert.throws(
      () => s.atomic().sum(c.k("n"), 2 as unknown as bigint),
      InvalidArgumentError,
    );
    await s.put(c.k("text"), "words");
    await assert.rejects(
      s.atomic().sum(c.k("text")).put(c.k("other"), "x").commit(),
      InvalidArgumentError,
    );
    assert.equal(await s.get(c.k("other")), null);
  });

  test(
    "atomic().sum and increment racing from two handles lose no update",
    async (c) => {
      const b = await c.open();
      const rounds = 10;
      await Promise.all([
        ...Array.from({ length: rounds }, () => c.a.increment(c.k("x"))),
        ...Array.from(
          { length: rounds },
          () => b.atomic().sum(c.k("x"), 2n).sum(c.k("y")).commit(),
        ),
      ]);
      assert.equal(text(await c.a.get(c.k("x"))), String(3 * rounds));
      assert.equal(text(await c.a.get(c.k("y"))), String(rounds));
    },
    120_000,
  );
}
