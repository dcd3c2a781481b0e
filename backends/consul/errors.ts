/**
 * The Consul backend's error translator. `ConsulHttpError`s stay inside the
 * backend (the blocking loops look at `transient` to decide whether to
 * retry); at the driver's edge they become the contract's errors.
 *
 * @module
 */

import { NotReachableError, StoreError } from "../../core/errors.ts";
import { describeOperation, type ErrorContext } from "../../core/translate.ts";
import { ConsulHttpError } from "./http.ts";

/**
 * The Consul backend's `ErrorTranslator`: an agent that did not answer is a
 * `NotReachableError`, any other answer but success a `StoreError` with what
 * Consul said; anything else is left as it is.
 *
 * @param error What a call failed with.
 * @param context The operation, and the agent (`consul at http://h:8500`).
 */
export function translateError(
  error: unknown,
  context: ErrorContext,
): StoreError | undefined {
  // Anything else, a StoreError too, is passed on as it is.
  if (!(error instanceof ConsulHttpError)) return undefined;
  const what = describeOperation(context);
  if (error.status === undefined) {
    return new NotReachableError(
      `The consul ${what} failed: ${error.message}`,
      { cause: error },
    );
  }
  return new StoreError(`The consul ${what} failed: ${error.message}`, {
    cause: error,
  });
}
