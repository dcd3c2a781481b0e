/**
 * The driver of a DynamoDB store: the contract's calls over the item model,
 * the stream reader and the locks.
 *
 * @module
 */

import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { connectWithin } from "../../core/connect.ts";
import { InvalidConfigurationError, StoreError } from "../../core/errors.ts";
import type {
  AtomicStep,
  CommitOutcome,
  Driver,
  DriverCommitOptions,
  DriverLockOptions,
  DriverPut,
  DriverReadOptions,
  DriverSignalOptions,
  DriverTryLockOptions,
  DriverWriteOptions,
  Entry,
  KeySink,
  LockLease,
  ReplaySink,
  ScanRange,
  TreeSink,
} from "../../core/driver.ts";
import type { DriverEvent } from "../../core/events.ts";
import { translating } from "../../core/translate.ts";
import type { StoreLimits } from "../../core/types.ts";
import {
  clockOf,
  createClient,
  createStreamsClient,
  settingsOf,
} from "./client.ts";
import { commit, MAX_ATOMIC_BYTES, MAX_TRANSACTION_ITEMS } from "./commit.ts";
import type { Context } from "./context.ts";
import { deleteKey, deleteTree } from "./delete_tree.ts";
import { configurationError, translateError } from "./errors.ts";
import { Reporter } from "./events.ts";
import { toEntry, valueItem } from "./items.ts";
import { acquireLock, type LockSource, tryAcquireLock } from "./lock.ts";
import { BATCH_GET_LIMIT, deleteMany, getMany, putMany } from "./many.ts";
import type { Settings } from "./options.ts";
import { getItem, listEntries, listItems } from "./reads.ts";
import { scanPage } from "./scan.ts";
import { openTable } from "./table.ts";
import { VersionClock } from "./versions.ts";
import { StreamFeed } from "./stream_feed.ts";
import { replayTree, watchKey, type WatchSource, watchTree } from "./watch.ts";
import { writeItem } from "./writes.ts";

/** DynamoDB's largest item: 400 KB, names and values of every attribute. */
export const MAX_ITEM_BYTES = 400 * 1024;

/** DynamoDB's longest sort key, in bytes: the longest key. */
export const MAX_SORT_KEY_BYTES = 1024;

/**
 * What an item holds besides its value, at most: the partition and sort keys
 * (up to 1024 bytes each), attribute names, and three numbers.
 */
const ITEM_OVERHEAD_BYTES = 2 * MAX_SORT_KEY_BYTES + 128;

/** The driver of one store handle. */
export class DynamoDBDriver implements Driver {
  readonly backend = "dynamodb";
  readonly limits: StoreLimits;
  #settings: Settings;
  // Each call's context is this with the call's name (see #context).
  #ctx: Omit<Context, "op">;
  readonly #report = new Reporter();
  #streams: DynamoDBStreamsClient | undefined;
  // The clients this driver made (and so destroys); a caller's are theirs.
  #owned: Array<DynamoDBClient | DynamoDBStreamsClient> = [];
  #feed: StreamFeed | undefined;
  /** A stream reader of its own for each resumed tree watch. */
  #replayFeed: (() => StreamFeed) | undefined;
  #closed = false;

