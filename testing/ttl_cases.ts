// CONTRACT.md "Operations": put with ttl — readable until ttl, gone (for get,
// exists, list and watches) by ttl + ttlGranularityMs, permanent again after
// a put without ttl; also through atomicPut and atomic(), and after the
// writer closes.
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../core/errors.ts";
import type { Store } from "../core/types.ts";
import {
  caseDefiner,
  type ConformanceTarget,
  goneWithin,
  keys,
  lateBound,
  SLACK_MS,
  sleep,
  StreamReader,
  type TestRunner,
  text,
} from "./harness.ts";

/** The TTL the kit writes with, in milliseconds. */
export const TTL_MS = 1_500;

/**
 * How early (in ms) the kit still accepts a key gone before its TTL: clocks
 * and timers round to the millisecond, a server's to its own tick.
 */
const EARLY_MS = 50;

/** By when the contract says a key put with `TTL_MS` is gone, after the put. */
function expiryDeadline(store: Store): number {
  return TTL_MS + store.limits.ttlGranularityMs;
}

/**
 * How long after a TTL write the kit waits at most for the key to go: the
 * contract's deadline with {@linkcode lateBound}'s headroom.
 */
export function expiryBound(store: Store): number {
  return lateBound(expiryDeadline(store));
}

/**
 * Asserts that a read of a key put with `TTL_MS` at `started` (just before the
 * put was sent) saw it, as it must until the TTL has passed. A read that ended
 * after the TTL proves nothing: a loaded machine may simply have run it late.
 */
function assertReadable(started: number, seen: boolean, what: string): void {
  const at = Date.now() - started;
  assert.ok(
    seen || at >= TTL_MS - EARLY_MS,
    `${what}: gone ${at} ms after the put, before its ttl`,
  );
}

