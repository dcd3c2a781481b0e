// Micro-benchmarks of core's hot paths: key checks and ordering, value
// encoding, watch snapshots, and what BaseStore adds over a driver (on the
// memory backend, so no I/O hides it).
//
// Run: deno bench -A bench/core_bench.ts
import { compareKeys, normalizeKey, normalizePrefix } from "../core/keys.ts";
import { toBytes } from "../core/values.ts";
import { KeyWatch, TreeWatch, type WatchSetup } from "../core/watch.ts";
import type { Entry } from "../core/driver.ts";
import type { KVPair } from "../core/types.ts";
import { MemoryStore } from "../backends/memory/mod.ts";
import { MemoryDriver } from "../backends/memory/driver.ts";

const KEY = "services/web/instances/10.0.0.17:8080/health";
const UNICODE_KEY = "服务/网络/实例/10.0.0.17:8080/健康状况/😀";
const keys = Array.from(
  { length: 1000 },
  (_, i) => `app/k${(i * 7919) % 1000}/v`,
);

// --- keys

Deno.bench("normalizeKey (47-byte key)", { group: "keys" }, () => {
  normalizeKey(KEY, 4096);
});

Deno.bench("normalizeKey (leading and trailing slash)", {
  group: "keys",
}, () => {
  normalizeKey(`/${KEY}/`, 4096);
});

Deno.bench("normalizeKey (CJK and an emoji)", { group: "keys" }, () => {
  normalizeKey(UNICODE_KEY, 4096);
});

Deno.bench("normalizePrefix (root)", { group: "keys" }, () => {
  normalizePrefix("/", 4096);
});

Deno.bench("sort 1000 keys with compareKeys", () => {
  [...keys].sort(compareKeys);
});

// --- values

const bytes100 = new Uint8Array(100);
const text100 = "x".repeat(100);
const text64k = "é".repeat(32 * 1024);

Deno.bench("toBytes (100-byte Uint8Array: a copy)", {
  group: "values",
  baseline: true,
}, () => {
  toBytes(KEY, bytes100, 1 << 24);
});

Deno.bench("toBytes (100-char string: UTF-8)", { group: "values" }, () => {
  toBytes(KEY, text100, 1 << 24);
});

Deno.bench("toBytes (64 KiB string of 2-byte chars)", {
  group: "values",
}, () => {
  toBytes(KEY, text64k, 1 << 24);
});

// --- watch snapshots: a change in a tree of 1000 keys, handed to a reader

function setup(): WatchSetup {
  return {
    toPair: (entry: Entry): KVPair => ({
      key: entry.key,
      value: entry.value,
      lastIndex: entry.lastIndex,
    }),
    userKey: (full: string): string => full,
    wrapError: (error) => error,
    onEnd: () => {},
  };
}

const tree = new TreeWatch(setup());
const treeReader = tree.stream.getReader();
let revision = 1n;
tree.reset(keys.map((key) => ({ key, value: bytes100, lastIndex: revision })));
await treeReader.read();

Deno.bench("tree watch: one put, snapshot of 1000 keys", {
  group: "watch",
}, async () => {
  tree.put({ key: keys[500], value: bytes100, lastIndex: ++revision });
  await treeReader.read();
});

const tree10 = new TreeWatch(setup());
const tree10Reader = tree10.stream.getReader();
tree10.reset(
  keys.slice(0, 10).map((key) => ({ key, value: bytes100, lastIndex: 1n })),
);
await tree10Reader.read();

Deno.bench("tree watch: one put, snapshot of 10 keys", {
  group: "watch",
}, async () => {
  tree10.put({ key: keys[5], value: bytes100, lastIndex: ++revision });
  await tree10Reader.read();
});

const keyWatch = new KeyWatch(setup());
const keyReader = keyWatch.stream.getReader();

Deno.bench("key watch: one state, one chunk", {
  group: "watch",
  baseline: true,
}, async () => {
  keyWatch.state({ key: KEY, value: bytes100, lastIndex: ++revision });
  await keyReader.read();
});

// --- BaseStore over the memory driver: the cost of the abstraction

const driver = new MemoryDriver("core-bench-driver");
const store = new MemoryStore();
const readOptions = { consistent: true };
await driver.put(KEY, bytes100, {});
await store.put(KEY, bytes100);

Deno.bench("memory driver get (no BaseStore)", {
  group: "get",
  baseline: true,
}, async () => {
  await driver.get(KEY, readOptions);
});

Deno.bench("memory store get (through BaseStore)", {
  group: "get",
}, async () => {
  await store.get(KEY);
});

Deno.bench("memory driver put (no BaseStore)", {
  group: "put",
  baseline: true,
}, async () => {
  await driver.put(KEY, bytes100, {});
});

Deno.bench("memory store put (100 bytes, through BaseStore)", {
  group: "put",
}, async () => {
  await store.put(KEY, bytes100);
});

const signal = new AbortController().signal;
Deno.bench("memory store get with a signal", { group: "get" }, async () => {
  await store.get(KEY, { signal });
});
