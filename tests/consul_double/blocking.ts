/**
 * Blocking queries (https://developer.hashicorp.com/consul/api-docs/features/blocking):
 * with `?index`, the request "hangs" until the result's index is past it or
 * the wait runs out, and then answers with the current result either way
 * ("the return of a blocking request is no guarantee of a change"). When a
 * snapshot replaces the state, waiting queries answer at once, even with a
 * lower index: that is one way an index goes backwards.
 *
 * The double re-evaluates a waiting query after every write, where Consul
 * watches the query's own radix-tree nodes; the answers are the same, only
 * the wake-ups differ.
 *
 * @module
 */

import type { Blocking } from "./call.ts";
import type { ConsulState } from "./state.ts";

/** A query's result and the index it reports in `X-Consul-Index`. */
export interface Indexed<T> {
  index: bigint;
  value: T;
}

/**
 * Runs `query` now, or, for a blocking request, until its index moves past
 * `blocking.index`, the wait runs out, or the state is replaced.
 */
export async function blockingQuery<T>(
  state: ConsulState,
  blocking: Blocking | undefined,
  signal: AbortSignal,
  query: () => Indexed<T>,
): Promise<Indexed<T>> {
  let result = query();
  if (!blocking || blocking.index === 0n) return result;
  const deadline = Date.now() + blocking.waitMs;
  while (result.index <= blocking.index) {
    const left = deadline - Date.now();
    if (left <= 0 || signal.aborted) break;
    const abandoned = await state.changed(left, signal);
    result = query();
    if (abandoned) break;
  }
  return result;
}
