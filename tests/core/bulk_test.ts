// The bulk calls of BaseStore (core/bulk.ts), over a memory database behind
// a driver whose puts the test settles by hand: what a failure part-way
// leaves written and what `BulkWriteError.done` says about it, that no call
// starts once one failed, the bound on calls in flight, and that every entry
// is checked before the first call.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MemoryDriver } from "../../backends/memory/driver.ts";
import {
  BULK_IN_FLIGHT,
  CHUNKS_IN_FLIGHT,
  runChunked,
} from "../../core/bulk.ts";
import type { Driver, DriverWriteOptions } from "../../core/driver.ts";
import {
  BulkWriteError,
  InvalidArgumentError,
  InvalidKeyError,
  StoreError,
} from "../../core/errors.ts";
import { BaseStore } from "../../core/store.ts";

/** Lets timers and everything they started run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A put the test has not settled yet. */
interface HeldPut {
  key: string;
  /** Writes the entry, then resolves the put with its lastIndex. */
  land(): Promise<void>;
  /** Fails the put without writing anything. */
  fail(error: unknown): void;
}

let databases = 0;

/**
 * A store over a fresh memory database whose driver holds every put until
 * the test lands or fails it; everything else goes straight through.
 */
function heldStore() {
  const inner = new MemoryDriver(`core-bulk-${++databases}`);
  const held = new Map<string, HeldPut>();
  const started: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const driver: Driver = {
    backend: inner.backend,
    limits: inner.limits,
    get: (key, options) => inner.get(key, options),
    put: (key: string, value: Uint8Array, options: DriverWriteOptions) => {
      started.push(key);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      return new Promise<bigint>((resolve, reject) => {
        held.set(key, {
          key,
          land: async () => {
            held.delete(key);
            inFlight--;
            resolve(await inner.put(key, value, options));
            await settle();
          },
          fail: (error) => {
            held.delete(key);
            inFlight--;
            reject(error);
          },
        });
      });
    },
    delete: (key, options) => inner.delete(key, options),
    list: (dir, options) => inner.list(dir, options),
    deleteTree: (key, dir, options) => inner.deleteTree(key, dir, options),
    commit: (steps, options) => inner.commit(steps, options),
    watchKey: (key, sink, signal) => inner.watchKey(key, sink, signal),
    watchTree: (dir, sink, signal) => inner.watchTree(dir, sink, signal),
    lock: (key, options) => inner.lock(key, options),
    tryLock: (key, options) => inner.tryLock(key, options),
    close: () => inner.close(),
    abandon: () => inner.abandon(),
  };
  return {
    store: new BaseStore(driver),
    held,
    started,
    inFlight: () => inFlight,
    maxInFlight: () => maxInFlight,
  };
}

const keyOf = (i: number) => `bulk/${String(i).padStart(3, "0")}`;

