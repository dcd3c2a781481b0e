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
 * as many new keys loaded in one transaction; the file size after the run
 * (after closing). Beside them: the disk's own limit for a durable write,
 * 1,000 overwrites of one 4 KiB page in an allocated file, each followed by
 * `fdatasync`, timed in each contestant's directory right before its durable
 * puts, and a durable put's time over that; and the files' size after the
 * reload over their size before the removal (both while open), which says
 * whether freed space is used again. Writes are durable when they
 * resolve everywhere: the engine by default, lmdb-js with `overlappingSync`
 * off (two syncs per commit), classic-level with `sync: true`; Deno KV
 * commits to SQLite.
 *
 * Many processes on one file (`--only processes` runs just these; the file:
 * Store against lmdb-js, each opened by child processes on one path, in the
 * same runtime as the bench, `bench/compare/process_child.ts`): 4 processes
 * at once, each doing 1,000 durable individual puts one after the other,
 * their total rate over the span from the first put issued to the last one
 * resolved; and the latency from a put issued in one process to its value
 * seen in another, 500 puts one at a time (1-3 ms apart), p50 and p99, with
 * the writer and with the watcher as the process that opened the file first
 * (for `file:` that one owns it and serves the other). The file: Store's
 * reader is a `watch`; lmdb-js has no change notification across processes,
 * so its reader re-reads the key in a tight loop, a core kept busy.
 *
 * @module
 */

import { spawn } from "node:child_process";
import {
  closeSync,
  fdatasyncSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { open as openLmdb } from "lmdb";
import { ClassicLevel } from "classic-level";
import { Database } from "../engine/database.ts";
import { FileHost } from "../engine/host.ts";
import { loadEngine } from "../engine/engine.ts";
import { EmbeddedStore } from "../backends/file/mod.ts";
import { percentile } from "./compare/measure.ts";

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
/** Writing processes on one file, and the durable puts each does. */
const PROCESSES = 4;
const PROCESS_PUTS = 1_000;
/** Puts, one at a time, whose put-to-seen latency across processes is timed. */
const LATENCY_PUTS = 500;
/** `--only processes` runs the multi-process rows (and no contestant alone). */
const PROCESS_ROWS = !only || only.includes("processes");

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
  put(key: string, value: Uint8Array): Promise<unknown>;
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
      // The Store's bulk call (one commit per chunk of batchKeys).
      await s.putMany(keys.map((key, i) => ({ key, value: values[i] })));
    },
    put: (key, value) => s.put(key, value),
    async concurrentPuts(keys, values) {
      await Promise.all(keys.map((key, i) => s.put(key, values[i])));
    },
    get: (key) => s.get(key),
    range: () => NaN,
    remove: (keys) => s.deleteMany(keys),
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
  ["reload half", `${KEYS / 2} new keys, one transaction`],
] as const;

/** Page overwrites timed for the disk's own limit, the sync row. */
const SYNCS = 1_000;
const PAGE_BYTES = 4096;
/** The overwritten pages: a file that is not grown while it is timed. */
const SYNC_FILE_PAGES = 64;

/**
 * The disk's floor for a durable put: overwrites of one 4 KiB page at a
 * random place in an allocated file, each followed by `fdatasync`, one after
 * the other, in `dir` (where the contestant's file is), per second.
 */
