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
    timer = setTimeout(
      () => abort(new DOMException("The operation timed out", "TimeoutError")),
      ms,
    );
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
