/**
 * The second wave's promise that cost stays flat as data grows, measured
 * through the public API, side by side in one run:
 *
 * - **events**: the cost of one change heard through `watchTree` (a whole
 *   snapshot per change) and through `watchEvents` (one event), on trees of
 *   1,000, 10,000 and 100,000 keys: the time from a `put` resolving until
 *   the reader has the change in hand, and the CPU time of that wait. On a
 *   local store the change is often queued before `put` resolves, so the
 *   time is the cost of producing and reading it. `watchTree`'s
 *   grows with the tree; `watchEvents`' should not.
 * - **bulk**: `getMany` of 100 keys against 100 sequential `get`s, and
 *   `putMany` of 100 against 100 sequential `put`s: round trips saved.
 * - **cache**: `get` throughput with `cacheReads` (`consistent: false`)
 *   against the raw client's `get` (network backends) and our plain `get`,
 *   and the staleness a cached reader sees: from a `put` resolving until a
 *   cached `get` returns it (p50, p99).
 *
 * Run:
 *   deno run -A bench/api_scale.ts [--parts events,bulk]
 *     [--backends memory,file,redis,etcd,zookeeper,consul,dynamodb]
 *     [--sizes 1000,10000,100000] [--changes 30] [--rounds 5]
 *
 * Network backends start their own servers on loopback (tests/services/*):
 * export VALKEYRIE_SERVICES_DIR=$(mktemp -d) so their pid files are this
 * run's. This is a benchmark, not a test: it asserts nothing, it prints
 * tables (medians of the samples; min and max beside the ratio).
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
    parts: { type: "string", default: "events,bulk,cache" },
    backends: {
      type: "string",
      default: "memory,file,redis,etcd,zookeeper,consul,dynamodb",
    },
    sizes: { type: "string", default: "1000,10000,100000" },
    changes: { type: "string", default: "30" },
    rounds: { type: "string", default: "5" },
  },
});
const parts = new Set(values.parts.split(","));
const sizes = values.sizes.split(",").map(Number);
const CHANGES = Number(values.changes);
const ROUNDS = Number(values.rounds);
const VALUE = "v".repeat(100);

/** A store to measure and how to let it go. */
interface Subject {
  backend: string;
  store: Store;
  /** The raw client's get, on network backends. */
  rawGet?: (key: string) => Promise<unknown>;
  /** Where the raw side keeps its keys. */
  rawKey?: (key: string) => string;
  rawPut?: (key: string, value: Uint8Array) => Promise<unknown>;
  close(): Promise<void>;
}

async function subject(backend: string): Promise<Subject> {
  if (backend === "memory") {
    const store = await openStore(`memory:api-scale-${Date.now()}`);
    return { backend, store, close: () => store.close() };
  }
  if (backend === "file") {
    const dir = mkdtempSync(join(tmpdir(), "api-scale-"));
    const store = await openStore(`file:${join(dir, "bench.db")}`);
    return {
      backend,
      store,
      close: async () => {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const target = await TARGETS[backend]();
  return {
    backend,
    store: target.store,
    rawGet: (key) => target.raw.get(key),
    rawPut: (key, value) => target.raw.put(key, value),
    rawKey: (key) => `${target.keys.raw}/${key}`,
    close: () => target.close(),
  };
}

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function ms(value: number): string {
  return value < 10 ? value.toFixed(2) : value.toFixed(1);
}

/** Writes `count` keys under `dir` with putMany, in chunks. */
async function load(store: Store, dir: string, count: number): Promise<void> {
  const chunk = 1_000;
  for (let i = 0; i < count; i += chunk) {
    const entries = [];
    for (let j = i; j < Math.min(count, i + chunk); j++) {
      entries.push({
        key: `${dir}/${String(j).padStart(7, "0")}`,
        value: VALUE,
      });
    }
    await store.putMany(entries);
  }
}

/**
 * Per-change latency and reader CPU of a watch: `until` reads the stream
 * until the change with `marker` has arrived.
 */
async function perChange(
  store: Store,
  key: string,
  open: () => ReadableStream<unknown>,
  arrived: (chunk: unknown, marker: string) => boolean,
): Promise<{ latency: number; cpu: number }> {
  const reader = open().getReader();
  // The first state (the whole tree) is not a change.
  const first = await reader.read();
  if (first.done) throw new Error("the watch ended at once");
  if (typeof first.value === "object" && first.value && "type" in first.value) {
    // watchEvents: read up to the first synced.
    let chunk = first.value as { type: string };
    while (chunk.type !== "synced") {
      chunk = (await reader.read()).value as { type: string };
    }
  }
  const latencies: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const marker = `change-${i}-${Math.random()}`;
    await store.put(key, marker);
    const wrote = performance.now();
    const cpuBefore = process.cpuUsage();
    while (true) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the watch ended");
      if (arrived(value, marker)) break;
    }
    latencies.push(performance.now() - wrote);
    const cpu = process.cpuUsage(cpuBefore);
    cpus.push((cpu.user + cpu.system) / 1000);
  }
  await reader.cancel();
  return { latency: median(latencies), cpu: median(cpus) };
}

const decoder = new TextDecoder();

async function eventsPart(s: Subject): Promise<void> {
  console.log(`\n## ${s.backend}: one change heard, watchTree vs watchEvents`);
  console.log(
    "| keys | watchTree ms | watchEvents ms | ratio | watchTree CPU ms | watchEvents CPU ms |",
  );
  console.log("| ---: | ---: | ---: | ---: | ---: | ---: |");
  const dir = `scale-${Date.now()}`;
  for (const size of sizes) {
    await load(s.store, dir, size).catch((error) => {
      throw new Error(`loading ${size} keys: ${error.message}`);
    });
    const key = `${dir}/0000000`;
    const tree = await perChange(
      s.store,
      key,
      () => s.store.watchTree(dir),
      (chunk, marker) =>
        (chunk as { key: string; value: Uint8Array }[]).some((pair) =>
          pair.key === key && decoder.decode(pair.value) === marker
        ),
    );
    const events = await perChange(
      s.store,
      key,
      () => s.store.watchEvents(dir),
      (chunk, marker) => {
        const event = chunk as { type: string; pair?: { value: Uint8Array } };
        return event.type === "put" &&
          decoder.decode(event.pair!.value) === marker;
      },
    );
    console.log(
      `| ${size.toLocaleString("en")} | ${ms(tree.latency)} | ${
        ms(events.latency)
      } | ${(tree.latency / events.latency).toFixed(1)}× | ${ms(tree.cpu)} | ${
        ms(events.cpu)
      } |`,
    );
  }
  await s.store.deleteTree(dir);
}

async function bulkPart(s: Subject): Promise<void> {
  const dir = `bulk-${Date.now()}`;
  const keys = Array.from({ length: 100 }, (_, i) => `${dir}/${i}`);
  await s.store.putMany(keys.map((key) => ({ key, value: VALUE })));
  const time = async (fn: () => Promise<unknown>) => {
    const samples: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const started = performance.now();
      await fn();
      samples.push(performance.now() - started);
    }
    return samples;
  };
  const rows: [string, number[], number[]][] = [];
  rows.push([
    "get ×100",
    await time(async () => {
      for (const key of keys) await s.store.get(key);
    }),
    await time(() => s.store.getMany(keys)),
  ]);
  rows.push([
    "put ×100",
    await time(async () => {
      for (const key of keys) await s.store.put(key, VALUE);
    }),
    await time(() =>
      s.store.putMany(keys.map((key) => ({ key, value: VALUE })))
    ),
  ]);
  console.log(`\n## ${s.backend}: 100 keys, one at a time vs one bulk call`);
  console.log("| call | sequential ms | bulk ms | speed-up (min–max) |");
  console.log("| --- | ---: | ---: | ---: |");
  for (const [name, one, bulk] of rows) {
    const m = median(one) / median(bulk);
    const low = Math.min(...one) / Math.max(...bulk);
    const high = Math.max(...one) / Math.min(...bulk);
    console.log(
      `| ${name} | ${ms(median(one))} | ${ms(median(bulk))} | ${
        m.toFixed(1)
      }× (${low.toFixed(1)}–${high.toFixed(1)}) |`,
    );
  }
  await s.store.deleteMany(keys);
}

