// CONTRACT.md "Closing" and "Errors", the `prefix` of "Opening a store" and
// "aborts reject with the signal's reason" for every call.
import assert from "node:assert/strict";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "../core/config.ts";
import {
  InvalidConfigurationError,
  InvalidKeyError,
  KeyNotFoundError,
  NotReachableError,
  StoreClosedError,
  StoreError,
} from "../core/errors.ts";
import type { KVPair, Store } from "../core/types.ts";
import {
  caseDefiner,
  type ConformanceTarget,
  keys,
  StreamReader,
  type TestRunner,
  text,
} from "./harness.ts";

/** Every call of a store, with arguments that would otherwise succeed. */
function everyCall(
  s: Store,
  key: string,
  signal?: AbortSignal,
): Record<string, () => Promise<unknown>> {
  const pair: KVPair = { key, value: new Uint8Array(), lastIndex: 1n };
  const options = { signal };
  return {
    put: () => s.put(key, "v", options),
    get: () => s.get(key, options),
    exists: () => s.exists(key, options),
    delete: () => s.delete(key, options),
    list: () => s.list(key, options),
    deleteTree: () => s.deleteTree(key, options),
    lock: () => s.lock(key, options),
    atomicPut: () => s.atomicPut(key, "v", null, options),
    atomicDelete: () => s.atomicDelete(key, pair, options),
    commit: async () => await s.atomic().put(key, "v").commit(options),
  };
}

