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
    Array.from({ length: Math.min(BULK_IN_FLIGHT, items.length) }, worker),
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
