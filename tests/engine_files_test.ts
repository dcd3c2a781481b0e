// Damaged and foreign files give errors, never garbage; the integrity check
// finds damage; the engine's memory is bounded by its cache, not the file.
import assert from "node:assert/strict";
import {
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { EmbeddedStore } from "../backends/file/mod.ts";
import { StoreError } from "../mod.ts";
import { Database } from "../wasm/database.ts";
import { loadEngine } from "../wasm/engine.ts";
import { FileHost } from "../wasm/host.ts";
import { Rng, seed, WASM } from "./engine_support.ts";

const dir = mkdtempSync(join(tmpdir(), "valkeyrie-engine-files-"));
after(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function fresh(): string {
  return join(dir, `db-${++files}.db`);
}

/** A database of `n` keys (some with large values); returns its contents. */
async function filled(path: string, n = 400): Promise<Map<string, string>> {
  const contents = new Map<string, string>();
  const store = await EmbeddedStore.connect({ path });
  const writes = [];
  for (let i = 0; i < n; i++) {
    const value = `value ${i} `.repeat(i % 37 === 0 ? 500 : 3);
    contents.set(`k/${i}`, value);
    writes.push(store.put(`k/${i}`, value));
  }
  await Promise.all(writes);
  await store.close();
  return contents;
}

const isStoreError = (error: unknown) => error instanceof StoreError;

describe("damaged and foreign files", () => {
  test("a file that is not a database is refused with a clear error", async () => {
    const path = fresh();
    writeFileSync(path, "name,value\n" + "a,1\n".repeat(500));
    await assert.rejects(
      EmbeddedStore.connect({ path }),
      (error) =>
        isStoreError(error) &&
        /not a valkeyrie database file/i.test((error as Error).message),
    );
    const short = fresh();
    writeFileSync(short, "hello");
    await assert.rejects(EmbeddedStore.connect({ path: short }), isStoreError);
    assert.equal(readFileSync(short, "utf8"), "hello", "left untouched");
  });

  test("a truncated file gives an error", async () => {
    const path = fresh();
    const contents = await filled(path);
    const size = statSync(path).size;
    // Cutting only the bitmap a clean close wrote at the end leaves the
    // commit before it whole: opening recovers it, with every key.
    truncateSync(path, size - 4096);
    try {
      const store = await EmbeddedStore.connect({ path });
      for (const [key, value] of contents) {
        const pair = await store.get(key);
        assert.equal(pair && new TextDecoder().decode(pair.value), value);
      }
      assert.ok((await store.verify()).ok);
      await store.close();
    } catch (error) {
      assert.ok(isStoreError(error));
    }
    for (const length of [Math.floor(size / 2), 8192, 600]) {
      truncateSync(path, length);
      await assert.rejects(
        EmbeddedStore.connect({ path }),
        (error) =>
          isStoreError(error) &&
          /truncated|corrupt|not a valkeyrie/.test((error as Error).message),
        `truncated to ${length} bytes`,
      );
    }
  });

  test("bit flips anywhere give errors or the right data, never wrong data", async () => {
    const s = seed();
    const rng = new Rng(s);
    const original = fresh();
    const contents = await filled(original);
    const bytes = readFileSync(original);
    const path = fresh();
    let refused = 0;
    let detected = 0;
    for (let flip = 0; flip < 60; flip++) {
      const damaged = new Uint8Array(bytes);
      const at = rng.below(damaged.length);
      damaged[at] ^= 1 << rng.below(8);
      writeFileSync(path, damaged);
      let store: EmbeddedStore;
      try {
        store = await EmbeddedStore.connect({ path });
      } catch (error) {
        assert.ok(isStoreError(error), `flip at ${at}: ${error}`);
        refused++;
        continue;
      }
      try {
        let failed = false;
        for (const [key, value] of contents) {
          try {
            const pair = await store.get(key);
            assert.equal(
              pair && new TextDecoder().decode(pair.value),
              value,
              `flip at byte ${at} (seed ${s}) changed ${key}`,
            );
          } catch (error) {
            if (!isStoreError(error)) throw error;
            failed = true;
          }
        }
        const report = await store.verify();
        if (failed) assert.equal(report.ok, false, `flip at ${at}`);
        if (!report.ok) detected++;
      } finally {
        await store.close().catch(() => {});
      }
    }
    assert.ok(refused + detected > 0, "no flip was ever noticed");
  });

  test("the integrity check passes on a healthy file and finds a damaged page", async () => {
    const path = fresh();
    await filled(path);
    const store = await EmbeddedStore.connect({ path });
    const healthy = await store.verify();
    assert.equal(healthy.ok, true, JSON.stringify(healthy));
    assert.equal(healthy.keys, 400);
    assert.equal(healthy.leakedPages, 0);
    await store.close();
    // Damage each page in turn: a page of the tree is found by the check
    // (pages of the bitmap make opening fail; free pages matter to no one).
    const bytes = readFileSync(path);
    let found = 0;
    for (let page = 1; page < bytes.length / 4096; page++) {
      const damaged = new Uint8Array(bytes);
      damaged[page * 4096 + 2048] ^= 0xff;
      writeFileSync(path, damaged);
      let store: EmbeddedStore;
      try {
        store = await EmbeddedStore.connect({ path });
      } catch (error) {
        assert.ok(isStoreError(error));
        continue;
      }
      const report = await store.verify();
      await store.close().catch(() => {});
      if (!report.ok) {
        assert.match(report.errors.join("\n"), /checksum/);
        found++;
      }
    }
    assert.ok(found > 0, "the check found no damaged page");
  });
});

describe("memory", () => {
  test("the engine's memory stays bounded by its cache while the file grows", async () => {
    const engine = await loadEngine(WASM);
    const path = fresh();
    // A 1 MiB cache. One transaction far larger than the cache spills its
    // pages early; then many small ones.
    const db = await Database.open(new FileHost(path), { cachePages: 256 });
    const value = new Uint8Array(300).fill(7);
    const before = engine.memoryBytes;
    await db.write((tx) => {
      const revision = tx.op();
      for (let i = 0; i < 40_000; i++) tx.put(`big/${i}`, value, revision);
    });
    for (let round = 0; round < 30; round++) {
      await db.write((tx) => {
        const revision = tx.op();
        for (let i = 0; i < 2000; i++) {
          tx.put(`m/${round}/${i}`, value, revision);
        }
      });
    }
    for (let i = 0; i < 20_000; i++) {
      const round = (i * 7) % 30;
      assert.ok(db.get(`m/${round}/${(i * 13) % 2000}`));
    }
    const size = statSync(path).size;
    const grown = engine.memoryBytes - before;
    assert.ok(size > 20 * 1024 * 1024, `the file is only ${size} bytes`);
    assert.ok(
      grown < size / 3,
      `memory grew by ${grown} bytes for a file of ${size}`,
    );
    assert.ok(db.stats().cachedPages <= 256);
    await db.close();
  });
});