export function ttlCases(runner: TestRunner, target: ConformanceTarget): void {
  const test = caseDefiner(runner, target);
  const timeout = 120_000;

  test(
    "a key put with a ttl is readable, then gone for get, exists and list",
    async (c) => {
      const s = c.a;
      const started = Date.now();
      await s.put(c.k("ttl", "short"), "soon gone", { ttl: TTL_MS });
      const written = Date.now();
      await s.put(c.k("ttl", "stays"), "stays");
      const first = text(await s.get(c.k("ttl", "short")));
      assertReadable(started, first !== null, "get");
      if (first !== null) assert.equal(first, "soon gone");
      await sleep(TTL_MS / 3 - (Date.now() - started));
      assertReadable(started, await s.exists(c.k("ttl", "short")), "exists");
      const listed = keys(await s.list(c.k("ttl")));
      assertReadable(started, listed.length === 2, "list");
      assert.deepEqual(
        listed,
        [c.k("ttl", "short"), c.k("ttl", "stays")].slice(
          listed.length === 2 ? 0 : 1,
        ),
      );
      // Gone by the bound: measured from the end of the put (the TTL ran
      // from before it) to the start of a read that still saw the key.
      await goneWithin(
        "expiry",
        written,
        expiryBound(s),
        async () =>
          (await s.get(c.k("ttl", "short"))) !== null ||
          (await s.exists(c.k("ttl", "short"))) ||
          (await s.list(c.k("ttl"))).length !== 1,
      );
      // A lower bound, which a loaded machine can only make later.
      assert.ok(
        Date.now() - started >= TTL_MS - EARLY_MS,
        "gone before its ttl",
      );
      assert.equal(text(await s.get(c.k("ttl", "stays"))), "stays");
    },
    timeout,
  );

  test("a put without ttl makes a key permanent again", async (c) => {
    const s = c.a;
    await s.put(c.k("perm"), "temporary", { ttl: TTL_MS });
    await s.put(c.k("perm"), "permanent");
    // Past the deadline with slack for the servers' timers: a key still
    // under its ttl would be gone by then. Waiting longer only makes the
    // case stronger, so a loaded machine cannot make it fail.
    await sleep(expiryDeadline(s) + SLACK_MS);
    assert.equal(text(await s.get(c.k("perm"))), "permanent");
  }, timeout);

  test("atomicPut and atomic() honour ttl", async (c) => {
    const s = c.a;
    const started = Date.now();
    const created = await s.atomicPut(c.k("cas"), "v", null, { ttl: TTL_MS });
    await s.atomic().put(c.k("tx"), "v", { ttl: TTL_MS }).commit();
    const written = Date.now();
    for (const name of ["cas", "tx"]) {
      const value = text(await s.get(c.k(name)));
      assertReadable(started, value !== null, name);
      if (value !== null) assert.equal(value, "v");
    }
    assert.ok(created.lastIndex > 0n);
    await goneWithin(
      "expiry",
      written,
      expiryBound(s),
      async () => (await s.exists(c.k("cas"))) || (await s.exists(c.k("tx"))),
    );
  }, timeout);

  // valkeyrie's testPutTTL: the writer goes away and the key still expires.
  test("a key put with a ttl expires after its writer closes", async (c) => {
    const writer = await c.open();
    await writer.put(c.k("orphan"), "v", { ttl: TTL_MS });
    const written = Date.now();
    await writer.close();
    await goneWithin(
      "expiry",
      written,
      expiryBound(c.a),
      () => c.a.exists(c.k("orphan")),
    );
  }, timeout);

  test("watch and watchTree report an expiry", async (c) => {
    const s = c.a;
    const started = Date.now();
    await s.put(c.k("w", "exp"), "v", { ttl: TTL_MS });
    const written = Date.now();
    const key = new StreamReader(s.watch(c.k("w", "exp")));
    const tree = new StreamReader(s.watchTree(c.k("w")));
    // The watches start after the put: they show the key first, unless a
    // loaded machine started them after its ttl.
    const pair = await key.next();
    assertReadable(started, pair !== null, "the key watch");
    const pairs = await tree.next();
    assertReadable(started, pairs.length > 0, "the tree watch");
    const left = () => Math.max(0, written + expiryBound(s) - Date.now());
    if (pair !== null) {
      assert.equal(text(pair), "v");
      assert.equal(await key.next(left()), null);
    }
    if (pairs.length > 0) {
      assert.deepEqual(keys(pairs), [c.k("w", "exp")]);
      assert.deepEqual(await tree.until((l) => l.length === 0, left()), []);
    }
    await key.cancel();
    await tree.cancel();
  }, timeout);

  test("a ttl that is not a positive number is rejected and writes nothing", async (c) => {
    const s = c.a;
    for (const ttl of [0, -1, Number.NaN, Infinity, "1000"]) {
      await assert.rejects(
        s.put(c.k("bad-ttl"), "v", { ttl: ttl as number }),
        InvalidArgumentError,
        `ttl ${String(ttl)}`,
      );
      await assert.rejects(
        s.atomicPut(c.k("bad-ttl"), "v", null, { ttl: ttl as number }),
        InvalidArgumentError,
      );
      assert.throws(
        () => s.atomic().put(c.k("bad-ttl"), "v", { ttl: ttl as number }),
        InvalidArgumentError,
      );
      await assert.rejects(
        s.lock(c.k("bad-ttl"), { ttl: ttl as number }),
        InvalidArgumentError,
      );
    }
    assert.equal(await s.exists(c.k("bad-ttl")), false);
  });

  test("a ttl beyond limits.maxTtlMs is rejected and writes nothing; a long one within it is kept", async (c) => {
    const s = c.a;
    const max = s.limits.maxTtlMs;
    // A year where the backend sets no bound: beyond any timer's reach.
    const long = max ?? 365 * 86_400_000;
    await s.put(c.k("long"), "v", { ttl: long });
    assert.equal(text(await s.get(c.k("long"))), "v");
    if (max === undefined) return;
    const over = max + 1_000;
    await assert.rejects(
      s.put(c.k("over"), "v", { ttl: over }),
      InvalidArgumentError,
    );
    await assert.rejects(
      s.atomicPut(c.k("over"), "v", null, { ttl: over }),
      InvalidArgumentError,
    );
    assert.throws(
      () => s.atomic().put(c.k("over"), "v", { ttl: over }),
      InvalidArgumentError,
    );
    await assert.rejects(
      s.increment(c.k("over"), 1n, { ttl: over }),
      InvalidArgumentError,
    );
    await assert.rejects(
      s.putMany([{ key: c.k("over"), value: "v", ttl: over }]),
      InvalidArgumentError,
    );
    assert.equal(await s.exists(c.k("over")), false);
  });
}
