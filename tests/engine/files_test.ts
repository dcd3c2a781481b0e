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
import { EmbeddedStore } from "../../backends/file/mod.ts";
// By brand, not instanceof: under Node the test runs against the npm build,
// while the engine modules it opens directly are bundled from source.
import { isStoreError } from "../../mod.ts";
import { Database } from "../../engine/database.ts";
import { loadEngine } from "../../engine/engine.ts";
import { FileHost, MemoryHost } from "../../engine/host.ts";
import type { IntegrityReport } from "../../engine/engine.ts";
import { commitOps, equalBytes, openDb, Rng, seed, WASM } from "./support.ts";

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

/** A memory file of `n` keys (some with values in pages of their own), closed cleanly. */
async function memoryFile(n: number): Promise<Uint8Array> {
  const host = new MemoryHost();
  const db = await openDb(host, 64);
  await commitOps(
    db,
    Array.from({ length: n }, (_, i) => ({
      type: "put" as const,
      key: `k/${String(i).padStart(5, "0")}`,
      value: new Uint8Array(i % 97 === 0 ? 9000 : 60).fill(i % 251),
    })),
  );
  await db.close();
  return host.bytes();
}

/**
 * The integrity report of `bytes` with one byte of each page in `pages`
 * damaged, or `null` when opening refuses the file (as it does when a page
 * of the allocation bitmap is damaged).
 */
async function reportWithDamage(
  bytes: Uint8Array,
  pages: number[],
): Promise<IntegrityReport | null> {
  const damaged = new Uint8Array(bytes);
  for (const page of pages) damaged[page * 4096 + 2048] ^= 0xff;
  const host = new MemoryHost();
  host.write(0, damaged);
  let db;
  try {
    db = await openDb(host, 16);
  } catch (error) {
    assert.ok(isStoreError(error), String(error));
    return null;
  }
  try {
    return await db.verify();
  } finally {
    db.crash();
  }
}

describe("the integrity check past damage", () => {
  test("two damaged pages are both reported, and no page is called leaked", async () => {
    const bytes = await memoryFile(3000);
    // Leaves: pages whose damage alone is reported as that page, with
    // nothing below it.
    const leaves: number[] = [];
    for (let page = 1; page < bytes.length / 4096; page++) {
      const report = await reportWithDamage(bytes, [page]);
      if (
        report && report.damagedPages.length === 1 &&
        report.damagedPages[0] === page && report.unreachablePages === 0
      ) {
        leaves.push(page);
      }
    }
    assert.ok(leaves.length >= 10, `only ${leaves.length} leaves found`);
    const [a, b] = [leaves[1], leaves[leaves.length - 2]];
    const report = (await reportWithDamage(bytes, [a, b]))!;
    assert.equal(report.ok, false);
    assert.deepEqual(
      [...report.damagedPages].sort((x, y) => x - y),
      [a, b],
      JSON.stringify(report),
    );
    const errors = report.errors.join("\n");
    assert.match(errors, new RegExp(`page ${a} does not match its checksum`));
    assert.match(errors, new RegExp(`page ${b} does not match its checksum`));
    assert.equal(report.leakedPages, 0, JSON.stringify(report));
    assert.equal(report.unreachablePages, 0);
    assert.ok(report.keys > 2500, "the healthy leaves were all checked");
  });

  test("pages under a damaged branch are unreachable, not leaked", async () => {
    const bytes = await memoryFile(3000);
    let branches = 0;
    for (let page = 1; page < bytes.length / 4096; page++) {
      const report = await reportWithDamage(bytes, [page]);
      if (!report || report.unreachablePages === 0) continue;
      branches++;
      assert.deepEqual(report.damagedPages, [page], JSON.stringify(report));
      assert.equal(report.leakedPages, 0, JSON.stringify(report));
      assert.match(
        report.errors.join("\n"),
        /unreachable because of the damaged pages/,
      );
    }
    assert.ok(branches > 0, "no branch page was found to damage");
  });
});

describe("the header after an acknowledged commit and an unclean stop", () => {
  // The header layout (engine/src/pager/header.rs): the god byte at 24, and
  // commit slots of 128 bytes at 64 and 192.
  const GOD = 24;
  const slotAt = (slot: number) => 64 + 128 * slot;
  const last = new Uint8Array(3000).fill(2);

  async function acknowledged(): Promise<Uint8Array> {
    const host = new MemoryHost();
    const db = await openDb(host, 16);
    await commitOps(db, [
      { type: "put", key: "first", value: new Uint8Array(20_000).fill(1) },
    ]);
    await commitOps(db, [{ type: "put", key: "last", value: last }]);
    db.crash();
    return host.bytes();
  }

  /** Opens `bytes`: the last commit is "kept", "lost", or opening "refused" it. */
  async function outcome(bytes: Uint8Array): Promise<string> {
    const host = new MemoryHost();
    host.write(0, bytes);
    let db;
    try {
      db = await openDb(host, 16);
    } catch (error) {
      assert.ok(isStoreError(error), String(error));
      assert.match((error as Error).message, /corrupt/);
      return "refused";
    }
    try {
      const report = await db.verify();
      assert.ok(report.ok, JSON.stringify(report));
      const entry = db.get("last");
      const first = db.get("first");
      assert.ok(first, "the commit before the last is there in any case");
      return entry && equalBytes(entry.value, last) ? "kept" : "lost";
    } finally {
      db.crash();
    }
  }

  test("no flipped bit of the god byte or of the current slot silently loses it", async () => {
    const bytes = await acknowledged();
    const current = bytes[GOD];
    assert.ok(current === 0 || current === 1);
    assert.equal(await outcome(bytes), "kept");
    const flips: Array<[number, number]> = [];
    for (let bit = 0; bit < 8; bit++) flips.push([GOD, bit]);
    for (let at = slotAt(current); at < slotAt(current) + 128; at++) {
      for (let bit = 0; bit < 8; bit++) flips.push([at, bit]);
    }
    const seen = new Map<string, number>();
    for (const [at, bit] of flips) {
      const damaged = new Uint8Array(bytes);
      damaged[at] ^= 1 << bit;
      const result = await outcome(damaged);
      assert.notEqual(result, "lost", `bit ${bit} of byte ${at}`);
      seen.set(result, (seen.get(result) ?? 0) + 1);
    }
    // One flipped bit is repaired, never merely refused.
    assert.deepEqual([...seen], [["kept", flips.length]]);
  });

  test("a current slot damaged beyond one bit is refused, not opened at the commit before", async () => {
    const bytes = await acknowledged();
    const at = slotAt(bytes[GOD]);
    for (const [x, y] of [[0, 9], [130, 131], [500, 1000]]) {
      const damaged = new Uint8Array(bytes);
      damaged[at + (x >> 3)] ^= 1 << (x & 7);
      damaged[at + (y >> 3)] ^= 1 << (y & 7);
      assert.equal(await outcome(damaged), "refused", `bits ${x} and ${y}`);
    }
    // The older slot's damage does not matter: the last commit opens.
    const damaged = new Uint8Array(bytes);
    const older = slotAt(1 - bytes[GOD]);
    damaged[older + 3] ^= 0x11;
    assert.equal(await outcome(damaged), "kept");
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
