/**
 * Compares the embedded engine with lmdb-js, classic-level (LevelDB) and
 * Deno KV's local store, in one run on one machine, in redb's benchmark
 * shape: 24-byte random keys, 150-byte values.
 *
 *     deno run -A --unstable-kv bench/engine_compare.ts [--keys N] [--large]
 *
 * `--large` loads 1,000,000 keys instead of 200,000. `--only a,b` runs some
 * contestants. `--runs n` (default 3) repeats everything, contestants in
 * turn, and reports each row's median. Without Deno (Node, Bun) the Deno KV
 * column is skipped. This is
 * a benchmark, not a test: it asserts nothing, it prints a table.
 *
 * Rows: bulk load in one transaction; 1,000 individual durable puts, one
 * after the other; 100,000 concurrent puts (all issued at once); random
 * gets; 10-key range scans; removal of half the keys in one transaction;
 * the file size after the run (after closing). Writes are durable when they
 * resolve everywhere: the engine by default, lmdb-js with `overlappingSync`
 * off (two syncs per commit), classic-level with `sync: true`; Deno KV
 * commits to SQLite.
 *
 * @module
 */

import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { open as openLmdb } from "lmdb";
import { ClassicLevel } from "classic-level";
import { Database } from "../wasm/database.ts";
import { FileHost } from "../wasm/host.ts";
import { loadEngine } from "../wasm/engine.ts";
import { EmbeddedStore } from "../backends/file/mod.ts";

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const option = (name: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
/** redb's benchmark loads 1M keys; 200k keeps a run within a minute or two. */
const KEYS = Number(
  option("--keys") ?? (flag("--large") ? 1_000_000 : 200_000),
);
const INDIVIDUAL = 1_000;
const CONCURRENT = 100_000;
const GETS = Math.min(KEYS, 200_000);
const SCANS = 20_000;
const SCAN_LENGTH = 10;
const VALUE_BYTES = 150;
const only = option("--only")?.split(",");
/** The machine is shared: each row's figure is the median of this many runs. */
const RUNS = Number(option("--runs") ?? 3);

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
function randomKeys(n: number): string[] {
  const keys = new Set<string>();
  const bytes = new Uint8Array(12);
  while (keys.size < n) {
    crypto.getRandomValues(bytes);
    keys.add(hex(bytes));
  }
  return [...keys];
}
function randomValues(n: number): Uint8Array[] {
  const values: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    values.push(crypto.getRandomValues(new Uint8Array(VALUE_BYTES)));
  }
  return values;
}
function dirSize(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = statSync(path);
    total += stat.isDirectory() ? dirSize(path) : stat.size;
  }
  return total;
}

/** What each store does for the rows. */
interface Contestant {
  name: string;
  open(dir: string): Promise<void>;
  bulkLoad(keys: string[], values: Uint8Array[]): Promise<void>;
  put(key: string, value: Uint8Array): Promise<void>;
  concurrentPuts(keys: string[], values: Uint8Array[]): Promise<void>;
  get(key: string): Promise<unknown> | unknown;
  range(from: string, n: number): Promise<number> | number;
  remove(keys: string[]): Promise<void>;
  close(): Promise<void>;
  memory?(): Promise<number>;
}

function engine(): Contestant {
  let db: Database;
  return {
    name: "valkeyrie engine",
    async open(dir) {
      db = await Database.open(new FileHost(join(dir, "data.db")));
    },
    async bulkLoad(keys, values) {
      await db.write((tx) => {
        const revision = tx.op();
        for (let i = 0; i < keys.length; i++) {
          tx.put(keys[i], values[i], revision);
        }
      });
    },
    put: (key, value) => db.put(key, value),
    async concurrentPuts(keys, values) {
      await Promise.all(keys.map((key, i) => db.put(key, values[i])));
    },
    get: (key) => db.get(key),
    range: (from, n) => db.range(from, n).length,
    async remove(keys) {
      await db.write((tx) => {
        tx.op();
        for (const key of keys) tx.delete(key);
      });
    },
    close: () => db.close(),
    memory: async () => (await loadEngine()).memoryBytes,
  };
}

function store(): Contestant {
  let s: EmbeddedStore;
  return {
    name: "valkeyrie file: Store",
    async open(dir) {
      s = await EmbeddedStore.connect({ path: join(dir, "store.db") });
    },
    async bulkLoad(keys, values) {
      // Puts issued in one tick are one commit: the Store's bulk load.
      await Promise.all(keys.map((key, i) => s.put(key, values[i])));
    },
    put: (key, value) => s.put(key, value),
    async concurrentPuts(keys, values) {
      await Promise.all(keys.map((key, i) => s.put(key, values[i])));
    },
    get: (key) => s.get(key),
    range: () => NaN,
    async remove(keys) {
      await Promise.all(keys.map((key) => s.delete(key)));
    },
    close: () => s.close(),
  };
}

