// Micro-benchmarks of core's hot paths: key checks, ordering, and a
// memory-store round trip (the cost of the abstraction without I/O).
//
// Run: deno bench -A bench/core_bench.ts
import { compareKeys, normalizeKey } from "../core/keys.ts";
import { MemoryStore } from "../backends/memory/mod.ts";

const KEY = "services/web/instances/10.0.0.17:8080/health";
const keys = Array.from(
  { length: 1000 },
  (_, i) => `app/k${(i * 7919) % 1000}/v`,
);

Deno.bench("normalizeKey (47-byte key)", () => {
  normalizeKey(KEY, 4096);
});

Deno.bench("normalizeKey (leading and trailing slash)", () => {
  normalizeKey(`/${KEY}/`, 4096);
});

Deno.bench("sort 1000 keys with compareKeys", () => {
  [...keys].sort(compareKeys);
});

const store = new MemoryStore();
const value = new Uint8Array(100);
await store.put(KEY, value);

Deno.bench("memory put (100 bytes)", async () => {
  await store.put(KEY, value);
});

Deno.bench("memory get", async () => {
  await store.get(KEY);
});
