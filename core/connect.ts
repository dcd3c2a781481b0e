/**
 * Connecting with a deadline: every network backend opens its client through
 * {@linkcode connectWithin}, so an unreachable server gives a
 * `NotReachableError` within `connectTimeout`, never a hang or a raw client
 * error.
 *
 * @module
 */

import { NotReachableError, StoreError } from "./errors.ts";
import { timerDelay } from "./abort.ts";

/**
 * Runs `connect` with a deadline. If it fails, the deadline passes or
 * `signal` aborts, `connect`'s own signal aborts (so it can tear down the
 * partly opened client) and the call rejects: with
 * {@linkcode NotReachableError}, or with the abort's reason.
 *
 * @param what The server, for the message: `"redis at 127.0.0.1:6379"`.
 * @param timeoutMs The deadline in milliseconds.
 * @param signal The caller's signal.
 * @param connect Opens the client; it should stop when its signal aborts.
 * @returns What `connect` resolved.
 *
 * @example
 * ```ts
 * import { connectWithin } from "./connect.ts";
 *
 * const client = await connectWithin("demo", 1000, undefined, async () => "ok");
 * console.log(client); // "ok"
 * ```
 */
export async function connectWithin<T>(
  what: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  connect: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  signal?.throwIfAborted();
  const stop = new AbortController();
  const done = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new NotReachableError(
            `${what} is not reachable within ${timeoutMs} ms`,
          ),
        ),
      // Beyond a timer's reach, it gives up after about 24.8 days.
      timerDelay(timeoutMs),
    );
  });
  const aborted = new Promise<never>((_, reject) => {
    signal?.addEventListener("abort", () => reject(signal.reason), {
      once: true,
      signal: done.signal,
    });
  });
  try {
    return await Promise.race([connect(stop.signal), deadline, aborted]);
  } catch (error) {
    stop.abort(error);
    if (signal?.aborted && error === signal.reason) throw error;
    if (error instanceof NotReachableError) throw error;
    if (error instanceof StoreError) throw error;
    throw new NotReachableError(
      `${what} is not reachable: ${
        error instanceof Error ? error.message : String(error)
      }`,
      { cause: error },
    );
  } finally {
    clearTimeout(timer);
    done.abort();
  }
}