function lmdb(): Contestant {
  // deno-lint-ignore no-explicit-any
  let db: any;
  return {
    name: "lmdb-js",
    open(dir) {
      // Without overlappingSync (on by default on Linux) lmdb-js resolves a
      // write when it is committed, before it is synced: turned off, every
      // commit is durable when it resolves, as the engine's are.
      db = openLmdb({
        path: join(dir, "lmdb"),
        encoding: "binary",
        overlappingSync: false,
      });
      return Promise.resolve();
    },
    async bulkLoad(keys, values) {
      await db.transaction(() => {
        for (let i = 0; i < keys.length; i++) db.put(keys[i], values[i]);
      });
    },
    put: (key, value) => db.put(key, value),
    async concurrentPuts(keys, values) {
      await Promise.all(keys.map((key, i) => db.put(key, values[i])));
    },
    get: (key) => db.get(key),
    range(from, n) {
      let count = 0;
      for (const _ of db.getRange({ start: from, limit: n })) count++;
      return count;
    },
    async remove(keys) {
      await db.transaction(() => {
        for (const key of keys) db.remove(key);
      });
    },
    close: () => db.close(),
  };
}

function level(): Contestant {
  let db: ClassicLevel<string, Uint8Array>;
  const sync = { sync: true };
  return {
    name: "classic-level",
    async open(dir) {
      db = new ClassicLevel(join(dir, "level"), {
        keyEncoding: "utf8",
        valueEncoding: "view",
      });
      await db.open();
    },
    async bulkLoad(keys, values) {
      await db.batch(
        keys.map((key, i) => ({ type: "put", key, value: values[i] })),
        sync,
      );
    },
    put: (key, value) => db.put(key, value, sync),
    async concurrentPuts(keys, values) {
      await Promise.all(keys.map((key, i) => db.put(key, values[i], sync)));
    },
    get: (key) => db.get(key),
    async range(from, n) {
      return (await db.keys({ gt: from, limit: n }).all()).length;
    },
    async remove(keys) {
      await db.batch(keys.map((key) => ({ type: "del", key })), sync);
    },
    close: () => db.close(),
  };
}

interface Kv {
  set(key: unknown[], value: unknown): Promise<unknown>;
  get(key: unknown[]): Promise<unknown>;
  delete(key: unknown[]): Promise<void>;
  list(selector: unknown, options: unknown): AsyncIterable<unknown>;
  atomic(): {
    set(key: unknown[], value: unknown): unknown;
    delete(key: unknown[]): unknown;
    commit(): Promise<unknown>;
  };
  close(): void;
}

/** Deno KV commits at most 1000 mutations at once. */
const KV_BATCH = 1_000;

function denoKv(): Contestant {
  let kv: Kv;
  const batches = async (
    n: number,
    add: (op: ReturnType<Kv["atomic"]>, i: number) => void,
  ) => {
    for (let start = 0; start < n; start += KV_BATCH) {
      const op = kv.atomic();
      for (let i = start; i < Math.min(n, start + KV_BATCH); i++) add(op, i);
      await op.commit();
    }
  };
  return {
    name: "Deno KV",
    async open(dir) {
      // deno-lint-ignore no-explicit-any
      kv = await (globalThis as any).Deno.openKv(join(dir, "kv.sqlite"));
    },
    bulkLoad: (keys, values) =>
      batches(keys.length, (op, i) => op.set([keys[i]], values[i])),
    put: async (key, value) => void await kv.set([key], value),
    async concurrentPuts(keys, values) {
      await Promise.all(keys.map((key, i) => kv.set([key], values[i])));
    },
    get: (key) => kv.get([key]),
    async range(from, n) {
      let count = 0;
      for await (
        const _ of kv.list({ start: [from], end: ["\uffff"] }, { limit: n })
      ) count++;
      return count;
    },
    remove: (keys) => batches(keys.length, (op, i) => op.delete([keys[i]])),
    close: () => Promise.resolve(kv.close()),
  };
}

const ROWS = [
  ["bulk load", `${KEYS} keys, one transaction`],
  ["individual durable puts", `${INDIVIDUAL}, one after the other`],
  ["concurrent puts", `${CONCURRENT}, issued at once`],
  ["random gets", `${GETS}`],
  ["10-key range scans", `${SCANS}`],
  ["remove half", `${KEYS / 2} keys, one transaction`],
] as const;

