/**
 * etcd's failures, told apart: whether a call may be repeated, whether a
 * token or a revision is gone, and the backend's error translator.
 *
 * @module
 */

import { isBrokenCircuitError } from "cockatiel";
import {
  castGrpcError,
  EtcdAuthenticationFailedError,
  EtcdPermissionDeniedError,
  isRecoverableError,
} from "etcd3";
import { NotReachableError, StoreError } from "../../core/errors.ts";
import { describeOperation, type ErrorContext } from "../../core/translate.ts";

/**
 * How a failed call failed: `unsent` when it surely did not reach etcd (it
 * may be repeated), `unclear` when it may or may not have been applied,
 * `final` when repeating it would fail the same way.
 */
export function failureKind(error: unknown): "unsent" | "unclear" | "final" {
  if (!(error instanceof Error)) return "final";
  if (isBrokenCircuitError(error)) return "unsent";
  // Stream errors come straight from grpc-js, untyped.
  error = castGrpcError(error);
  const message = (error as Error).message;
  // grpc-js's words when it had no connection to send the call on, and etcd's
  // when it refused a proposal because it has no leader.
  if (
    /No connection established|ECONNREFUSED|connect ECONN|etcdserver: no leader|too many requests/
      .test(message)
  ) return "unsent";
  // A revision the member has not applied yet (it lags behind the leader).
  if (message.includes("required revision is a future revision")) {
    return "unclear";
  }
  return isRecoverableError(error as Error) ? "unclear" : "final";
}

/** Whether etcd refused a call with an expired or unknown auth token. */
export function isInvalidToken(error: unknown): boolean {
  return error instanceof Error &&
    error.message.includes("etcdserver: invalid auth token");
}

/** Whether the history a watch or read needs was compacted away. */
export function isCompacted(error: unknown): boolean {
  return error instanceof Error &&
    error.message.includes("required revision has been compacted");
}

/**
 * The etcd backend's `ErrorTranslator`: `NotReachableError` when no member
 * answered, a clear `StoreError` for auth problems; anything else is left as
 * it is (the store wraps it).
 *
 * @param error What a call failed with.
 * @param context The operation, and the cluster (`etcd at h1:2379`).
 */
export function translateError(
  error: unknown,
  context: ErrorContext,
): StoreError | undefined {
  if (error instanceof StoreError) return error;
  const server = context.server ?? "etcd";
  const what = describeOperation(context);
  if (failureKind(error) !== "final") {
    return new NotReachableError(
      `${server} did not answer the ${what}: ${
        error instanceof Error ? error.message : String(error)
      }`,
      { cause: error },
    );
  }
  if (error instanceof EtcdAuthenticationFailedError) {
    return new StoreError(`${server} rejected the user name or password`, {
      cause: error,
    });
  }
  if (error instanceof EtcdPermissionDeniedError) {
    return new StoreError(
      `${server} denied the ${what}: the user lacks a permission`,
      { cause: error },
    );
  }
  return undefined;
}
