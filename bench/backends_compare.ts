/**
 * What the abstraction costs: each network backend against its real local
 * server, the same operations through our `Store` and through the raw npm
 * client (written as a good user would), in one run, in alternating rounds.
 *
 * Operations: get and put of a 100-byte value with 1 and 64 callers at once,
 * a list of 100 keys, a compare-and-set round trip, and the latency from a
 * put to its watch event. Prints rates and the ratio ours/raw, and writes
 * the results as JSON (`scripts/bench_chart.ts` draws them).
 *
 * Run:
 *   deno run -A bench/backends_compare.ts [--backends redis,etcd,...]
 *     [--duration 1000] [--rounds 5] [--warmup 500] [--watch-samples 100]
 *     [--ops get,put,list,cas,watch] [--out bench/results/compare.json]
 *
 * It starts its own servers on loopback (tests/services/*): export
 * VALKEYRIE_SERVICES_DIR=$(mktemp -d) so their pid files are this run's.
 *
 * @module
 */

import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import {
  compare,
  type Comparison,
  type WatchComparison,
} from "./compare/measure.ts";
import type { Side, Target } from "./compare/side.ts";
import { watchLatency } from "./compare/watch_latency.ts";
import { TARGETS } from "./compare/targets.ts";

/** The size of every value written, as the issue asks. */
const VALUE_BYTES = 100;
/** Callers at once in the concurrent runs. */
const CONCURRENCY = 64;
/** Keys in the listed tree. */
const LIST_KEYS = 100;

/**
 * Watch samples of DynamoDB: its events come from polling the table's
 * stream (every 500 ms on both sides), so each sample takes about that long.
 */
const DYNAMODB_WATCH_SAMPLES = 40;

/** Both sides poll DynamoDB's stream this often (our store's default). */
const STREAM_POLL_MS = 500;

/** Pause between watch samples of isolated changes, in ms (from, to). */
const WATCH_GAP_MS: [number, number] = [50, 100];

/** Pause between watch samples of a churning key, in ms (from, to). */
const BURST_GAP_MS: [number, number] = [0, 5];

const { values: flags } = parseArgs({
  args: process.argv.slice(2),
  options: {
    backends: { type: "string", default: Object.keys(TARGETS).join(",") },
    ops: { type: "string", default: "get,put,list,cas,watch" },
    duration: { type: "string", default: "1000" },
    rounds: { type: "string", default: "5" },
    warmup: { type: "string", default: "500" },
    "watch-samples": { type: "string", default: "100" },
    out: { type: "string", default: "bench/results/compare.json" },
  },
});

const backends = flags.backends.split(",").filter(Boolean);
for (const name of backends) {
  if (!TARGETS[name]) {
    throw new Error(
      `Unknown backend ${name} (${Object.keys(TARGETS).join(", ")})`,
    );
  }
}
const ops = new Set(flags.ops.split(","));
const settings = {
  durationMs: Number(flags.duration),
  rounds: Number(flags.rounds),
  warmupMs: Number(flags.warmup),
};

interface BackendResult {
  about: Record<string, string>;
  ops: Record<string, Comparison>;
  watch?: WatchComparison;
  watchBurst?: WatchComparison;
  error?: string;
}

const results: Record<string, BackendResult> = {};
const startedAt = new Date();
const loadBefore = loadavg();

for (const name of backends) {
  console.log(`\n== ${name}`);
  try {
    const target = await TARGETS[name]();
    try {
      results[name] = await measureBackend(target);
    } finally {
      await target.close();
    }
  } catch (error) {
    // One backend failing says so and leaves the others to run.
    console.error(`${name} failed:`, error);
    results[name] = { about: {}, ops: {}, error: String(error) };
  }
  await save();
}
console.log(`\nWrote ${flags.out}`);
// Clients that keep sockets or timers around must not keep the run open.
process.exit(0);