  /** Builds the clients; nothing is sent until {@linkcode start}. */
  constructor(settings: Settings) {
    this.#settings = settings;
    this.limits = Object.freeze({
      maxKeyBytes: MAX_SORT_KEY_BYTES,
      maxValueBytes: MAX_ITEM_BYTES - ITEM_OVERHEAD_BYTES,
      // Reads check expiry exactly, by the reader's clock against the
      // writer's: they may disagree by the allowed skew. Lock takeover of a
      // dead holder is due the same skew after its TTL.
      ttlGranularityMs: settings.maxClockSkewMs,
      maxAtomicOperations: MAX_TRANSACTION_ITEMS,
      maxAtomicBytes: MAX_ATOMIC_BYTES,
      // A chunk is one BatchGetItem (100 keys) or TransactWriteItems (100
      // items) at most.
      maxBatchKeys: Math.min(BATCH_GET_LIMIT, MAX_TRANSACTION_ITEMS),
    });
    const base = {
      connectTimeout: settings.connectTimeoutMs,
      requestTimeout: settings.requestTimeoutMs,
      maxAttempts: settings.maxAttempts,
      tls: settings.tls,
    };
    let client = settings.client;
    if (!client) {
      client = createClient({
        ...base,
        region: settings.region,
        endpoint: settings.endpoint,
        credentials: settings.credentials,
      });
      this.#owned.push(client);
    }
    const now = clockOf(client);
    this.#ctx = {
      client,
      table: settings.table,
      retentionMs: settings.retentionMs,
      clock: new VersionClock(now),
      now,
      report: this.#report,
    };
    this.#streams = settings.streamsClient;
    if (!this.#streams && settings.watchMode !== "polling") {
      this.#streams = createStreamsClient(
        settings.client ? settingsOf(settings.client, base) : {
          ...base,
          region: settings.region,
          endpoint: settings.endpoint,
          credentials: settings.credentials,
        },
      );
      this.#owned.push(this.#streams);
    }
  }

  /**
   * Finds (or creates) the table within `connectTimeout`; an endpoint that
   * does not answer in time is a `NotReachableError`.
   */
  async start(): Promise<void> {
    const settings = this.#settings;
    const where = settings.endpoint ?? settings.region ?? "the default region";
    const info = await connectWithin(
      `DynamoDB table ${JSON.stringify(settings.table)} at ${where}`,
      settings.connectTimeoutMs,
      settings.signal,
      (signal) =>
        openTable(this.#ctx.client, settings.table, {
          create: settings.createTable,
          signal,
        }).catch((error) => {
          throw configurationError(error) ?? error;
        }),
    );
    if (settings.watchMode === "streams" && !info.streamArn) {
      throw new InvalidConfigurationError(
        `The DynamoDB table ${
          JSON.stringify(settings.table)
        } has no stream, and watchMode is "streams"`,
      );
    }
    if (info.streamArn && this.#streams && settings.watchMode !== "polling") {
      const streams = this.#streams;
      const arn = info.streamArn;
      const feedOptions = {
        pollIntervalMs: settings.streamPollIntervalMs,
        report: this.#report,
      };
      this.#feed = new StreamFeed(streams, arn, feedOptions);
      this.#replayFeed = () =>
        new StreamFeed(streams, arn, { ...feedOptions, from: "oldest" });
    }
  }

  /** Whether watches hear the table's stream (rather than poll). */
  get streaming(): boolean {
    return this.#feed !== undefined && !this.#feed.gone;
  }

  get(key: string, options: DriverReadOptions): Promise<Entry | null> {
    return this.#run("get", async (ctx) => {
      const item = await getItem(ctx, key, options);
      return toEntry(item, ctx.now());
    });
  }

  put(
    key: string,
    value: Uint8Array,
    options: DriverWriteOptions,
  ): Promise<bigint> {
    return this.#run("put", async (ctx) => {
      // Without a guard the write lands (or throws): at its version.
      const outcome = await writeItem(ctx, {
        build: (version, now) =>
          valueItem(
            key,
            value,
            version,
            options.ttl === undefined ? undefined : now + options.ttl,
            ctx.retentionMs,
          ),
        signal: options.signal,
      });
      if (!outcome.ok) {
        throw new StoreError("DynamoDB refused an unguarded put");
      }
      return outcome.version;
    });
  }

  delete(key: string, options: DriverSignalOptions): Promise<void> {
    return this.#run("delete", (ctx) => deleteKey(ctx, key, options.signal));
  }

  list(dir: string, options: DriverReadOptions): Promise<Entry[]> {
    return this.#run("list", (ctx) => listEntries(ctx, dir, options));
  }

  scan(range: ScanRange, options: DriverReadOptions): Promise<Entry[]> {
    return this.#run("scan", (ctx) => scanPage(ctx, range, options));
  }

  getMany(
    keys: readonly string[],
    options: DriverReadOptions,
  ): Promise<(Entry | null)[]> {
    return this.#run("getMany", (ctx) => getMany(ctx, keys, options));
  }

  putMany(
    writes: readonly DriverPut[],
    options: DriverSignalOptions,
  ): Promise<bigint[]> {
    return this.#run(
      "putMany",
      (ctx) => putMany(ctx, writes, options.signal),
    );
  }

  deleteMany(
    keys: readonly string[],
    options: DriverSignalOptions,
  ): Promise<void> {
    return this.#run(
      "deleteMany",
      (ctx) => deleteMany(ctx, keys, options.signal),
    );
  }

  deleteTree(
    key: string | null,
    dir: string,
    options: DriverSignalOptions,
  ): Promise<void> {
    return this.#run(
      "deleteTree",
      (ctx) => deleteTree(ctx, key, dir, options.signal),
    );
  }

  commit(
    steps: readonly AtomicStep[],
    options: DriverCommitOptions,
  ): Promise<CommitOutcome> {
    return this.#run("atomic", (ctx) => commit(ctx, steps, options));
  }

  watchKey(key: string, sink: KeySink, signal: AbortSignal): void {
    watchKey(this.#watchSource(), key, sink, signal);
  }

  watchTree(dir: string, sink: TreeSink, signal: AbortSignal): void {
    watchTree(this.#watchSource(), dir, sink, signal);
  }

  replayTree(
    dir: string,
    from: bigint,
    sink: ReplaySink,
    signal: AbortSignal,
  ): void {
    replayTree(this.#watchSource(), dir, from, sink, signal);
  }

  lock(key: string, options: DriverLockOptions): Promise<LockLease> {
    return this.#run(
      "lock",
      (ctx) => acquireLock(this.#lockSource(ctx), key, options),
    );
  }

  // One attempt of lock()'s: a refused one is a cancelled transaction, so it
  // leaves no item, waiter or stream reader behind.
  tryLock(
    key: string,
    options: DriverTryLockOptions,
  ): Promise<LockLease | null> {
    return this.#run(
      "tryLock",
      (ctx) => tryAcquireLock(this.#lockSource(ctx), key, options),
    );
  }

  observe(emit: (event: DriverEvent) => void): void {
    this.#report.emit = emit;
  }

  close(): Promise<void> {
    this.#shutdown();
    return Promise.resolve();
  }

  // Nothing to say goodbye to: DynamoDB has no sessions. Held locks stay in
  // the table until a waiter sees them unrenewed for their TTL.
  abandon(): Promise<void> {
    this.#shutdown();
    return Promise.resolve();
  }

  #shutdown(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#feed?.close();
    for (const client of this.#owned) client.destroy();
  }

  #lockSource(ctx: Context): LockSource {
    return {
      ctx,
      feed: this.#feed,
      maxClockSkewMs: this.#settings.maxClockSkewMs,
    };
  }

  #watchSource(): WatchSource {
    const ctx = this.#context("watch");
    return {
      feed: this.#feed,
      replayFeed: this.#feed?.gone ? undefined : this.#replayFeed,
      maxClockSkewMs: this.#settings.maxClockSkewMs,
      pollIntervalMs: this.#settings.pollIntervalMs,
      readKey: (key, signal) => getItem(ctx, key, { consistent: true, signal }),
      readTree: (dir, signal) =>
        listItems(ctx, dir, { consistent: true, signal }),
      now: ctx.now,
      report: this.#report,
    };
  }

  #context(op: string): Context {
    return { ...this.#ctx, op };
  }

  #run<T>(op: string, call: (ctx: Context) => Promise<T>): Promise<T> {
    const ctx = this.#context(op);
    return translating(translateError, { op }, () => call(ctx));
  }
}
