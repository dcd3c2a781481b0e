/**
 * What every part of the backend shares: the client, the table, the
 * version clock and the retention of tombstones.
 *
 * @module
 */

import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
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
}