describe("putMany", () => {
  test("a failure part-way: done lists exactly what was written, and no call starts after it", async () => {
    const { store, held, started, inFlight, maxInFlight } = heldStore();
    const total = 100;
    const entries = Array.from({ length: total }, (_, i) => ({
      key: keyOf(i),
      value: `v${i}`,
    }));
    const result = store.putMany(entries);
    result.catch(() => {});
    await settle();
    // The first calls are in flight, no more than the bound.
    assert.equal(started.length, BULK_IN_FLIGHT);
    assert.deepEqual(
      started,
      entries.slice(0, BULK_IN_FLIGHT).map((e) => e.key),
    );

    // Ten land: each frees its slot for the next entry.
    for (let i = 0; i < 10; i++) await held.get(keyOf(i))!.land();
    assert.equal(started.length, BULK_IN_FLIGHT + 10);
    assert.equal(inFlight(), BULK_IN_FLIGHT);

    // One in flight fails: nothing starts any more.
    const first = new Error("the first failure");
    held.get(keyOf(15))!.fail(first);
    await settle();
    const startedAtFailure = started.length;
    assert.equal(startedAtFailure, BULK_IN_FLIGHT + 10);

    // What was in flight still settles: most land, one fails as well.
    for (const put of [...held.values()]) {
      if (put.key === keyOf(20)) put.fail(new Error("a second failure"));
      else await put.land();
      await settle();
      assert.equal(started.length, startedAtFailure, "a call started late");
    }
    assert.equal(held.size, 0);

    const error = await result.then(
      () => assert.fail("putMany resolved"),
      (error: unknown) => error,
    );
    assert.ok(error instanceof BulkWriteError, String(error));
    // The first failure, wrapped as any foreign error of a driver is.
    assert.ok(error.cause instanceof StoreError);
    assert.equal(error.cause.cause, first);
    assert.match(error.message, /putMany failed after 40 of 100/);
    const expected = Array.from({ length: startedAtFailure }, (_, i) => i)
      .filter((i) => i !== 15 && i !== 20);
    assert.deepEqual(error.done, expected);

    // Read back: exactly the positions in done were written.
    const pairs = await store.getMany(entries.map((e) => e.key));
    const written = pairs.flatMap((pair, i) => pair ? [i] : []);
    assert.deepEqual(written, error.done);
    for (const i of written) assert.equal(pairs[i]!.key, entries[i].key);
    assert.ok(maxInFlight() <= BULK_IN_FLIGHT);
    await store.close();
  });

  test("a failure of the very first call writes nothing else", async () => {
    const { store, held, started } = heldStore();
    const entries = Array.from({ length: 3 }, (_, i) => ({
      key: keyOf(i),
      value: "x",
    }));
    const result = store.putMany(entries);
    result.catch(() => {});
    await settle();
    const failure = new Error("down");
    for (const put of [...held.values()]) put.fail(failure);
    const error = await result.then(() => undefined, (error: unknown) => error);
    assert.ok(error instanceof BulkWriteError);
    assert.deepEqual(error.done, []);
    assert.equal(started.length, 3);
    assert.deepEqual(await store.getMany(entries.map((e) => e.key)), [
      null,
      null,
      null,
    ]);
    await store.close();
  });

  test("resolves every lastIndex in the entries' order, as get reports them", async () => {
    const { store, held } = heldStore();
    const entries = Array.from({ length: 50 }, (_, i) => ({
      key: keyOf(i),
      value: `v${i}`,
    }));
    const result = store.putMany(entries);
    // Landed in reverse order of the entries, as far as the slots allow.
    while (true) {
      await settle();
      const waiting = [...held.values()].reverse();
      if (waiting.length === 0) break;
      for (const put of waiting) await put.land();
    }
    const indexes = await result;
    const pairs = await store.getMany(entries.map((e) => e.key));
    assert.deepEqual(
      indexes,
      pairs.map((pair) => pair!.lastIndex),
    );
    await store.close();
  });

  test("every entry is checked before the first call", async () => {
    const { store, started } = heldStore();
    const good = { key: keyOf(0), value: "ok" };
    await assert.rejects(
      store.putMany([good, { key: "a//b", value: "x" }]),
      InvalidKeyError,
    );
    await assert.rejects(
      store.putMany([good, { key: keyOf(1), value: "x", ttl: 0 }]),
      InvalidArgumentError,
    );
    await assert.rejects(
      store.putMany([good, { key: keyOf(1), value: 7 as unknown as string }]),
      InvalidArgumentError,
    );
    await assert.rejects(
      store.putMany([good, undefined as unknown as typeof good]),
      InvalidArgumentError,
    );
    assert.deepEqual(started, []);
    assert.deepEqual(await store.putMany([]), []);
    await store.close();
  });
});

describe("chunked bulk calls (drivers with batch calls)", () => {
  test("chunks hold at most the size and a key once, in order", async () => {
    const chunks: string[][] = [];
    const keys = ["a", "b", "c", "a", "d", "e", "f", "g"];
    const results = await runChunked(
      "putMany",
      keys,
      3,
      String,
      true,
      (chunk) => {
        chunks.push([...chunk]);
        return Promise.resolve(chunk.map((key) => key.toUpperCase()));
      },
    );
    // "a" again starts a new chunk, so its second write lands after its first.
    assert.deepEqual(chunks, [["a", "b", "c"], ["a", "d", "e"], ["f", "g"]]);
    assert.deepEqual(results, keys.map((key) => key.toUpperCase()));
  });

  test("a failed chunk: the error lists the items of the chunks done", async () => {
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`);
    const error = await runChunked(
      "putMany",
      keys,
      4,
      String,
      true,
      (chunk) =>
        chunk.includes("k5")
          ? Promise.reject(new Error("the server went away"))
          : Promise.resolve(chunk.map(() => 1n)),
    ).then(() => undefined, (error) => error);
    assert.ok(error instanceof BulkWriteError);
    // Chunks [k0..k3] and [k8, k9] were written; [k4..k7] failed as a whole.
    assert.deepEqual(error.done, [0, 1, 2, 3, 8, 9]);
    assert.match(error.message, /the server went away/);
  });

  test("a batch that resolves the wrong count is an error", async () => {
    await assert.rejects(
      runChunked(
        "getMany",
        ["a", "b"],
        5,
        String,
        false,
        () => Promise.resolve([null]),
      ),
      /a batch of 2 resolved 1 results/,
    );
  });

  test("at most CHUNKS_IN_FLIGHT chunks at a time", async () => {
    let inFlight = 0;
    let most = 0;
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    await runChunked("getMany", keys, 5, String, false, async (chunk) => {
      most = Math.max(most, ++inFlight);
      await settle();
      inFlight--;
      return chunk.map(() => null);
    });
    assert.equal(most, CHUNKS_IN_FLIGHT);
  });
});
