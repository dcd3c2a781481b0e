/**
 * Building the AWS SDK clients with deadlines that hold.
 *
 * The SDK's HTTP handler has no connection timeout by default and its
 * request timeout only logs a warning unless `throwOnRequestTimeout` is set,
 * so a request to an endpoint that accepts connections but never answers
 * waits forever. Both are set here.
 *
 * @module
 */

import {
  DynamoDBClient,
  type DynamoDBClientConfig,
} from "@aws-sdk/client-dynamodb";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { Agent as HttpsAgent } from "node:https";
import type { TlsConnectionOptions } from "../../core/tls.ts";

/** A credentials value or provider, as the SDK takes them. */
export type Credentials = NonNullable<DynamoDBClientConfig["credentials"]>;

/** What both clients are built from. */
export interface ClientSettings {
  /** The AWS region; the SDK's chain (`AWS_REGION`, profile) when unset. */
  region?: DynamoDBClientConfig["region"];
  /** A custom endpoint (DynamoDB Local, a VPC endpoint). */
  endpoint?: DynamoDBClientConfig["endpoint"];
  /** Credentials; the SDK's default chain when unset. */
  credentials?: Credentials;
  /** The TCP (and TLS) connection deadline, in milliseconds. */
  connectTimeout: number;
  /** The deadline of one HTTP request, in milliseconds. */
  requestTimeout: number;
  /** How many times the SDK tries a request (throttling, 5xx, resets). */
  maxAttempts: number;
  /** TLS settings of an `https` endpoint, checked (`ConfigReader.tls`). */
  tls?: TlsConnectionOptions;
}

function common(settings: ClientSettings) {
  const tls = settings.tls;
  return {
    region: settings.region,
    endpoint: settings.endpoint,
    credentials: settings.credentials,
    maxAttempts: settings.maxAttempts,
    requestHandler: {
      connectionTimeout: settings.connectTimeout,
      requestTimeout: settings.requestTimeout,
      throwOnRequestTimeout: true,
      ...(tls
        ? {
          httpsAgent: new HttpsAgent({ keepAlive: true, ...tls }),
        }
        : {}),
    },
  };
}

/** A DynamoDB client with the store's deadlines. */
export function createClient(settings: ClientSettings): DynamoDBClient {
  return new DynamoDBClient(common(settings));
}

/**
 * A DynamoDB Streams client with the store's deadlines. Without an endpoint
 * the SDK picks `streams.dynamodb.REGION.amazonaws.com`; with one (DynamoDB
 * Local, which serves both APIs) it uses that.
 */
export function createStreamsClient(
  settings: ClientSettings,
): DynamoDBStreamsClient {
  return new DynamoDBStreamsClient(common(settings));
}

/**
 * The settings of a client the caller built, for a streams client that
 * matches it: same region, credentials and custom endpoint, if any.
 */
export function settingsOf(
  client: DynamoDBClient,
  base: Omit<ClientSettings, "region" | "credentials" | "endpoint">,
): ClientSettings {
  const config = client.config;
  return {
    ...base,
    region: config.region,
    credentials: config.credentials,
    endpoint: config.isCustomEndpoint
      ? config.endpoint as DynamoDBClientConfig["endpoint"]
      : undefined,
  };
}

/**
 * The SDK measures the local clock against the `Date` header of DynamoDB's
 * answers, which has whole seconds: its offset is noise of up to a second
 * on a clock that is right. It is applied only past this, when the local
 * clock is plainly wrong and DynamoDB's is the better one.
 */
const CLOCK_CORRECTION_THRESHOLD_MS = 10_000;

/**
 * The time in milliseconds since the epoch, by the local clock, or by
 * DynamoDB's when the SDK found the local one far off.
 */
export function clockOf(client: DynamoDBClient): () => number {
  return () => {
    const offset =
      (client.config as { systemClockOffset?: number }).systemClockOffset ?? 0;
    return Date.now() +
      (Math.abs(offset) >= CLOCK_CORRECTION_THRESHOLD_MS ? offset : 0);
  };
}
