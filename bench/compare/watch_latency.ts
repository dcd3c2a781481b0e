/**
 * Put-to-event latency of watches: each side watches a key of its own and
 * writes it through its own client; a sample is the time from issuing the
 * put to the watch handing over the new value. Samples alternate between
 * the sides, with a random pause in between so that no side's polling or
 * batching falls into step with the writes.
 *
 * @module
 */

import { percentile, type WatchComparison } from "./measure.ts";
import type { Side } from "./side.ts";

/** Options of {@linkcode watchLatency}. */
export interface WatchLatencyOptions {
  /** Samples per side. */
  samples: number;
  /** The random pause between samples, in milliseconds: from, to. */
  gapMs: [number, number];
  /** A sample whose event has not come by then is counted lost. */
  timeoutMs: number;
  /** The value size (the first 8 bytes carry the sample's number). */
  valueBytes: number;
}

/** Measures both sides, alternating; see the module doc. */
export async function watchLatency(
  sides: { ours: Side; raw: Side },
  keys: { ours: string; raw: string },
  options: WatchLatencyOptions,
): Promise<WatchComparison> {
  const names = ["ours", "raw"] as const;
  const waiting: Record<string, { id: number; done: () => void } | undefined> =
    {};
  const stops: Array<() => Promise<void>> = [];
  for (const name of names) {
    stops.push(
      await sides[name].watch(keys[name], (value) => {
        const wait = waiting[name];
        if (wait && sampleId(value) === wait.id) wait.done();
      }),
    );
  }
  const latencies: Record<string, number[]> = { ours: [], raw: [] };
  const lost: Record<string, number> = { ours: 0, raw: 0 };
  try {
    for (let i = 0; i < 2 * options.samples; i++) {
      const name = names[i % 2];
      const id = i + 1;
      const value = new Uint8Array(options.valueBytes);
      new DataView(value.buffer).setFloat64(0, id);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const t0 = performance.now();
      const arrived = new Promise<boolean>((resolve) => {
        waiting[name] = { id, done: () => resolve(true) };
        timer = setTimeout(() => resolve(false), options.timeoutMs);
      });
      await sides[name].put(keys[name], value);
      const ok = await arrived;
      const elapsed = performance.now() - t0;
      clearTimeout(timer);
      waiting[name] = undefined;
      if (ok) latencies[name].push(elapsed);
      else lost[name]++;
      const [least, most] = options.gapMs;
      await new Promise((r) =>
        setTimeout(r, least + Math.random() * (most - least))
      );
    }
  } finally {
    for (const stop of stops) await stop();
  }
  const summary = (name: string) => {
    const sorted = latencies[name].sort((a, b) => a - b);
    return {
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      samples: sorted.length,
      lost: lost[name],
    };
  };
  return { ours: summary("ours"), raw: summary("raw") };
}

function sampleId(value: Uint8Array): number {
  if (value.byteLength < 8) return -1;
  return new DataView(value.buffer, value.byteOffset, 8).getFloat64(0);
}
