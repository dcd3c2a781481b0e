/**
 * The DynamoDB backend: the whole store contract on one DynamoDB table,
 * through `@aws-sdk/client-dynamodb`, with watches from DynamoDB Streams
 * (`@aws-sdk/client-dynamodb-streams`), or polling on a table without one.
 *
 * Open it as `dynamodb://TABLE?region=REGION` (and `&endpoint=URL` for
 * DynamoDB Local or a VPC endpoint), or with {@linkcode DynamoDBStore.connect}.
 * Credentials come from the options or from the AWS SDK's usual chain
 * (environment, profile, instance role). `createTable: true` creates a
 * missing table with its stream and TTL.
 *
 * Each key is one item: partition key `pk` (the key's first segment), sort
 * key `key` (the whole key), the raw bytes in the binary attribute `value`,
 * `lastIndex` in the number `version`. `list()` of a subtree is a Query of
 * that range. See `docs/backends/dynamodb.md` for the schema, costs and
 * limits.
 *
 * @example
 * ```ts ignore
 * import { DynamoDBStore } from "@valkeyrie/valkeyrie/dynamodb";
 *
 * await using store = await DynamoDBStore.connect({
 *   table: "valkeyrie",
 *   region: "eu-west-1",
 *   createTable: true,
 * });
 * await store.put("config/greeting", "hello");
 * ```
 *
 * @module
 */

import { BaseStore } from "../../core/store.ts";
import type { StoreOptions } from "../../core/types.ts";
import { DynamoDBDriver } from "./driver.ts";
import { readSettings } from "./options.ts";

/** AWS credentials, as the AWS SDK takes them. */
export interface AwsCredentials {
  /** The access key id. */
  accessKeyId: string;
  /** Its secret. */
  secretAccessKey: string;
  /** A session token, for temporary credentials. */
  sessionToken?: string;
  /** When temporary credentials expire. */
  expiration?: Date;
}

/** A client of the AWS SDK v3, as far as these options need to know. */
export interface SdkClient {
  /** Sends a command. */
  send(command: never, options?: never): Promise<unknown>;
  /** Frees its connections. */
  destroy(): void;
}

/** Options of {@linkcode DynamoDBStore.connect}. */
export interface DynamoDBStoreOptions extends StoreOptions {
  // Written by scripts/settings.ts from the settings schema: edit the schema.
  /**
   * The table's name (a URL's `dynamodb://TABLE`).
   *
   * Required.
   */
  table: string;
  /**
   * The AWS region.
   *
   * Default: the SDK's chain (`AWS_REGION`, ...).
   */
  region?: string;
  /**
   * The service URL the AWS SDK sends to, such as `http://127.0.0.1:8000`
   * for DynamoDB Local (the SDK's own name; the stream is read from it too).
   *
   * Default: the region's.
   */
  endpoint?: string;
  /**
   * An access key id, with `secretAccessKey` (a URL's user name too).
   *
   * Default: the SDK's chain.
   */
  accessKeyId?: string;
  /**
   * The secret of `accessKeyId` (a URL's password too).
   *
   * Default: the SDK's chain.
   */
  secretAccessKey?: string;
  /**
   * A session token for temporary credentials.
   *
   * Default: none.
   */
  sessionToken?: string;
  /**
   * Credentials, or a provider of them, as the AWS SDK takes them.
   *
   * Default: the SDK's chain.
   */
  credentials?: AwsCredentials | (() => Promise<AwsCredentials>);
  /**
   * An AWS SDK v3 `DynamoDBClient` to use instead of building one (with your
   * own middleware, retry strategy or HTTP handler). It is not destroyed on
   * close; its region, endpoint and credentials also serve the stream. Typed
   * loosely so that this module's types do not depend on the SDK's.
   *
   * Default: one built from the settings.
   */
  client?: SdkClient;
  /**
   * An AWS SDK v3 `DynamoDBStreamsClient` to use instead of building one.
   *
   * Default: one built from the settings.
   */
  streamsClient?: SdkClient;
  /**
   * Create the table when it is missing: on demand, with a stream of new and
   * old images and TTL on the `ttl` attribute.
   *
   * Default: `false`.
   */
  createTable?: boolean;
  /**
   * How watches and lock waiters hear of changes: `"streams"` (the table
   * must have a stream), `"polling"`, or `"auto"`: the stream if the table
   * has one.
   *
   * Default: `"auto"`.
   */
  watchMode?: "auto" | "streams" | "polling";
  /**
   * How often a polling watch re-reads, in ms.
   *
   * A number (ms), > 0. Default: `1000`.
   */
  pollInterval?: number;
  /**
   * How often an idle stream shard is polled, in ms (AWS allows 5 reads a
   * second per shard).
   *
   * A number (ms), > 0. Default: `500`.
   */
  streamPollInterval?: number;
  /**
   * The deadline of one request, in ms.
   *
   * A number (ms), > 0. Default: `10000`.
   */
  requestTimeout?: number;
  /**
   * How many times the SDK tries a request.
   *
   * A whole number, ≥ 1. Default: `3`.
   */
  maxAttempts?: number;
  /**
   * How long a deleted or expired key keeps its version, in ms. Clients'
   * clocks must agree better than this for a re-created key's `lastIndex` to
   * grow.
   *
   * A number, > 0. Default: `3600000`.
   */
  tombstoneRetention?: number;
  /**
   * How far clients' clocks may disagree, in ms: the store's
   * `ttlGranularityMs`, and how long after its TTL a dead holder's lock is
   * taken over at the latest.
   *
   * A number, > 0. Default: `1000`.
   */
  maxClockSkew?: number;
}

/**
 * A store on a DynamoDB table.
 *
 * @example Against DynamoDB Local
 * ```ts ignore
 * import { DynamoDBStore } from "@valkeyrie/valkeyrie/dynamodb";
 *
 * await using store = await DynamoDBStore.connect({
 *   table: "kv",
 *   endpoint: "http://127.0.0.1:8000",
 *   region: "us-east-1",
 *   accessKeyId: "local",
 *   secretAccessKey: "local",
 *   createTable: true,
 * });
 * await store.put("jobs/nightly", "idle");
 * for await (const pair of store.watch("jobs/nightly")) console.log(pair);
 * ```
 */
export class DynamoDBStore extends BaseStore {
  #driver: DynamoDBDriver;

  private constructor(driver: DynamoDBDriver, prefix: string | undefined) {
    super(driver, { prefix });
    this.#driver = driver;
  }

  /** Whether watches hear the table's stream (`false`: they poll). */
  get streaming(): boolean {
    return this.#driver.streaming;
  }

  /**
   * Opens a store on a table, waiting for DynamoDB at most `connectTimeout`.
   *
   * @param options The table, where and how to reach it.
   * @returns The open store.
   */
  static async connect(options: DynamoDBStoreOptions): Promise<DynamoDBStore> {
    const settings = readSettings({ ...options });
    const driver = new DynamoDBDriver(settings);
    try {
      // The store checks the prefix before any request is sent.
      const store = new DynamoDBStore(driver, settings.prefix);
      await driver.start();
      return store;
    } catch (error) {
      await driver.abandon();
      throw error;
    }
  }
}
