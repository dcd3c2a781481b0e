/**
 * ZooKeeper's error codes as errors, and what they mean for a store.
 *
 * @module
 */

import { NotReachableError, StoreError } from "../../core/errors.ts";
import type { DriverEvent } from "../../core/events.ts";
import { describeOperation, type ErrorContext } from "../../core/translate.ts";
import { Code, codeName } from "./protocol.ts";

/**
 * A request the server answered with an error code (or that the connection
 * cut off: `CONNECTIONLOSS`). It stays inside the backend: the driver turns
 * it into the contract's errors.
 */
export class ZkError extends Error {
  /** ZooKeeper's code: `Code.noNode`, ... */
  readonly code: number;
  /** The znode the request was about, if any. */
  readonly path: string | undefined;

  constructor(code: number, path?: string, options?: ErrorOptions) {
    super(
      `ZooKeeper ${codeName(code)}${path === undefined ? "" : ` for ${path}`}`,
      options,
    );
    this.name = "ZkError";
    this.code = code;
    this.path = path;
  }
}

/** Whether `error` is a ZooKeeper error with `code`. */
export function isCode(error: unknown, code: number): boolean {
  return error instanceof ZkError && error.code === code;
}

/**
 * Whether a request failed because its connection dropped while it was in
 * flight: the server may or may not have applied it.
 */
export function isConnectionLoss(error: unknown): boolean {
  return isCode(error, Code.connectionLoss);
}

/**
 * Whether a request failed because the connection is down: cut off in
 * flight, or no connection came up in time. The next connection registers
 * the session's watches again, so what follows a watch redoes its reads then.
 */
export function isDisconnected(error: unknown): boolean {
  return isConnectionLoss(error) || error instanceof NotReachableError;
}

/**
 * How many times a request cut off by a dropped connection is sent again
 * when doing it twice is harmless: enough to ride out a server failover, and
 * no more (a connection that drops on every request would loop forever).
 * A failover that is also an election drops the connection more than once:
 * the session moves to a server that has no leader yet, which drops it
 * again (a CI run under Node saw a plain put fail after 3), so the count
 * leaves room for a few such moves.
 */
export const MAX_RESENDS = 8;

/**
 * Runs `request`, and again (at most {@linkcode MAX_RESENDS} times) when the
 * connection dropped before its reply, each time telling `events` (the
 * session's) of the retry of `operation`. For requests that are harmless to
 * repeat: reads, and writes whose repetition changes nothing.
 */
export async function resending<T>(
  events: { emit(event: DriverEvent): void },
  operation: string,
  request: () => Promise<T>,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await request();
    } catch (error) {
      if (!isConnectionLoss(error) || attempt > MAX_RESENDS) throw error;
      events.emit({ type: "retry", operation, attempt, error });
    }
  }
}

/**
 * The ZooKeeper backend's `ErrorTranslator`: an error code the driver does
 * not handle itself becomes a `StoreError` that says what happened in
 * ZooKeeper's terms; anything that is not a ZooKeeper error is left as it is.
 *
 * @param error What a request failed with.
 * @param context The operation (`{ op: "put", key: "a/b" }`).
 */
export function translateError(
  error: unknown,
  context: ErrorContext,
): StoreError | undefined {
  // Anything else, a StoreError too, is passed on as it is.
  if (!(error instanceof ZkError)) return undefined;
  const what = describeOperation(context);
  switch (error.code) {
    case Code.noAuth:
      return new StoreError(
        `ZooKeeper refused the ${what}: the session's credentials lack the permission (NOAUTH)`,
        { cause: error },
      );
    case Code.invalidAcl:
      return new StoreError(
        `ZooKeeper refused the ACL of the ${what} (INVALIDACL): the "creator" ACL needs credentials`,
        { cause: error },
      );
    case Code.unimplemented:
      return new StoreError(
        `ZooKeeper does not implement the ${what} (UNIMPLEMENTED): TTL nodes need ZooKeeper 3.5.3+ started with -Dzookeeper.extendedTypesEnabled=true`,
        { cause: error },
      );
    case Code.connectionLoss:
      return new StoreError(
        `The connection to ZooKeeper dropped during the ${what}; it may or may not have been applied`,
        { cause: error },
      );
    default:
      return new StoreError(
        `ZooKeeper failed the ${what}: ${codeName(error.code)}`,
        { cause: error },
      );
  }
}
