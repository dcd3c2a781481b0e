/**
 * "Run again if asked while running": how a watch re-reads after change
 * notifications that say only that something changed, not to what.
 *
 * Reads never overlap, and every notification heard during a read makes one
 * more read after it, so each read starts after the changes it answers for:
 * the last state a watch reports is the final one, and a burst of changes
 * costs a few reads, not one per change.
 *
 * @module
 */

/** What a {@linkcode serial} runner does besides its task. */
export interface SerialOptions {
  /**
   * Called once when a run of the task rejects. The runner then stops for
   * good: later calls do nothing (a task that must go on after an error
   * catches it itself).
   */
  onError(error: unknown): void;
  /** Called when a run ends with no other run asked for. */
  onIdle?(): void;
}

/**
 * Makes a function that runs `task`, never twice at once: calls made while a
 * run is going make exactly one more run after it. A run starts in a
 * microtask, so the calls of one synchronous burst (all the notifications of
 * one server reply) make one run.
 *
 * @param task The work: a read and its report.
 * @param options Where a failed run goes, and what happens when idle.
 * @returns The function that asks for a run.
 *
 * @example
 * ```ts
 * import { serial } from "./serial.ts";
 *
 * let runs = 0;
 * const reread = serial(async () => {
 *   runs++;
 * }, { onError: (error) => console.error(error) });
 * reread();
 * reread(); // the same run: it has not started yet
 * await Promise.resolve();
 * console.log(runs); // 1
 * ```
 */
export function serial(
  task: () => Promise<void>,
  options: SerialOptions,
): () => void {
  let scheduled = false;
  let running = false;
  let again = false;
  let failed = false;
  const run = async () => {
    scheduled = false;
    running = true;
    try {
      do {
        again = false;
        await task();
      } while (again);
    } catch (error) {
      failed = true;
      running = false;
      options.onError(error);
      return;
    }
    running = false;
    options.onIdle?.();
  };
  return () => {
    if (failed) return;
    if (running) again = true;
    else if (!scheduled) {
      scheduled = true;
      queueMicrotask(run);
    }
  };
}
