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
import { DYNAMODB_SETTINGS } from "./settings.ts";

export {
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_STREAM_POLL_INTERVAL_MS,
  DEFAULT_TOMBSTONE_RETENTION_MS,
} from "./settings.ts";

/** How watches and lock waiters hear of changes. */
export type WatchMode = "auto" | "streams" | "polling";

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

// A client of the AWS SDK v3 for the service (its config names it).
function sdkClient<T>(
  reader: ConfigReader<typeof DYNAMODB_SETTINGS>,
  name: "client" | "streamsClient",
  service: string,
): T | undefined {
  const client = reader.get(name) as
    | { send?: unknown; config?: { serviceId?: unknown } }
    | undefined;
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
  const reader = new ConfigReader("dynamodb", config, DYNAMODB_SETTINGS);
  const table = checkTableName(reader.get("table"));
  const credentials = reader.get("credentials");
  const accessKeyId = reader.get("accessKeyId") ?? reader.username;
  const secretAccessKey = reader.get("secretAccessKey") ?? reader.password;
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
  const client = sdkClient<DynamoDBClient>(reader, "client", "DynamoDB");
  const streamsClient = sdkClient<DynamoDBStreamsClient>(
    reader,
    "streamsClient",
    "DynamoDB Streams",
  );
  if (
    client &&
    (reader.get("region") ?? reader.get("endpoint") ?? credentials ??
        accessKeyId) !== undefined
  ) {
    throw new InvalidConfigurationError(
      "With a DynamoDB client given, set region, endpoint and credentials on that client",
    );
  }
  return {
    table,
    region: reader.get("region"),
    endpoint: reader.get("endpoint"),
    // A copy: the SDK marks where credentials came from on the object itself,
    // which fails on a frozen one.
    credentials:
      (typeof credentials === "object"
        ? { ...credentials } as Credentials
        : credentials as Credentials | undefined) ??
        (accessKeyId === undefined ? undefined : {
          accessKeyId,
          secretAccessKey: secretAccessKey!,
          sessionToken: reader.get("sessionToken"),
        }),
    client,
    streamsClient,
    createTable: reader.get("createTable"),
    watchMode: reader.get("watchMode"),
    pollIntervalMs: reader.get("pollInterval"),
    streamPollIntervalMs: reader.get("streamPollInterval"),
    requestTimeoutMs: reader.get("requestTimeout"),
    maxAttempts: reader.get("maxAttempts"),
    // Durations compared with clocks, not waited for by a timer.
    retentionMs: reader.get("tombstoneRetention"),
    maxClockSkewMs: reader.get("maxClockSkew"),
    connectTimeoutMs: reader.connectTimeout,
    tls: reader.tls,
    prefix: reader.prefix,
    signal: reader.signal,
  };
}
