/**
 * Timing for the comparative benchmark: closed-loop workers for a fixed
 * time, latency percentiles, and the paired ratio of two sides measured in
 * alternating rounds.
 *
 * @module
 */

/** What one side did in one timed run. */
export interface RunResult {
  /** Operations per second over the run. */
  rate: number;
  /** Latency percentiles of single operations, in milliseconds. */
  p50: number;
  p99: number;
  /** Operations completed. */
  count: number;
}

/**
 * Runs `workers` loops of `op` for `durationMs` (each worker waits for its
 * operation before starting the next: a closed loop, as an application
 * awaiting its calls does) and times every operation.
 */
export async function timed(
  op: (worker: number) => Promise<unknown>,
  workers: number,
  durationMs: number,
): Promise<RunResult> {
  const latencies: number[] = [];
  const start = performance.now();
  const end = start + durationMs;
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      while (performance.now() < end) {
        const t0 = performance.now();
        await op(worker);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = performance.now() - start;
  latencies.sort((a, b) => a - b);
  return {
    rate: latencies.length / (elapsed / 1000),
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    count: latencies.length,
  };
}

/** The `q` quantile of sorted numbers (nearest rank); NaN when empty. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1);
  return sorted[Math.max(0, rank)];
}

/** The median of numbers (not necessarily sorted). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? sorted[mid]
    : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A ratio's median over rounds, with its smallest and largest round. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** The median, minimum and maximum of `values`. */
export function spread(values: readonly number[]): Spread {
  return {
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
  };
}

/** Both sides of one operation, round by round. */
export interface Comparison {
  ours: RunResult[];
  raw: RunResult[];
  /** ours/raw throughput, paired by round: 1 is parity, below is slower. */
  rateRatio: Spread;
  /** ours/raw median latency, paired by round: 1 is parity, above is slower. */
  p50Ratio: Spread;
}

/**
 * Measures `ours` and `raw` in `rounds` alternating rounds (ours first in
 * even rounds, raw first in odd ones), so that machine noise, which comes
 * and goes, hits both sides alike; each side warms up before the first
 * round.
 */
export async function compare(
  ours: (worker: number) => Promise<unknown>,
  raw: (worker: number) => Promise<unknown>,
  options: {
    workers: number;
    durationMs: number;
    rounds: number;
    warmupMs: number;
  },
): Promise<Comparison> {
  const { workers, durationMs, rounds, warmupMs } = options;
  await timed(ours, workers, warmupMs);
  await timed(raw, workers, warmupMs);
  const result: Comparison = {
    ours: [],
    raw: [],
    rateRatio: { median: NaN, min: NaN, max: NaN },
    p50Ratio: { median: NaN, min: NaN, max: NaN },
  };
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      result.ours.push(await timed(ours, workers, durationMs));
      result.raw.push(await timed(raw, workers, durationMs));
    } else {
      result.raw.push(await timed(raw, workers, durationMs));
      result.ours.push(await timed(ours, workers, durationMs));
    }
  }
  result.rateRatio = spread(
    result.ours.map((o, i) => o.rate / result.raw[i].rate),
  );
  result.p50Ratio = spread(
    result.ours.map((o, i) => o.p50 / result.raw[i].p50),
  );
  return result;
}

/** Latencies from a put to the watch event it causes, on each side. */
export interface WatchComparison {
  /** Milliseconds, per side: percentiles over all samples. */
  ours: { p50: number; p99: number; samples: number; lost: number };
  raw: { p50: number; p99: number; samples: number; lost: number };
}
