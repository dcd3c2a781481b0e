/**
 * AbortSignal helpers shared by every backend.
 *
 * @module
 */

/**
 * Throws `signal.reason` when the signal is already aborted.
 *
 * @param signal An optional signal.
 *
 * @example
 * ```ts
 * import { throwIfAborted } from "./abort.ts";
 *
 * throwIfAborted(new AbortController().signal); // does nothing
 * ```
 */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason;
}

/**
 * Settles like `promise`, or rejects with `signal.reason` as soon as the
 * signal aborts, whichever comes first. The promise itself goes on; callers
 * use this where the work cannot be cancelled but the caller must not wait.
 *
 * @param promise The work.
 * @param signal An optional signal.
 * @returns The work's result.
 *
 * @example
 * ```ts
 * import { abortable } from "./abort.ts";
 *
 * console.log(await abortable(Promise.resolve(1), undefined)); // 1
 * ```
 */
export function abortable<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Waits `ms` milliseconds, or rejects with `signal.reason` when it aborts.
 *
 * @param ms How long to wait.
 * @param signal An optional signal.
 *
 * @example
 * ```ts
 * import { delay } from "./abort.ts";
 *
 * await delay(1);
 * ```
 */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * A signal that aborts when any of `signals` aborts or after `ms`
 * milliseconds, with a `TimeoutError` `DOMException` in the latter case.
 *
 * @param ms The timeout.
 * @param signals Other signals to follow (undefined ones are skipped).
 * @returns The combined signal.
 *
 * @example
 * ```ts
 * import { timeoutSignal } from "./abort.ts";
 *
 * const signal = timeoutSignal(1000);
 * console.log(signal.aborted); // false
 * ```
 */
export function timeoutSignal(
  ms: number,
  ...signals: Array<AbortSignal | undefined>
): AbortSignal {
  const all = [AbortSignal.timeout(ms)];
  for (const signal of signals) if (signal) all.push(signal);
  return AbortSignal.any(all);
}

/**
 * Keeps a timer from holding the process open (Node, Bun and Deno differ in
 * how).
 *
 * @param timer What `setTimeout` or `setInterval` returned.
 *
 * @example
 * ```ts
 * import { unrefTimer } from "./abort.ts";
 *
 * const timer = setTimeout(() => {}, 10);
 * unrefTimer(timer);
 * clearTimeout(timer);
 * ```
 */
export function unrefTimer(timer: unknown): void {
  if (typeof timer === "number") {
    const deno = (globalThis as { Deno?: { unrefTimer?(id: number): void } })
      .Deno;
    deno?.unrefTimer?.(timer);
  } else {
    (timer as { unref?(): void } | undefined)?.unref?.();
  }
}
