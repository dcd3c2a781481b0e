/**
 * The DynamoDB backend's own settings: the schema its options interface,
 * its checks, its defaults and its docs table come from.
 *
 * @module
 */

import type { SettingsSchema } from "../../core/config.ts";
import type { AwsCredentials } from "./mod.ts";

/**
 * How long one HTTP request to DynamoDB may take. Requests are small (at
 * most 1 MB pages, 400 KB items); a longer wait means the network is gone.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** How many times the SDK tries a request: its own default. */
export const DEFAULT_MAX_ATTEMPTS = 3;

/** A polling watch re-reads its key or tree this often. */
export const DEFAULT_POLL_INTERVAL_MS = 1_000;

/**
 * An idle stream shard is polled this often. AWS allows 5 GetRecords a
 * second per shard and advises at most two readers: two stores polling
 * twice a second stay within that.
 */
export const DEFAULT_STREAM_POLL_INTERVAL_MS = 500;

/**
 * How long a deleted or expired key keeps its version (see `versions.ts`).
 * An hour is far beyond the five minutes of clock skew AWS tolerates.
 */
export const DEFAULT_TOMBSTONE_RETENTION_MS = 60 * 60 * 1000;

/**
 * How far clients' clocks may disagree (NTP keeps cloud hosts within
 * milliseconds). A key with a TTL is seen expired up to this much early or
 * late by another client, and a dead holder's lock passes on within its TTL
 * plus this.
 */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 1_000;

const isCredentials = (
  value: unknown,
): value is AwsCredentials | (() => Promise<AwsCredentials>) =>
  typeof value === "function" || (typeof value === "object" && value !== null);

/** The settings of a DynamoDB store besides the common ones. */
export const DYNAMODB_SETTINGS = {
  table: {
    kind: "string",
    required: true,
    doc: "The table's name (a URL's `dynamodb://TABLE`).",
  },
  region: {
    kind: "string",
    defaultDoc: "the SDK's chain (`AWS_REGION`, ...)",
    doc: "The AWS region.",
  },
  endpoint: {
    kind: "string",
    defaultDoc: "the region's",
    doc:
      "The service URL the AWS SDK sends to, such as `http://127.0.0.1:8000` for DynamoDB Local (the SDK's own name; the stream is read from it too).",
  },
  accessKeyId: {
    kind: "string",
    defaultDoc: "the SDK's chain",
    doc: "An access key id, with `secretAccessKey` (a URL's user name too).",
  },
  secretAccessKey: {
    kind: "string",
    defaultDoc: "the SDK's chain",
    doc: "The secret of `accessKeyId` (a URL's password too).",
  },
  sessionToken: {
    kind: "string",
    defaultDoc: "none",
    doc: "A session token for temporary credentials.",
  },
  credentials: {
    kind: "value",
    type: "AwsCredentials | (() => Promise<AwsCredentials>)",
    expected: "an object or a provider function",
    check: isCredentials,
    defaultDoc: "the SDK's chain",
    doc: "Credentials, or a provider of them, as the AWS SDK takes them.",
  },
  client: {
    kind: "value",
    type: "SdkClient",
    expected: "a client of the AWS SDK v3 for DynamoDB",
    defaultDoc: "one built from the settings",
    doc:
      "An AWS SDK v3 `DynamoDBClient` to use instead of building one (with your own middleware, retry strategy or HTTP handler). It is not destroyed on close; its region, endpoint and credentials also serve the stream. Typed loosely so that this module's types do not depend on the SDK's.",
  },
  streamsClient: {
    kind: "value",
    type: "SdkClient",
    expected: "a client of the AWS SDK v3 for DynamoDB Streams",
    defaultDoc: "one built from the settings",
    doc:
      "An AWS SDK v3 `DynamoDBStreamsClient` to use instead of building one.",
  },
  createTable: {
    kind: "boolean",
    default: false,
    doc:
      "Create the table when it is missing: on demand, with a stream of new and old images and TTL on the `ttl` attribute.",
  },
  watchMode: {
    kind: "string",
    choices: ["auto", "streams", "polling"],
    default: "auto",
    doc:
      'How watches and lock waiters hear of changes: `"streams"` (the table must have a stream), `"polling"`, or `"auto"`: the stream if the table has one.',
  },
  pollInterval: {
    kind: "number",
    timer: true,
    default: DEFAULT_POLL_INTERVAL_MS,
    doc: "How often a polling watch re-reads, in ms.",
  },
  streamPollInterval: {
    kind: "number",
    timer: true,
    default: DEFAULT_STREAM_POLL_INTERVAL_MS,
    doc:
      "How often an idle stream shard is polled, in ms (AWS allows 5 reads a second per shard).",
  },
  requestTimeout: {
    kind: "number",
    timer: true,
    default: DEFAULT_REQUEST_TIMEOUT_MS,
    doc: "The deadline of one request, in ms.",
  },
  maxAttempts: {
    kind: "number",
    integer: true,
    default: DEFAULT_MAX_ATTEMPTS,
    doc: "How many times the SDK tries a request.",
  },
  tombstoneRetention: {
    kind: "number",
    default: DEFAULT_TOMBSTONE_RETENTION_MS,
    doc:
      "How long a deleted or expired key keeps its version, in ms. Clients' clocks must agree better than this for a re-created key's `lastIndex` to grow.",
  },
  maxClockSkew: {
    kind: "number",
    default: DEFAULT_MAX_CLOCK_SKEW_MS,
    doc:
      "How far clients' clocks may disagree, in ms: the store's `ttlGranularityMs`, and how long after its TTL a dead holder's lock is taken over at the latest.",
  },
} as const satisfies SettingsSchema;
