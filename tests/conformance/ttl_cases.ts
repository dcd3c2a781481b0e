// CONTRACT.md "Operations": put with ttl — readable until ttl, gone (for get,
// exists, list and watches) by ttl + ttlGranularityMs, permanent again after
// a put without ttl; also through atomicPut and atomic(), and after the
// writer closes.
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../core/errors.ts";
import type { Store } from "../../core/types.ts";
import {
  caseDefiner,
  type ConformanceTarget,
  eventually,
  keys,
  SLACK_MS,
  sleep,
  StreamReader,
  type TestRunner,
  text,
} from "./harness.ts";

/** The TTL the kit writes with, in milliseconds. */
export const TTL_MS = 1_500;

/** How long after a TTL write the kit waits at most for the key to go. */
export function expiryBound(store: Store): number {
  return TTL_MS + store.limits.ttlGranularityMs + SLACK_MS;
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
      await s.put(c.k("ttl", "stays"), "stays");
      assert.equal(text(await s.get(c.k("ttl", "short"))), "soon gone");
      await sleep(TTL_MS / 3 - (Date.now() - started));
      assert.equal(await s.exists(c.k("ttl", "short")), true);
      assert.deepEqual(keys(await s.list(c.k("ttl"))), [
        c.k("ttl", "short"),
        c.k("ttl", "stays"),
      ]);
      await eventually(
        "expiry",
        expiryBound(s),
        async () =>
          (await s.get(c.k("ttl", "short"))) === null &&
          !(await s.exists(c.k("ttl", "short"))) &&
          (await s.list(c.k("ttl"))).length === 1,
      );
      assert.ok(Date.now() - started >= TTL_MS - 50, "gone before its ttl");
      assert.equal(text(await s.get(c.k("ttl", "stays"))), "stays");
    },
    timeout,
  );

  test("a put without ttl makes a key permanent again", async (c) => {
    const s = c.a;
    await s.put(c.k("perm"), "temporary", { ttl: TTL_MS });
    await s.put(c.k("perm"), "permanent");
    await sleep(expiryBound(s));
    assert.equal(text(await s.get(c.k("perm"))), "permanent");
  }, timeout);

  test("atomicPut and atomic() honour ttl", async (c) => {
    const s = c.a;
    const created = await s.atomicPut(c.k("cas"), "v", null, { ttl: TTL_MS });
    await s.atomic().put(c.k("tx"), "v", { ttl: TTL_MS }).commit();
    assert.equal(text(await s.get(c.k("cas"))), "v");
    assert.equal(text(await s.get(c.k("tx"))), "v");
    assert.ok(created.lastIndex > 0n);
    await eventually(
      "expiry",
      expiryBound(s),
      async () => !(await s.exists(c.k("cas"))) && !(await s.exists(c.k("tx"))),
    );
  }, timeout);

  // valkeyrie's testPutTTL: the writer goes away and the key still expires.
  test("a key put with a ttl expires after its writer closes", async (c) => {
    const writer = await c.open();
    await writer.put(c.k("orphan"), "v", { ttl: TTL_MS });
    await writer.close();
    await eventually(
      "expiry",
      expiryBound(c.a),
      async () => !(await c.a.exists(c.k("orphan"))),
    );
  }, timeout);

  test("watch and watchTree report an expiry", async (c) => {
    const s = c.a;
    await s.put(c.k("w", "exp"), "v", { ttl: TTL_MS });
    const key = new StreamReader(s.watch(c.k("w", "exp")));
    const tree = new StreamReader(s.watchTree(c.k("w")));
    assert.equal(text(await key.next()), "v");
    assert.deepEqual(keys(await tree.next()), [c.k("w", "exp")]);
    assert.equal(await key.next(expiryBound(s)), null);
    assert.deepEqual(
      await tree.until((l) => l.length === 0, expiryBound(s)),
      [],
    );
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
}