/** Gets per second over `ms` milliseconds, one caller. */
async function rate(get: () => Promise<unknown>, ms = 1_000): Promise<number> {
  let count = 0;
  const started = performance.now();
  while (performance.now() - started < ms) {
    await get();
    count++;
  }
  return count / ((performance.now() - started) / 1000);
}

async function cachePart(s: Subject): Promise<void> {
  const dir = `cache-${Date.now()}`;
  const key = `${dir}/k`;
  await s.store.put(key, VALUE);
  await using _cache = await s.store.cacheReads(dir);
  const fast = { consistent: false };
  const rows: [string, number][] = [];
  rows.push(["our get, cached", await rate(() => s.store.get(key, fast))]);
  rows.push(["our get", await rate(() => s.store.get(key))]);
  if (s.rawGet) {
    const raw = s.rawKey!(key);
    await s.rawPut!(raw, new TextEncoder().encode(VALUE));
    rows.push(["raw client get", await rate(() => s.rawGet!(raw))]);
  }
  const stale: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const marker = `v${i}-${Math.random()}`;
    await s.store.put(key, marker);
    const wrote = performance.now();
    while (decoder.decode((await s.store.get(key, fast))!.value) !== marker) {
      // Let the feed's event in.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    stale.push(performance.now() - wrote);
  }
  stale.sort((a, b) => a - b);
  const cached = rows[0][1];
  console.log(`\n## ${s.backend}: reads from the cache kept by the feed`);
  console.log("| get | per second | cached is |");
  console.log("| --- | ---: | ---: |");
  for (const [name, perSecond] of rows) {
    console.log(
      `| ${name} | ${Math.round(perSecond).toLocaleString("en")} | ${
        (cached / perSecond).toFixed(1)
      }× |`,
    );
  }
  console.log(
    `staleness (put resolved → cached get sees it), ${CHANGES} writes: p50 ${
      ms(median(stale))
    } ms, p99 ${
      ms(stale[Math.min(stale.length - 1, Math.floor(stale.length * 0.99))])
    } ms`,
  );
  await s.store.delete(key);
}

console.log(
  `api_scale: ${
    new Date().toISOString()
  }, sizes ${sizes}, ${CHANGES} changes, ${ROUNDS} rounds, ${process.version}`,
);
for (const backend of values.backends.split(",")) {
  let s: Subject;
  try {
    s = await subject(backend);
  } catch (error) {
    console.log(`\n## ${backend}: not measured (${(error as Error).message})`);
    continue;
  }
  try {
    if (parts.has("bulk")) await bulkPart(s);
    if (parts.has("cache")) await cachePart(s);
    if (parts.has("events")) await eventsPart(s);
  } catch (error) {
    console.log(`\n${backend} failed: ${(error as Error).stack}`);
  } finally {
    await s.close();
  }
}