export function lifecycleCases(
  runner: TestRunner,
  target: ConformanceTarget,
): void {
  const test = caseDefiner(runner, target);

  test("every call after close() fails with StoreClosedError", async (c) => {
    const s = await c.open();
    const pending = s.atomic().put(c.k("late"), "v");
    await s.close();
    for (const [name, call] of Object.entries(everyCall(s, c.k("x")))) {
      await assert.rejects(call(), StoreClosedError, name);
    }
    await assert.rejects(pending.commit(), StoreClosedError);
    assert.throws(() => s.watch(c.k("x")), StoreClosedError);
    assert.throws(() => s.watchTree(c.k("x")), StoreClosedError);
    assert.throws(() => s.atomic(), StoreClosedError);
    assert.equal(await c.a.exists(c.k("late")), false);
  });

  test("close() is idempotent and await using closes at scope exit", async (c) => {
    const s = await c.open();
    await Promise.all([s.close(), s.close()]);
    await s.close();
    let scoped: Store;
    {
      await using store = await c.open();
      scoped = store;
      await store.put(c.k("scoped"), "v");
    }
    await assert.rejects(scoped.get(c.k("scoped")), StoreClosedError);
    assert.equal(text(await c.a.get(c.k("scoped"))), "v");
  });

  test("close() ends watches and releases held locks", async (c) => {
    const s = await c.open();
    const ttl = 60_000;
    await s.lock(c.k("held"), { ttl });
    const key = new StreamReader(s.watch(c.k("w")));
    const tree = new StreamReader(s.watchTree(c.k()));
    await key.next();
    await tree.next();
    await s.close();
    assert.equal(await key.ends(), true, "the key watch closes");
    assert.equal(await tree.ends(), true, "the tree watch closes");
    // A lock that close() did not release would be free only when its
    // 60 s TTL ran out; half of it is "at once" on any machine.
    const lock = await c.a.lock(c.k("held"), {
      signal: AbortSignal.timeout(ttl / 2),
    });
    await lock.unlock();
  });

  test("close() ends a lock that is still waiting", async (c) => {
    const b = await c.open();
    const held = await c.a.lock(c.k("busy"));
    const waiting = b.lock(c.k("busy"));
    // Handle the rejection before close() does its I/O, so it is never
    // reported as unhandled meanwhile.
    const rejected = assert.rejects(waiting, StoreClosedError);
    await b.close();
    await rejected;
    await held.unlock();
  });

  test("an aborted signal rejects every call with its reason and writes nothing", async (c) => {
    const s = c.a;
    const controller = new AbortController();
    const reason = new Error("not now");
    controller.abort(reason);
    for (
      const [name, call] of Object.entries(
        everyCall(s, c.k("aborted"), controller.signal),
      )
    ) {
      await assert.rejects(call(), (error) => error === reason, name);
    }
    assert.throws(
      () => s.watch(c.k("aborted"), { signal: controller.signal }),
      (error) => error === reason,
    );
    assert.equal(await s.exists(c.k("aborted")), false);
    assert.deepEqual(await s.list(c.k()), []);
  });

  test("errors extend StoreError and carry their name", async (c) => {
    const s = c.a;
    const errors: unknown[] = [];
    await s.get("a//b").catch((error) => errors.push(error));
    await s.atomicDelete(c.k("none"), {
      key: c.k("none"),
      value: new Uint8Array(),
      lastIndex: 1n,
    }).catch((error) => errors.push(error));
    assert.ok(errors[0] instanceof InvalidKeyError);
    assert.ok(errors[1] instanceof KeyNotFoundError);
    for (const error of errors) {
      assert.ok(error instanceof StoreError);
      assert.ok(error instanceof Error);
      assert.equal((error as Error).name, error!.constructor.name);
      assert.ok((error as Error).message.length > 0);
    }
  });

  test("a prefix is a namespace: keys are stored under it and reported without it", async (c) => {
    const one = await c.open({ prefix: c.k("one") });
    const two = await c.open({ prefix: `/${c.k("two")}/` });
    await one.put("shared/key", "from one");
    await two.put("shared/key", "from two");
    assert.equal(text(await one.get("shared/key")), "from one");
    assert.equal(text(await two.get("shared/key")), "from two");
    assert.deepEqual(keys(await one.list("")), ["shared/key"]);
    assert.equal((await one.get("shared/key"))!.key, "shared/key");
    assert.equal(text(await c.a.get(c.k("one", "shared", "key"))), "from one");
    assert.deepEqual(keys(await c.a.list(c.k())), [
      c.k("one", "shared", "key"),
      c.k("two", "shared", "key"),
    ]);
    const prefixBytes = new TextEncoder().encode(c.k("one")).length + 1;
    assert.equal(
      one.limits.maxKeyBytes,
      c.a.limits.maxKeyBytes - prefixBytes,
    );
    const watch = new StreamReader(one.watchTree(""));
    assert.deepEqual(keys(await watch.next()), ["shared/key"]);
    await two.put("other", "not mine");
    await one.put("mine", "mine");
    assert.deepEqual(keys(await watch.next()), ["mine", "shared/key"]);
    await watch.cancel();
  });

  test("an invalid prefix is an InvalidConfigurationError", async (c) => {
    for (const prefix of ["a//b", "..", "a\u0000"]) {
      await assert.rejects(c.open({ prefix }), InvalidConfigurationError);
    }
  });

  if (target.openUnreachable) {
    const openUnreachable = target.openUnreachable;
    test("an unreachable server gives NotReachableError within connectTimeout", async () => {
      const timeout = 1_000;
      const started = Date.now();
      const error = await openUnreachable(timeout).then(
        async (store) => {
          // Some clients connect lazily: the first call must fail instead.
          try {
            return await store.get("probe").then(() => undefined, (e) => e);
          } finally {
            await store.close();
          }
        },
        (e) => e,
      );
      const took = Date.now() - started;
      assert.ok(
        error instanceof NotReachableError,
        `got ${error} instead of NotReachableError`,
      );
      // A store that ignored connectTimeout would wait out the 10 s
      // default; half of it leaves a loaded machine seconds to spare.
      assert.ok(
        took < DEFAULT_CONNECT_TIMEOUT_MS / 2,
        `took ${took} ms with a connectTimeout of ${timeout} ms`,
      );
    });
  }
}
