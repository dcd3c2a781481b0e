// dump / restore / copy (core/transfer.ts) through the public API on
// memory: and file: stores: the NDJSON format, TTLs, binary values, trees
// larger than a batch, bad dump lines, and copy --follow mirroring live
// changes until stopped.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  copy,
  dump,
  type DumpRecord,
  expiresAt,
  InvalidArgumentError,
  InvalidKeyError,
  openStore,
  restore,
  type Store,
} from "../../mod.ts";
import { eventually, text } from "../../testing/harness.ts";

let stores = 0;
const fresh = () => openStore(`memory:transfer-${++stores}`);

async function lines(stream: ReadableStream<string>): Promise<string[]> {
  let all = "";
  for await (const chunk of stream) all += chunk;
  return all.split("\n").filter((line) => line !== "");
}

async function tree(
  store: Store,
  prefix = "",
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const pair of await store.list(prefix)) out[pair.key] = text(pair)!;
  return out;
}

describe("dump and restore", () => {
  test("lines are key, base64 value and remaining ttl, in key order", async () => {
    await using store = await fresh();
    await store.put("b/x", new Uint8Array([0, 255, 10]));
    await store.put("a/greeting", "hi");
    await store.put("a/session", "s", { ttl: 60_000 });
    await store.put("elsewhere", "no");
    const dumped: DumpRecord[] = (await lines(dump(store, ""))).map((line) =>
      JSON.parse(line)
    );
    assert.deepEqual(dumped.map((r) => r.key), [
      "a/greeting",
      "a/session",
      "b/x",
      "elsewhere",
    ]);
    assert.deepEqual(dumped[0], { key: "a/greeting", value: "aGk=" });
    assert.equal(dumped[2].value, "AP8K");
    const ttl = dumped[1].ttl!;
    assert.ok(ttl > 0 && ttl <= 60_000, `ttl ${ttl}`);
    assert.equal(dumped[0].ttl, undefined);
    // A prefix dumps that tree only.
    assert.equal((await lines(dump(store, "a"))).length, 2);
  });

  test("a tree of several batches round-trips, TTLs included", async () => {
    await using source = await fresh();
    await using target = await fresh();
    const keys = Array.from({ length: 700 }, (_, i) => `t/${i}`);
    await source.putMany(keys.map((key) => ({ key, value: `v${key}` })));
    await source.put("t/short", "x", { ttl: 30_000 });
    const progress: number[] = [];
    const written = await restore(
      target,
      dump(source, "t", { batchSize: 100 }).pipeThrough(
        new TextEncoderStream(),
      ),
      { batchSize: 64, onProgress: (n) => progress.push(n) },
    );
    assert.equal(written, 701);
    assert.deepEqual(await tree(target), await tree(source));
    assert.equal(progress.at(-1), 701);
    const expiry = expiresAt((await target.get("t/short"))!);
    assert.ok(expiry !== undefined && expiry <= Date.now() + 30_000);
    assert.equal(expiresAt((await target.get("t/1"))!), undefined);
  });

  test("a bad line is named and its batch is not written", async () => {
    await using store = await fresh();
    const good = (key: string) =>
      JSON.stringify({ key, value: btoa(key) }) + "\n";
    const bad = [
      ["not json", /line 3 is not JSON/],
      ['{"key":"k","value":"%%%"}', /line 3 has a value that is not base64/],
      ['{"key":"k","value":"aGk=","ttl":-1}', /line 3 has a ttl/],
      ['{"value":"aGk="}', /line 3 has no string key/],
      ['{"key":"a//b","value":"aGk="}', /a\/\/b/],
    ] as const;
    for (const [line, message] of bad) {
      await assert.rejects(
        restore(store, [good("x/1"), good("x/2"), line + "\n", good("x/4")], {
          batchSize: 10,
        }),
        (error: Error) => {
          // A bad key is the store's own InvalidKeyError, naming the key.
          assert.ok(
            error instanceof InvalidArgumentError ||
              error instanceof InvalidKeyError,
            String(error),
          );
          assert.match(error.message, message);
          return true;
        },
      );
      assert.deepEqual(await store.list("x"), [], line);
    }
    // Blank lines are nothing; a last line without \n counts.
    assert.equal(
      await restore(store, [good("y/1"), "\n\n", '{"key":"y/2","value":""}']),
      2,
    );
  });

  test("bad options are refused before any I/O", async () => {
    await using store = await fresh();
    assert.throws(
      () => dump(store, "", { batchSize: 0 }),
      InvalidArgumentError,
    );
    await assert.rejects(
      restore(store, [], { batchSize: 1.5 }),
      InvalidArgumentError,
    );
    await assert.rejects(
      copy(store, store, { batchSize: 10_001 }),
      InvalidArgumentError,
    );
  });
});

describe("copy", () => {
  test("copies a tree between a memory and a file store, overwriting what is there", async () => {
    const dir = mkdtempSync(join(tmpdir(), "transfer-"));
    try {
      await using source = await fresh();
      await using target = await openStore(`file:${join(dir, "t.db")}`);
      await source.putMany(
        Array.from({ length: 300 }, (_, i) => ({ key: `c/${i}`, value: "s" })),
      );
      await source.put("other", "not copied");
      await target.put("c/0", "old");
      await target.put("c/kept", "target's own");
      assert.equal(
        await copy(source, target, { prefix: "c", batchSize: 128 }),
        300,
      );
      const copied = await tree(target);
      assert.equal(copied["c/0"], "s");
      assert.equal(copied["c/kept"], "target's own");
      assert.equal(copied["other"], undefined);
      assert.equal(Object.keys(copied).length, 301);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("follow mirrors puts, deletes and expiries until stopped", async () => {
    await using source = await fresh();
    await using target = await fresh();
    await source.put("m/a", "1");
    await source.put("m/b", "2");
    const stop = new AbortController();
    let synced = 0;
    const running = copy(source, target, {
      prefix: "m",
      follow: true,
      signal: stop.signal,
      onSynced: () => synced++,
    });
    await eventually("first pass", 5_000, () => Promise.resolve(synced > 0));
    assert.deepEqual(await tree(target), { "m/a": "1", "m/b": "2" });
    await source.put("m/c", "3");
    await source.delete("m/a");
    await source.put("m/short", "x", { ttl: 300 });
    await eventually("live changes", 5_000, async () => {
      const now = await tree(target);
      return now["m/c"] === "3" && now["m/a"] === undefined &&
        now["m/short"] === "x";
    });
    await eventually(
      "the expiry",
      10_000,
      async () => (await target.get("m/short")) === null,
    );
    stop.abort();
    assert.equal(await running, 4);
    // Stopped: nothing more is copied.
    await source.put("m/d", "4");
    await source.get("m/d");
    assert.equal(await target.get("m/d"), null);
  });
});
