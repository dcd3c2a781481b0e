/**
 * The settings of a DynamoDB store: what users pass, checked, with the
 * defaults filled in.
 *
 * @module
 */

import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { ConfigReader } from "../../core/config.ts";
import { InvalidConfigurationError } from "../../core/errors.ts";
import type { TlsConnectionOptions } from "../../core/tls.ts";
import type { Credentials } from "./client.ts";
import { checkTableName } from "./table.ts";

/** How watches and lock waiters hear of changes. */
export type WatchMode = "auto" | "streams" | "polling";

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

/** Everything the store needs, checked. */
export interface Settings {
  table: string;
  region?: string;
  endpoint?: string;
  credentials?: Credentials;
  client?: DynamoDBClient;
  streamsClient?: DynamoDBStreamsClient;
  createTable: boolean;
  watchMode: WatchMode;
  pollIntervalMs: number;
  streamPollIntervalMs: number;
  requestTimeoutMs: number;
  maxAttempts: number;
  retentionMs: number;
  maxClockSkewMs: number;
  connectTimeoutMs: number;
  tls?: TlsConnectionOptions;
  prefix?: string;
  signal?: AbortSignal;
}

const KINDS = {
  table: "string",
  region: "string",
  endpoint: "string",
  accessKeyId: "string",
  secretAccessKey: "string",
  sessionToken: "string",
  client: "object",
  streamsClient: "object",
  createTable: "boolean",
  watchMode: "string",
  pollInterval: "number",
  streamPollInterval: "number",
  requestTimeout: "number",
  maxAttempts: "number",
  tombstoneRetention: "number",
  maxClockSkew: "number",
} as const;

// A client of the AWS SDK v3 for the service (its config names it).
function sdkClient<T>(
  reader: ConfigReader,
  name: string,
  service: string,
): T | undefined {
  const client = reader.object<
    { send?: unknown; config?: { serviceId?: unknown } }
  >(name);
  if (client === undefined) return undefined;
  if (
    typeof client.send !== "function" || client.config?.serviceId !== service
  ) {
    throw new InvalidConfigurationError(
      `The dynamodb setting ${
        JSON.stringify(name)
      } must be a client of the AWS SDK v3 for ${service}`,
    );
  }
  return client as T;
}

/** Reads and checks the settings (unknown ones are an error). */
export function readSettings(config: Record<string, unknown>): Settings {
  // A credentials provider is a function, which ConfigReader's object kind
  // does not take: it is checked here.
  const { credentials, ...rest } = config;
  const reader = new ConfigReader("dynamodb", rest, { ...KINDS });
  const table = checkTableName(reader.string("table"));
  const accessKeyId = reader.string("accessKeyId") ?? reader.username;
  const secretAccessKey = reader.string("secretAccessKey") ?? reader.password;
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new InvalidConfigurationError(
      "DynamoDB credentials need both accessKeyId and secretAccessKey",
    );
  }
  if (credentials !== undefined && accessKeyId !== undefined) {
    throw new InvalidConfigurationError(
      "Give DynamoDB credentials either as credentials or as accessKeyId and secretAccessKey, not both",
    );
  }
  if (
    credentials !== undefined && typeof credentials !== "function" &&
    (typeof credentials !== "object" || credentials === null)
  ) {
    throw new InvalidConfigurationError(
      'The dynamodb setting "credentials" must be an object or a provider function',
    );
  }
  const watchMode = reader.string("watchMode") ?? "auto";
  if (!["auto", "streams", "polling"].includes(watchMode)) {
    throw new InvalidConfigurationError(
      `The dynamodb setting "watchMode" must be "auto", "streams" or "polling", not ${
        JSON.stringify(watchMode)
      }`,
    );
  }
  const client = sdkClient<DynamoDBClient>(reader, "client", "DynamoDB");
  const streamsClient = sdkClient<DynamoDBStreamsClient>(
    reader,
    "streamsClient",
    "DynamoDB Streams",
  );
  if (
    client &&
    (reader.string("region") ?? reader.string("endpoint") ?? credentials ??
        accessKeyId) !== undefined
  ) {
    throw new InvalidConfigurationError(
      "With a DynamoDB client given, set region, endpoint and credentials on that client",
    );
  }
  return {
    table,
    region: reader.string("region"),
    endpoint: reader.string("endpoint"),
    // A copy: the SDK marks where credentials came from on the object itself,
    // which fails on a frozen one.
    credentials:
      (typeof credentials === "object"
        ? { ...credentials } as Credentials
        : credentials as Credentials | undefined) ??
        (accessKeyId === undefined ? undefined : {
          accessKeyId,
          secretAccessKey: secretAccessKey!,
          sessionToken: reader.string("sessionToken"),
        }),
    client,
    streamsClient,
    createTable: reader.boolean("createTable") ?? false,
    watchMode: watchMode as WatchMode,
    pollIntervalMs: reader.positive("pollInterval", DEFAULT_POLL_INTERVAL_MS, {
      timer: true,
    }),
    streamPollIntervalMs: reader.positive(
      "streamPollInterval",
      DEFAULT_STREAM_POLL_INTERVAL_MS,
      { timer: true },
    ),
    requestTimeoutMs: reader.positive(
      "requestTimeout",
      DEFAULT_REQUEST_TIMEOUT_MS,
      { timer: true },
    ),
    maxAttempts: reader.positive("maxAttempts", DEFAULT_MAX_ATTEMPTS, {
      integer: true,
    }),
    // Durations compared with clocks, not waited for by a timer.
    retentionMs: reader.positive(
      "tombstoneRetention",
      DEFAULT_TOMBSTONE_RETENTION_MS,
    ),
    maxClockSkewMs: reader.positive("maxClockSkew", DEFAULT_MAX_CLOCK_SKEW_MS),
    connectTimeoutMs: reader.connectTimeout,
    tls: reader.tls,
    prefix: reader.prefix,
    signal: reader.signal,
  };
}