async function measureBackend(target: Target): Promise<BackendResult> {
  const result: BackendResult = { about: target.about, ops: {} };
  const value = crypto.getRandomValues(new Uint8Array(VALUE_BYTES));
  const sides = { ours: target.ours, raw: target.raw };
  const key = (side: "ours" | "raw", path: string) =>
    `${target.keys[side]}/${path}`;
  const run = async (
    label: string,
    workers: number,
    op: (side: Side, base: (path: string) => string, worker: number) => Promise<
      unknown
    >,
  ) => {
    const comparison = await compare(
      (w) => op(sides.ours, (p) => key("ours", p), w),
      (w) => op(sides.raw, (p) => key("raw", p), w),
      { workers, ...settings },
    );
    result.ops[label] = comparison;
    print(target.backend, label, comparison);
  };

  if (ops.has("get")) {
    for (const side of ["ours", "raw"] as const) {
      for (let w = 0; w < CONCURRENCY; w++) {
        await sides[side].put(key(side, `get/${w}`), value);
      }
    }
    await run("get c1", 1, (s, k) => s.get(k("get/0")));
    await run("get c64", CONCURRENCY, (s, k, w) => s.get(k(`get/${w}`)));
  }
  if (ops.has("put")) {
    await run("put c1", 1, (s, k) => s.put(k("put/0"), value));
    await run(
      "put c64",
      CONCURRENCY,
      (s, k, w) => s.put(k(`put/${w}`), value),
    );
  }
  if (ops.has("list")) {
    for (const side of ["ours", "raw"] as const) {
      for (let i = 0; i < LIST_KEYS; i++) {
        const name = `list/k${String(i).padStart(3, "0")}`;
        await sides[side].put(key(side, name), value);
      }
      const found = await sides[side].list(key(side, "list"));
      if (found !== LIST_KEYS) {
        throw new Error(`${side} list found ${found} keys, not ${LIST_KEYS}`);
      }
    }
    await run("list 100", 1, (s, k) => s.list(k("list")));
  }
  if (ops.has("cas")) {
    const loops = {
      ours: await sides.ours.cas(key("ours", "cas"), value),
      raw: await sides.raw.cas(key("raw", "cas"), value),
    };
    const comparison = await compare(loops.ours, loops.raw, {
      workers: 1,
      ...settings,
    });
    result.ops["cas c1"] = comparison;
    print(target.backend, "cas c1", comparison);
  }
  if (ops.has("watch")) {
    const slow = target.backend === "dynamodb";
    const samples = slow
      ? Math.min(DYNAMODB_WATCH_SAMPLES, Number(flags["watch-samples"]))
      : Number(flags["watch-samples"]);
    const watch = (gapMs: [number, number]) =>
      watchLatency(
        sides,
        { ours: key("ours", "watch"), raw: key("raw", "watch") },
        {
          samples,
          gapMs,
          timeoutMs: slow ? 10_000 : 5_000,
          valueBytes: VALUE_BYTES,
        },
      );
    // Isolated changes, the case a watch latency is about: each key changes
    // every 100-200 ms (the sides alternate).
    result.watch = await watch(slow ? [0, STREAM_POLL_MS] : WATCH_GAP_MS);
    printWatch(target.backend, "watch", result.watch);
    // A key changing every few milliseconds: what watches that fold or
    // rate-limit (Consul's blocking queries) do under churn.
    if (!slow) {
      result.watchBurst = await watch(BURST_GAP_MS);
      printWatch(target.backend, "burst", result.watchBurst);
    }
  }
  return result;
}

function printWatch(backend: string, label: string, w: WatchComparison) {
  console.log(
    `${pad(backend, 10)}${pad(label, 10)}` +
      `ours p50 ${ms(w.ours.p50)} p99 ${ms(w.ours.p99)}   ` +
      `raw p50 ${ms(w.raw.p50)} p99 ${ms(w.raw.p99)}   ` +
      `ours-raw p50 ${ms(w.ours.p50 - w.raw.p50)}` +
      (w.ours.lost + w.raw.lost > 0
        ? `   lost ours ${w.ours.lost} raw ${w.raw.lost}`
        : ""),
  );
}

function print(backend: string, label: string, c: Comparison): void {
  const median = (runs: { rate: number; p50: number }[], f: "rate" | "p50") =>
    [...runs.map((r) => r[f])].sort((a, b) => a - b)[runs.length >> 1];
  console.log(
    `${pad(backend, 10)}${pad(label, 10)}` +
      `ours ${rate(median(c.ours, "rate"))} p50 ${
        ms(median(c.ours, "p50"))
      }   ` +
      `raw ${rate(median(c.raw, "rate"))} p50 ${ms(median(c.raw, "p50"))}   ` +
      `ours/raw ${c.rateRatio.median.toFixed(3)} ` +
      `(${c.rateRatio.min.toFixed(3)}-${c.rateRatio.max.toFixed(3)})`,
  );
}

function pad(text: string, width: number): string {
  return text.padEnd(width);
}

function rate(perSecond: number): string {
  return `${Math.round(perSecond).toLocaleString("en-US")}/s`.padStart(9);
}

function ms(value: number): string {
  return `${value.toFixed(value < 10 ? 3 : 1)} ms`;
}

async function save(): Promise<void> {
  const cpuList = cpus();
  const report = {
    startedAt: startedAt.toISOString(),
    machine: {
      cpus: cpuList.length,
      cpuModel: cpuList[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      loadBefore,
      loadAfter: loadavg(),
      note:
        "shared machine: other workers build and test at the same time, so rates are noisy; ratios are paired by round",
    },
    runtime: runtimeName(),
    settings: {
      ...settings,
      valueBytes: VALUE_BYTES,
      concurrency: CONCURRENCY,
      listKeys: LIST_KEYS,
      watchSamples: Number(flags["watch-samples"]),
    },
    backends: results,
  };
  await mkdir(dirname(flags.out), { recursive: true });
  await writeFile(flags.out, JSON.stringify(report, null, 2) + "\n");
}

function runtimeName(): string {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.deno) return `Deno ${versions.deno}`;
  if (versions.bun) return `Bun ${versions.bun}`;
  return `Node ${process.version}`;
}
