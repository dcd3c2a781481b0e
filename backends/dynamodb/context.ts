/**
 * What every part of the backend shares: the client, the table, the
 * version clock and the retention of tombstones; and, per store call, the
 * call's name and where its retries are reported.
 *
 * @module
 */

import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { Reporter } from "./events.ts";
import type { VersionClock } from "./versions.ts";

/** The table a store works on, and how. */
export interface Context {
  /** The DynamoDB client. */
  readonly client: DynamoDBClient;
  /** The table's name. */
  readonly table: string;
  /** Hands out versions. */
  readonly clock: VersionClock;
  /**
   * How long a deleted or expired key keeps its version in the table, in
   * milliseconds, before DynamoDB's TTL may remove it.
   */
  readonly retentionMs: number;
  /** The time in milliseconds since the epoch, corrected for clock skew. */
  now(): number;
  /** The store call this serves (`get`, `lock`, `watch`, ...). */
  readonly op: string;
  /** Where its retries and DynamoDB's reconnections are reported. */
  readonly report: Reporter;
}

/**
 * `command`, set to report the SDK's retries of it as the call's (see
 * `Reporter.track`).
 */
export function tracked<C extends { middlewareStack: object }>(
  ctx: Context,
  command: C,
): C {
  return ctx.report.track(command, ctx.op);
}

/** Reports that the call is tried again after its try `attempt` failed. */
export function retried(ctx: Context, attempt: number, error: unknown): void {
  ctx.report.retry(ctx.op, attempt, error);
}
