/**
 * Turning Redis and ioredis errors into errors that say what to do.
 *
 * @module
 */

import { NotReachableError, StoreError } from "../../core/errors.ts";
import { describeOperation, type ErrorContext } from "../../core/translate.ts";

/**
 * What an ACL user needs besides the store's own keys, for the hint of a
 * permission error.
 */
const ACL_HINT =
  "a store's user needs its keys and their bookkeeping (~PREFIX/* ~/v/{???}PREFIX/* ~/lock/{???}PREFIX/* ~/counter/* ~/probe/*) and the commands of +@read +@write +@scripting +@pubsub";

/** What ioredis says of a command on a connection that closed for good. */
const CONNECTION_CLOSED = "Connection is closed.";

/** Whether `error` is ioredis saying a connection (to a node) is closed. */
export function isConnectionClosed(error: unknown): boolean {
  return error instanceof Error && error.message === CONNECTION_CLOSED;
}

/**
 * The Redis backend's `ErrorTranslator`: a permission error gets
 * what the user needs, a connection given up on is a `NotReachableError`;
 * anything else is left to the store.
 */
export function translateError(
  error: unknown,
  context: ErrorContext,
): StoreError | undefined {
  if (error instanceof StoreError) return error;
  if (!(error instanceof Error)) return undefined;
  const what = describeOperation(context);
  if (error.message.startsWith("NOPERM")) {
    return new StoreError(
      `redis ${what} failed: ${error.message} (${ACL_HINT})`,
      { cause: error },
    );
  }
  // A single server that did not come back, a cluster whose node did not
  // (no failover within the redirections ioredis allows), or a cluster
  // node that is down when it is scanned.
  if (
    error.name === "MaxRetriesPerRequestError" ||
    error.message.startsWith("Too many Cluster redirections") ||
    error.message === CONNECTION_CLOSED
  ) {
    return new NotReachableError(
      `redis ${what} failed: ${
        context.server ?? "the server"
      } is not reachable (${error.message})`,
      { cause: error },
    );
  }
  return undefined;
}
