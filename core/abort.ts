/**
 * AbortSignal helpers shared by every backend.
 *
 * @module
 */

import { setMaxListeners } from "node:events";

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
    const end = Date.now() + Math.max(0, ms);
    let timer: ReturnType<typeof setTimeout>;
    // A wait longer than a timer can hold is several timers in a row.
    const arm = () => {
      timer = setTimeout(() => {
        if (Date.now() < end) return arm();
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, timerDelay(end - Date.now()));
    };
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    arm();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The longest delay a timer holds: `setTimeout` takes a signed 32-bit number
 * of milliseconds (about 24.8 days) in every runtime, and fires after about
 * 1 ms when given more.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * `ms` as a timer's delay: at least 0, at most {@linkcode MAX_TIMER_MS}.
 * Every timer whose delay comes from a caller's number (a TTL, a timeout)
 * goes through it; the timer's callback checks the time again and re-arms
 * when it fired early, so a 100-day TTL is 100 days, not 1 ms.
 *
 * @param ms The wanted delay in milliseconds.
 * @returns A delay `setTimeout` honours.
 *
 * @example
 * ```ts
 * import { MAX_TIMER_MS, timerDelay } from "./abort.ts";
 *
 * console.log(timerDelay(100 * 86_400_000) === MAX_TIMER_MS); // true
 * ```
 */
export function timerDelay(ms: number): number {
  if (!(ms > 0)) return 0;
  return ms > MAX_TIMER_MS ? MAX_TIMER_MS : ms;
}

/** A signal of its own, from {@linkcode deadline}, and the way to detach it. */
export interface Deadline {
  /** Aborts when a source does (with its reason) or when the time is up. */
  readonly signal: AbortSignal;
  /** Stops the timer and stops listening to the sources. Idempotent. */
  dispose(): void;
}

/**
 * A signal that aborts when any of `signals` aborts, with its reason, or
 * after `ms` milliseconds (when given) with a `TimeoutError` `DOMException`.
 *
 * Use it instead of `AbortSignal.any([..., AbortSignal.timeout(ms)])`: Node
 * 20 lets a timeout signal that only `AbortSignal.any()` refers to be
 * garbage-collected, and then it never fires. Here the time is an ordinary
 * timer and the sources are listened to directly, which keeps them alive;
 * `dispose()` releases both once the signal is no longer needed.
 *
 * @param ms How long until it aborts by itself (`undefined`: never).
 * @param signals Signals to follow (undefined ones are skipped).
 * @returns The signal and its `dispose()`.
 *
 * @example
 * ```ts
 * import { deadline } from "./abort.ts";
 *
 * const waiting = deadline(1_000);
 * try {
 *   console.log(waiting.signal.aborted); // false
 * } finally {
 *   waiting.dispose();
 * }
 * ```
 */
export function deadline(
  ms: number | undefined,
  ...signals: Array<AbortSignal | undefined>
): Deadline {
  const controller = new AbortController();
  const listeners: Array<[AbortSignal, () => void]> = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const dispose = () => {
    clearTimeout(timer);
    for (const [source, listener] of listeners.splice(0)) {
      source.removeEventListener("abort", listener);
    }
  };
  const abort = (reason: unknown) => {
    dispose();
    controller.abort(reason);
  };
  for (const source of signals) {
    if (!source) continue;
    if (source.aborted) {
      abort(source.reason);
      return { signal: controller.signal, dispose };
    }
    const listener = () => abort(source.reason);
    source.addEventListener("abort", listener, { once: true });
    listeners.push([source, listener]);
  }
  if (ms !== undefined) {
    const end = Date.now() + ms;
    const arm = () => {
      timer = setTimeout(() => {
        if (Date.now() < end) return arm();
        abort(new DOMException("The operation timed out", "TimeoutError"));
      }, timerDelay(end - Date.now()));
    };
    arm();
  }
  return { signal: controller.signal, dispose };
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

const widened = new WeakSet<AbortSignal>();

/**
 * Lets `signal` take any number of abort listeners. The library adds a few
 * to a caller's signal for each call it is given to, and one signal is often
 * shared by many calls (thirty lock waiters, say): Node would otherwise warn
 * of a listener leak (`MaxListenersExceededWarning`) past ten, though every
 * listener is removed when its call ends.
 *
 * @param signal A signal the library listens to.
 *
 * @example
 * ```ts
 * import { allowManyListeners } from "./abort.ts";
 *
 * allowManyListeners(new AbortController().signal);
 * ```
 */
export function allowManyListeners(signal: AbortSignal): void {
  if (widened.has(signal)) return;
  widened.add(signal);
  try {
    setMaxListeners(0, signal);
  } catch { /* a runtime without listener limits */ }
}
