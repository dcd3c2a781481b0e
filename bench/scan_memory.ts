/**
 * Client memory while reading a large tree: `list` (one array) against
 * `scan` (one page at a time), through the public API, on the stores given.
 *
 *     deno run -A --v8-flags=--expose-gc bench/scan_memory.ts \
 *       [--keys N] [--batch-size N] [--store URL ...]
 *       [--backends redis,etcd,zookeeper,consul,dynamodb]
 *
 * Defaults: 200,000 keys of 100-byte values on `memory:` and a fresh
 * `file:` in a temporary folder. `--backends` adds network backends, each
 * on a server it starts on loopback (tests/services/*; export
 * VALKEYRIE_SERVICES_DIR=$(mktemp -d) so their pid files are this run's). For each store it loads the keys with
 * `putMany`, then reads them all with `list` and with `scan` (batchSize
 * 256, or --batch-size), sampling the live JavaScript heap (after a collection) every 10,000
 * pairs; it prints the peak growth over the heap before the read, and the
 * time (which includes those collections). The scan
 * keeps no pair it has passed. This is a benchmark, not a test: it asserts
 * nothing, it prints a table.
 *
 * A backend whose scan has no native page (see its docs page) lists the
 * whole tree for each page; its scan column then grows like `list`, which
 * is what this benchmark is for.
 *
 * @module
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { openStore, type Store } from "../mod.ts";
import { TARGETS } from "./compare/targets.ts";

const { values } = parseArgs({
  options: {
    keys: { type: "string", default: "200000" },
    "batch-size": { type: "string", default: "256" },
    store: { type: "string", multiple: true },
    backends: { type: "string", default: "" },
  },
});
const KEYS = Number(values.keys);
const BATCH = Number(values["batch-size"]);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error("run with --v8-flags=--expose-gc (deno) or --expose-gc (node)");
  process.exit(2);
}

const MiB = 1024 * 1024;
const VALUE = "v".repeat(100);

function heap(): number {
  return process.memoryUsage().heapUsed;
}

async function load(store: Store): Promise<void> {
  const chunk = 5_000;
  for (let i = 0; i < KEYS; i += chunk) {
    const entries = [];
    for (let j = i; j < Math.min(KEYS, i + chunk); j++) {
      entries.push({ key: `t/${String(j).padStart(8, "0")}`, value: VALUE });
    }
    await store.putMany(entries);
  }
}

async function measure(
  read: (sample: () => void) => Promise<number>,
): Promise<{ peakMiB: number; ms: number; pairs: number }> {
  gc!();
  const before = heap();
  let peak = before;
  // Live memory, not garbage: collect before each sample.
  const sample = () => {
    gc!();
    const now = heap();
    if (now > peak) peak = now;
  };
  const started = performance.now();
  const pairs = await read(sample);
  return {
    peakMiB: (peak - before) / MiB,
    ms: performance.now() - started,
    pairs,
  };
}

const dir = mkdtempSync(join(tmpdir(), "valkeyrie-scan-bench-"));
const backends = values.backends ? values.backends.split(",") : [];
const urls = values.store ??
  (backends.length ? [] : ["memory:", `file:${join(dir, "scan.db")}`]);
/** A store to measure and how to let it go. */
const subjects: (() => Promise<{ store: Store; close(): Promise<void> }>)[] = [
  ...urls.map((url) => async () => {
    const store = await openStore(url, { prefix: "scan-bench" });
    return { store, close: () => store.close() };
  }),
  ...backends.map((name) => async () => {
    const target = TARGETS[name];
    if (!target) throw new Error(`no backend ${name}`);
    const { store, close } = await target();
    return { store, close };
  }),
];
const rows: string[][] = [];
try {
  for (const open of subjects) {
    const { store, close } = await open();
    try {
      await store.deleteTree("t");
      await load(store);
      const list = await measure(async (sample) => {
        const pairs = await store.list("t");
        sample();
        return pairs.length;
      });
      const scan = await measure(async (sample) => {
        let n = 0;
        for await (const _ of store.scan("t", { batchSize: BATCH })) {
          if (++n % 10_000 === 0) sample();
        }
        return n;
      });
      rows.push([
        store.backend,
        String(list.pairs),
        list.peakMiB.toFixed(1),
        scan.peakMiB.toFixed(1),
        (list.ms / 1000).toFixed(2),
        (scan.ms / 1000).toFixed(2),
      ]);
      await store.deleteTree("t");
    } finally {
      await close();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const header = [
  "store",
  "pairs",
  "list heap MiB",
  "scan heap MiB",
  "list s",
  "scan s",
];
console.log(`| ${header.join(" | ")} |`);
console.log(`| ${header.map(() => "---").join(" | ")} |`);
for (const row of rows) console.log(`| ${row.join(" | ")} |`);