function syncLimit(dir: string): number {
  const path = join(dir, "sync-limit");
  const fd = openSync(path, "w+");
  try {
    const page = crypto.getRandomValues(new Uint8Array(PAGE_BYTES));
    for (let i = 0; i < SYNC_FILE_PAGES; i++) {
      writeSync(fd, page, 0, PAGE_BYTES, i * PAGE_BYTES);
    }
    fdatasyncSync(fd);
    const start = performance.now();
    for (let i = 0; i < SYNCS; i++) {
      page[0] = i;
      const at = Math.floor(Math.random() * SYNC_FILE_PAGES) * PAGE_BYTES;
      writeSync(fd, page, 0, PAGE_BYTES, at);
      fdatasyncSync(fd);
    }
    return SYNCS / ((performance.now() - start) / 1000);
  } finally {
    closeSync(fd);
    rmSync(path);
  }
}

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
    const total = KEYS + INDIVIDUAL + CONCURRENT + KEYS / 2;
    const keys = randomKeys(total);
    const values = randomValues(total);
    await c.open(dir);
    await timed(
      "bulk load",
      KEYS,
      () => c.bulkLoad(keys.slice(0, KEYS), values.slice(0, KEYS)),
    );
    // The disk's limit, measured beside this contestant's durable puts.
    rates.set("sync limit", syncLimit(dir));
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
    rates.set("size before remove", dirSize(dir));
    await timed(
      "remove half",
      KEYS / 2,
      () => c.remove(keys.slice(0, KEYS / 2)),
    );
    const fresh = KEYS + INDIVIDUAL + CONCURRENT;
    await timed(
      "reload half",
      KEYS / 2,
      () => c.bulkLoad(keys.slice(fresh), values.slice(fresh)),
    );
    rates.set("size after reload", dirSize(dir));
    if (c.memory) rates.set("memory", await c.memory());
    await c.close();
    rates.set("file size", dirSize(dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rates;
}

/** A child process holding one store on a shared path. */
interface Child {
  /** Sends a command and resolves its answer (answers come in order). */
  call(op: string, args?: Record<string, number>): Promise<Answer>;
  /** Resolves the time the child saw the value numbered `id`. */
  seen(id: number): Promise<number>;
  /** Closes its store and waits for it to exit. */
  close(): Promise<void>;
}
type Answer = Record<string, number>;

const CHILD = fileURLToPath(
  new URL("./compare/process_child.ts", import.meta.url),
);
/** A sighting that has not come by then is an error, not a slow sample. */
const SEEN_TIMEOUT_MS = 30_000;

/** Starts a child on `path` in this runtime; resolves once it opened it. */
async function child(kind: "store" | "lmdb", path: string): Promise<Child> {
  const argv = "Deno" in globalThis
    ? ["run", "-A", CHILD, kind, path]
    : [...process.execArgv, CHILD, kind, path];
  const proc = spawn(process.execPath, argv, {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => proc.on("exit", resolve));
  const answers: Array<(answer: Answer) => void> = [];
  const sightings = new Map<number, number>();
  const watchers = new Map<number, (at: number) => void>();
  let partial = "";
  proc.stdout!.on("data", (chunk: Uint8Array) => {
    partial += new TextDecoder().decode(chunk);
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      const message = JSON.parse(line);
      if ("seen" in message) {
        sightings.set(message.seen, message.at);
        watchers.get(message.seen)?.(message.at);
      } else answers.shift()?.(message);
    }
  });
  const answer = () =>
    new Promise<Answer>((resolve, reject) => {
      answers.push((message) =>
        message.ok
          ? resolve(message)
          : reject(new Error(`${kind} child: ${message.error}`))
      );
      exited.then(() => reject(new Error(`${kind} child exited`)));
    });
  await answer();
  return {
    call(op, args = {}) {
      const answered = answer();
      proc.stdin!.write(JSON.stringify({ op, ...args }) + "\n");
      return answered;
    },
    seen: (id) =>
      new Promise((resolve, reject) => {
        if (sightings.has(id)) return resolve(sightings.get(id)!);
        const timer = setTimeout(
          () => reject(new Error(`${kind} child never saw put ${id}`)),
          SEEN_TIMEOUT_MS,
        );
        watchers.set(id, (at) => {
          clearTimeout(timer);
          watchers.delete(id);
          resolve(at);
        });
      }),
    async close() {
      const answered = answer();
      proc.stdin!.write(JSON.stringify({ op: "close" }) + "\n");
      await answered;
      await exited;
    },
  };
}

/** The multi-process rows: a rate, then put→seen latencies in milliseconds. */
const PROCESS_TABLE = [
  [
    "writers",
    `${PROCESSES} writing processes (${PROCESS_PUTS} durable puts each, one after the other, all at once)`,
  ],
  ["p50 writer first", "put→seen p50 (the writer opened the file first)"],
  ["p99 writer first", "put→seen p99 (the writer opened the file first)"],
  ["p50 watcher first", "put→seen p50 (the watcher opened the file first)"],
  ["p99 watcher first", "put→seen p99 (the watcher opened the file first)"],
] as const;

/** One run of the multi-process rows for one contestant, in `dir`. */
async function runProcesses(
  kind: "store" | "lmdb",
  dir: string,
): Promise<Map<string, number>> {
  const path = join(dir, kind === "lmdb" ? "lmdb" : "store.db");
  const name = kind === "lmdb" ? "lmdb-js" : "valkeyrie file: Store";
  const figures = new Map<string, number>();
  // The first child opens the file (for file:, it owns it); then the others.
  const first = await child(kind, path);
  const writers = [
    first,
    ...await Promise.all(
      Array.from({ length: PROCESSES - 1 }, () => child(kind, path)),
    ),
  ];
  const spans = await Promise.all(
    writers.map((w) => w.call("puts", { n: PROCESS_PUTS })),
  );
  // Clients first, so that no client takes the file over while closing.
  await Promise.all(writers.slice(1).map((w) => w.close()));
  await first.close();
  // From the first put issued to the last one resolved, on the system clock.
  const seconds = (Math.max(...spans.map((s) => s.end)) -
    Math.min(...spans.map((s) => s.start))) / 1000;
  figures.set("writers", PROCESSES * PROCESS_PUTS / seconds);
  console.error(
    `  ${name}: ${PROCESSES} writing processes: ${
      (PROCESSES * PROCESS_PUTS / seconds).toFixed(0)
    }/s`,
  );
  for (const writerFirst of [true, false]) {
    const latencyPath = `${path}-latency-${writerFirst}`;
    const a = await child(kind, latencyPath);
    const b = await child(kind, latencyPath);
    const [writer, watcher] = writerFirst ? [a, b] : [b, a];
    await watcher.call("watch", { n: LATENCY_PUTS });
    const samples: number[] = [];
    const puts: number[] = [];
    for (let id = 0; id < LATENCY_PUTS; id++) {
      const seen = watcher.seen(id);
      const { issued, resolved } = await writer.call("put", { id });
      samples.push(await seen - issued);
      puts.push(resolved - issued);
      await new Promise((r) => setTimeout(r, 1 + 2 * Math.random()));
    }
    await b.close();
    await a.close();
    samples.sort((x, y) => x - y);
    puts.sort((x, y) => x - y);
    const first = writerFirst ? "writer first" : "watcher first";
    figures.set(`p50 ${first}`, percentile(samples, 0.5));
    figures.set(`p99 ${first}`, percentile(samples, 0.99));
    console.error(
      `  ${name}: put→seen, ${first}: p50 ${
        percentile(samples, 0.5).toFixed(2)
      } ms, p99 ${
        percentile(samples, 0.99).toFixed(2)
      } ms (the put alone: p50 ${percentile(puts, 0.5).toFixed(2)} ms, p99 ${
        percentile(puts, 0.99).toFixed(2)
      } ms)`,
    );
  }
  return figures;
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
const processKinds = ["store", "lmdb"] as const;
const processRuns = new Map<string, Map<string, number>[]>();
for (let r = 0; PROCESS_ROWS && r < RUNS; r++) {
  for (let i = 0; i < processKinds.length; i++) {
    const kind = processKinds[(i + r) % processKinds.length];
    const dir = mkdtempSync(join(tmpdir(), "valkeyrie-bench-"));
    try {
      const list = processRuns.get(kind) ?? [];
      list.push(await runProcesses(kind, dir));
      processRuns.set(kind, list);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
  `| disk limit: ${SYNCS} overwrites of a 4 KiB page + fdatasync, beside the durable puts | ${
    names.map((name) => rate(results.get(name)!.get("sync limit"))).join(
      " | ",
    )
  } |`,
  `| a durable put's time ÷ that limit's (lower is better; 1.00 is the disk) | ${
    names.map((name) => {
      const m = results.get(name)!;
      return `${
        (m.get("sync limit")! / m.get("individual durable puts")!).toFixed(2)
      }×`;
    }).join(" | ")
  } |`,
  `| file after remove half and reload half ÷ file before remove half (open) | ${
    names.map((name) => {
      const m = results.get(name)!;
      return `${
        (m.get("size after reload")! / m.get("size before remove")!).toFixed(
          2,
        )
      }×`;
    }).join(" | ")
  } |`,
);
lines.push(
  `| engine memory (wasm linear memory) | ${
    names.map((name) => mib(results.get(name)!.get("memory"))).join(" | ")
  } |`,
);
if (names.length > 0) console.log(lines.join("\n") + "\n");
if (PROCESS_ROWS) {
  const figures = new Map(
    processKinds.map((kind) => {
      const all = processRuns.get(kind)!;
      return [
        kind,
        new Map(
          [...all[0].keys()].map((row) => [
            row,
            median(all.map((m) => m.get(row)!)),
          ]),
        ),
      ];
    }),
  );
  const ms = (n: number) =>
    n >= 10 ? `${n.toFixed(0)} ms` : `${n.toFixed(2)} ms`;
  const table = [
    "| many processes, one file | valkeyrie file: Store | lmdb-js |",
    "|---|---|---|",
  ];
  for (const [row, what] of PROCESS_TABLE) {
    const ours = figures.get("store")!.get(row)!;
    const theirs = figures.get("lmdb")!.get(row)!;
    const latency = row !== "writers";
    table.push(
      `| ${what} | ${(latency ? ms : rate)(ours)} (${
        (ours / theirs).toFixed(2)
      }×) | ${(latency ? ms : rate)(theirs)} (1.00×)${latency ? "*" : ""} |`,
    );
  }
  console.log(table.join("\n"));
  console.log(
    `\nEach process a child of this one, in the same runtime. Writing processes: ${
      PROCESSES * PROCESS_PUTS
    } puts over the span from the first one issued to the last one resolved. put→seen: ${LATENCY_PUTS} puts one at a time, each from its issue in one process to its value seen in another (times on each process's system clock); for file: the process that opened the file first owns it, the other is its client. file: the reader is a \`watch\`; *lmdb-js has no change notification across processes: its reader re-reads the key in a tight loop (a fresh read transaction each time), keeping a core busy. Ratios are against lmdb-js (higher is better for the rate, lower for latencies).\n`,
  );
}
console.log(
  `Medians of ${RUNS} runs. Ratios are against lmdb-js (higher is better for rates, lower for size). Runtime: ${
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