async function run(c: Contestant): Promise<Map<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), "valkeyrie-bench-"));
  const rates = new Map<string, number>();
  const timed = async (row: string, ops: number, fn: () => Promise<void>) => {
    const start = performance.now();
    await fn();
    const seconds = (performance.now() - start) / 1000;
    rates.set(row, ops / seconds);
    console.error(`  ${c.name}: ${row}: ${(ops / seconds).toFixed(0)}/s`);
  };
  try {
    const keys = randomKeys(KEYS + INDIVIDUAL + CONCURRENT);
    const values = randomValues(KEYS + INDIVIDUAL + CONCURRENT);
    await c.open(dir);
    await timed(
      "bulk load",
      KEYS,
      () => c.bulkLoad(keys.slice(0, KEYS), values.slice(0, KEYS)),
    );
    await timed("individual durable puts", INDIVIDUAL, async () => {
      for (let i = KEYS; i < KEYS + INDIVIDUAL; i++) {
        await c.put(keys[i], values[i]);
      }
    });
    const from = KEYS + INDIVIDUAL;
    await timed(
      "concurrent puts",
      CONCURRENT,
      () =>
        c.concurrentPuts(
          keys.slice(from, from + CONCURRENT),
          values.slice(from, from + CONCURRENT),
        ),
    );
    const order = Array.from(
      { length: GETS },
      () => keys[Math.floor(Math.random() * KEYS)],
    );
    await timed("random gets", GETS, async () => {
      for (const key of order) await c.get(key);
    });
    if (!Number.isNaN(await c.range(keys[0], SCAN_LENGTH))) {
      await timed("10-key range scans", SCANS, async () => {
        for (let i = 0; i < SCANS; i++) {
          await c.range(order[i % GETS].slice(0, 20), SCAN_LENGTH);
        }
      });
    }
    await timed(
      "remove half",
      KEYS / 2,
      () => c.remove(keys.slice(0, KEYS / 2)),
    );
    if (c.memory) rates.set("memory", await c.memory());
    await c.close();
    rates.set("file size", dirSize(dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rates;
}

const contestants = [engine(), store(), lmdb(), level()];
if ("Deno" in globalThis) contestants.push(denoKv());
const chosen = contestants.filter((c) =>
  !only || only.some((name) => c.name.toLowerCase().includes(name))
);
console.error(`${KEYS} keys of 24 bytes, values of ${VALUE_BYTES} bytes`);
const runs = new Map<string, Map<string, number>[]>();
for (let r = 0; r < RUNS; r++) {
  // Contestants take turns, so a noisy minute hurts them alike.
  const order = chosen.map((_, i) => chosen[(i + r) % chosen.length]);
  for (const factory of order) {
    const c = contestants.indexOf(factory);
    const fresh = [engine, store, lmdb, level, denoKv][c]();
    const list = runs.get(fresh.name) ?? [];
    list.push(await run(fresh));
    runs.set(fresh.name, list);
  }
}
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
const results = new Map<string, Map<string, number>>();
for (const c of chosen) {
  const all = runs.get(c.name)!;
  const merged = new Map<string, number>();
  for (const key of all[0].keys()) {
    const values = all.map((m) => m.get(key)).filter((v) => v !== undefined);
    merged.set(
      key,
      key === "memory"
        ? Math.max(...values as number[])
        : median(values as number[]),
    );
  }
  results.set(c.name, merged);
}

const base = results.get("lmdb-js");
const rate = (n: number | undefined) =>
  n === undefined
    ? "-"
    : n >= 1e6
    ? `${(n / 1e6).toFixed(2)}M/s`
    : n >= 1e3
    ? `${(n / 1e3).toFixed(1)}k/s`
    : `${n.toFixed(0)}/s`;
const mib = (n: number | undefined) =>
  n === undefined ? "-" : `${(n / 1048576).toFixed(1)} MiB`;
const names = [...results.keys()];
const lines = [
  `| ${KEYS} keys (${VALUE_BYTES}-byte values) | ${names.join(" | ")} |`,
  `|---|${names.map(() => "---").join("|")}|`,
];
for (const [row, what] of ROWS) {
  lines.push(
    `| ${row} (${what}) | ${
      names.map((name) => {
        const value = results.get(name)!.get(row);
        const ratio = value !== undefined && base?.get(row)
          ? ` (${(value / base.get(row)!).toFixed(2)}×)`
          : "";
        return rate(value) + ratio;
      }).join(" | ")
    } |`,
  );
}
lines.push(
  `| file size after the run | ${
    names.map((name) => {
      const size = results.get(name)!.get("file size");
      const ratio = size !== undefined && base?.get("file size")
        ? ` (${(size / base.get("file size")!).toFixed(2)}×)`
        : "";
      return mib(size) + ratio;
    }).join(" | ")
  } |`,
);
lines.push(
  `| engine memory (wasm linear memory) | ${
    names.map((name) => mib(results.get(name)!.get("memory"))).join(" | ")
  } |`,
);
console.log(lines.join("\n"));
console.log(
  `\nMedians of ${RUNS} runs. Ratios are against lmdb-js (higher is better for rates, lower for size). Runtime: ${
    "Deno" in globalThis
      ? `Deno ${
        (globalThis as { Deno?: { version: { deno: string } } }).Deno?.version
          .deno
      }`
      : process.versions.bun
      ? `Bun ${process.versions.bun}`
      : `Node ${process.versions.node}`
  }.`,
);
