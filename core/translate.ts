/**
 * How a backend turns its client's errors into the library's: one shape for
 * every backend. Each backend has one {@linkcode ErrorTranslator}, named
 * `translateError` in its `errors.ts`, and calls it where a client call fails:
 * `throw translateError(error, { op: "get", key }) ?? error`, or through
 * {@linkcode translating}.
 *
 * A translator recognises what only the backend can (a permission error, a
 * server that is gone, a configuration the server refuses) and says so with
 * the contract's errors. Whatever it does not recognise it leaves alone: an
 * abort's reason must reach the caller as it is, and `BaseStore` wraps any
 * other foreign error in a `StoreError` with the operation's name.
 *
 * @module
 */

import type { StoreError } from "./errors.ts";

/** What a failed call was doing, for the translated error's message. */
export interface ErrorContext {
  /** The operation: `"get"`, `"put"`, `"list"`, `"atomic"`, `"watch"`, ... */
  op: string;
  /** The key (or the tree's key) it was about, if any. */
  key?: string;
  /** The server, if the backend names it: `"redis at 127.0.0.1:6379"`. */
  server?: string;
}

/**
 * A backend's translation of its client's errors: a library error for an
 * error it recognises (a `StoreError` it is given may be returned as it is),
 * `undefined` for anything else, which the caller then throws unchanged.
 */
export type ErrorTranslator = (
  error: unknown,
  context: ErrorContext,
) => StoreError | undefined;

/**
 * The operation of `context` for a message: `get of "a/b"`, or `watch`.
 *
 * @param context The operation and its key.
 * @returns The words for a message.
 *
 * @example
 * ```ts
 * import { describeOperation } from "./translate.ts";
 *
 * console.log(describeOperation({ op: "get", key: "a/b" })); // get of "a/b"
 * ```
 */
export function describeOperation(context: ErrorContext): string {
  return context.key === undefined
    ? context.op
    : `${context.op} of ${JSON.stringify(context.key)}`;
}

/**
 * Runs `call`, throwing what it fails with through `translate`.
 *
 * @param translate The backend's translator.
 * @param context What the call does.
 * @param call The work.
 * @returns What `call` resolves.
 *
 * @example
 * ```ts
 * import { translating } from "./translate.ts";
 *
 * const value = await translating(() => undefined, { op: "get" }, () =>
 *   Promise.resolve(1));
 * console.log(value); // 1
 * ```
 */
export async function translating<T>(
  translate: ErrorTranslator,
  context: ErrorContext,
  call: () => Promise<T>,
): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw translate(error, context) ?? error;
  }
}
