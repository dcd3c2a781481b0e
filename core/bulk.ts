/**
 * The bulk calls' engine: many single calls, a bounded number in flight,
 * and on a failure part-way an error that says which ones are known done.
 *
 * @module
 */

import { BulkWriteError } from "./errors.ts";

/**
 * How many calls of one bulk call are in flight at once: enough to hide
 * round trips, few enough not to flood a server or a connection pool.
 */
export const BULK_IN_FLIGHT = 32;

/**
 * How many chunks of one bulk call are in flight at once where the driver
 * has a batch call: each is already a full round trip's worth of keys.
 */
export const CHUNKS_IN_FLIGHT = 4;

/** Keys per chunk when a driver with batch calls declares no `maxBatchKeys`. */
export const DEFAULT_BATCH_KEYS = 256;

/**
 * Runs `call` for every item, at most {@linkcode BULK_IN_FLIGHT} at a time,
 * and resolves the results in the items' order. After the first failure no
 * further call starts; once those in flight have settled, a read rejects
 * with that failure and a write with a {@linkcode BulkWriteError} listing
 * what was done.
 *
 * @param op The bulk call's name, for the error.
 * @param items The work.
 * @param write Whether the calls write (a failure is then a `BulkWriteError`).
 * @param call One item's call.
 * @returns The results.
 *
 * @example
 * ```ts
 * import { runBulk } from "./bulk.ts";
 *
 * const doubled = await runBulk("double", [1, 2, 3], false, async (n) => n * 2);
 * console.log(doubled); // [2, 4, 6]
 * ```
 */
export async function runBulk<T, R>(
  op: string,
  items: readonly T[],
  write: boolean,
  call: (item: T, index: number) => Promise<R>,
  inFlight: number = BULK_IN_FLIGHT,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  const done: number[] = [];
  let failure: { error: unknown } | undefined;
  let next = 0;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        results[index] = await call(items[index], index);
        done.push(index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(inFlight, items.length) }, worker),
  );
  if (failure !== undefined) {
    if (!write) throw failure.error;
    throw new BulkWriteError(
      op,
      done.sort((a, b) => a - b),
      items.length,
      failure.error,
    );
  }
  return results;
}

/**
 * Runs `call` for chunks of at most `size` items (a driver's batch call: one
 * round trip each), each chunk holding a key at most once (a repeated key
 * starts the next chunk, so the later write still lands later), at most
 * {@linkcode CHUNKS_IN_FLIGHT} chunks at a time,
 * and resolves the results in the items' order. A failed chunk counts as not
 * known written as a whole; the error of a write lists the items of the
 * chunks that completed.
 *
 * @param op The bulk call's name, for the error.
 * @param items The work.
 * @param size The most items per chunk (at least 1).
 * @param keyOf An item's key.
 * @param write Whether the calls write (a failure is then a `BulkWriteError`).
 * @param call One chunk's call: resolves one result per item, in order.
 * @returns The results.
 *
 * @example
 * ```ts
 * import { runChunked } from "./bulk.ts";
 *
 * const sums = await runChunked(
 *   "double",
 *   [1, 2, 3],
 *   2,
 *   String,
 *   false,
 *   async (chunk) => chunk.map((n) => n * 2),
 * );
 * console.log(sums); // [2, 4, 6]
 * ```
 */
export async function runChunked<T, R>(
  op: string,
  items: readonly T[],
  size: number,
  keyOf: (item: T) => string,
  write: boolean,
  call: (chunk: readonly T[]) => Promise<readonly R[]>,
): Promise<R[]> {
  const chunks: T[][] = [];
  const starts: number[] = [];
  let keys = new Set<string>();
  items.forEach((item, index) => {
    const key = keyOf(item);
    if (chunks.length === 0 || keys.size === size || keys.has(key)) {
      chunks.push([]);
      starts.push(index);
      keys = new Set();
    }
    keys.add(key);
    chunks.at(-1)!.push(item);
  });
  let results: (readonly R[])[];
  try {
    results = await runBulk(op, chunks, write, async (chunk) => {
      const out = await call(chunk);
      if (out.length !== chunk.length) {
        throw new Error(
          `${op}: a batch of ${chunk.length} resolved ${out.length} results`,
        );
      }
      return out;
    }, CHUNKS_IN_FLIGHT);
  } catch (error) {
    if (!(error instanceof BulkWriteError)) throw error;
    // The chunks' positions become the items' positions.
    const done = error.done.flatMap((chunk) =>
      Array.from({ length: chunks[chunk].length }, (_, i) => starts[chunk] + i)
    );
    throw new BulkWriteError(op, done, items.length, error.cause);
  }
  return results.flat() as R[];
}
