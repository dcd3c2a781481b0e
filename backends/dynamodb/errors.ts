/**
 * Telling the AWS SDK's errors apart: a failed condition, a cancelled
 * transaction, a missing table or stream, and a server that cannot be
 * reached.
 *
 * @module
 */

import {
  InvalidConfigurationError,
  NotReachableError,
  StoreError,
} from "../../core/errors.ts";
import { describeOperation, type ErrorContext } from "../../core/translate.ts";
import type { Item } from "./items.ts";

/** What the SDK's service exceptions carry that this backend reads. */
interface ServiceError {
  name?: string;
  code?: string;
  message?: string;
  Item?: Item;
  CancellationReasons?: CancellationReason[];
  $metadata?: { httpStatusCode?: number };
}

/** Why one item of a cancelled transaction failed. */
export interface CancellationReason {
  /** `"None"`, `"ConditionalCheckFailed"`, `"TransactionConflict"`, ... */
  Code?: string;
  /** The item before the transaction, when its condition failed. */
  Item?: Item;
  /** DynamoDB's explanation. */
  Message?: string;
}

/** The error's name (the SDK sets it to the service's exception type). */
export function errorName(error: unknown): string | undefined {
  return (error as ServiceError | undefined)?.name;
}

/**
 * The item as it was when a conditional write failed (DynamoDB returns it
 * with `ReturnValuesOnConditionCheckFailure: "ALL_OLD"`), `null` when there
 * was none, or `undefined` when the error is not a failed condition.
 */
export function failedConditionItem(error: unknown): Item | null | undefined {
  if (errorName(error) !== "ConditionalCheckFailedException") return undefined;
  return (error as ServiceError).Item ?? null;
}

/** The reasons of a cancelled transaction, or `undefined` for other errors. */
export function cancellationReasons(
  error: unknown,
): CancellationReason[] | undefined {
  if (errorName(error) !== "TransactionCanceledException") return undefined;
  return (error as ServiceError).CancellationReasons ?? [];
}

/** Whether the table (or stream) named in a request does not exist. */
export function isNotFound(error: unknown): boolean {
  return errorName(error) === "ResourceNotFoundException";
}

// Errors of the HTTP layer: the request never got an answer from DynamoDB.
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "ConnectionRefused",
]);

/** Whether the error says the server did not answer (no HTTP response). */
export function isNetworkError(error: unknown): boolean {
  const e = error as ServiceError | undefined;
  if (!e || typeof e !== "object") return false;
  if (e.$metadata?.httpStatusCode !== undefined) return false;
  return e.name === "TimeoutError" || NETWORK_CODES.has(e.code ?? "") ||
    NETWORK_CODES.has(e.name ?? "");
}

/**
 * The DynamoDB backend's `ErrorTranslator`: missing credentials or region
 * are an `InvalidConfigurationError`, a server that did not answer is a
 * `NotReachableError`; any other error of the SDK a `StoreError` saying what
 * failed and the SDK's name for it, with the SDK's error in `cause`. An
 * abort is left as it is.
 */
export function translateError(
  error: unknown,
  context: ErrorContext,
): StoreError | undefined {
  if (error instanceof StoreError) return error;
  if (error instanceof DOMException && error.name === "AbortError") {
    return undefined;
  }
  const configuration = configurationError(error);
  if (configuration) return configuration;
  const what = describeOperation(context);
  const message = error instanceof Error ? error.message : String(error);
  if (isNetworkError(error)) {
    return new NotReachableError(
      `DynamoDB did not answer the ${what}: ${message}`,
      { cause: error },
    );
  }
  const name = errorName(error);
  return new StoreError(
    `DynamoDB ${what} failed${name ? ` (${name})` : ""}: ${message}`,
    { cause: error },
  );
}

/**
 * What the SDK says when it lacks what it needs before sending anything: no
 * credentials, no region. That is the caller's configuration, not an
 * unreachable server.
 */
export function configurationError(
  error: unknown,
): InvalidConfigurationError | undefined {
  const message = (error as Error | undefined)?.message ?? "";
  if (errorName(error) === "CredentialsProviderError") {
    return new InvalidConfigurationError(
      `No AWS credentials for DynamoDB: ${message}`,
      { cause: error },
    );
  }
  if (/region is missing/i.test(message)) {
    return new InvalidConfigurationError(
      "No AWS region for DynamoDB: set region (or AWS_REGION)",
      { cause: error },
    );
  }
  return undefined;
}
