/**
 * Bounded concurrency, for work that must not flood a server or a socket.
 *
 * @module
 */

/**
 * Runs `fn` over `items`, at most `limit` at a time; rejects with the first
 * failure (the calls already started run on).
 *
 * @param items What to work on.
 * @param limit The most calls in flight.
 * @param fn The work for one item.
 *
 * @example
 * ```ts
 * import { eachLimited } from "./concurrency.ts";
 *
 * await eachLimited([1, 2, 3], 2, async (n) => console.log(n));
 * ```
 */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const workers = Array.from(
    { length: Math.min(limit, items.length) },
    async () => {
      while (next < items.length) await fn(items[next++]);
    },
  );
  await Promise.all(workers);
}
