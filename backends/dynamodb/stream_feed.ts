/**
 * Reading the table's DynamoDB stream: one reader per store, shared by its
 * watches and lock waiters, running while any of them listens.
 *
 * It starts at `LATEST` on the open shards (a listener reads the current
 * state after the reader is positioned, so no change falls between), polls
 * each shard with GetRecords, follows closed shards to their children in
 * order, and survives errors: a network error is retried with backoff on
 * the same iterator (nothing is lost); an expired iterator resumes after the
 * last record read; records trimmed away (more than 24 hours behind) make
 * listeners re-read what they watch. A stream that is gone (disabled, table
 * deleted) ends every listener with an error. Each read tried again is a
 * `retry` event; listeners hear `resumed` when records are read again after
 * that, and the error that ends the reader is an `error` event (source
 * `stream`), as lock waiters and watches that go on by polling keep it to
 * themselves.
 *
 * @module
 */

import {
  type _Record as StreamRecord,
  DescribeStreamCommand,
  type DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type GetShardIteratorCommandInput,
} from "@aws-sdk/client-dynamodb-streams";
import { delay, unrefTimer } from "../../core/abort.ts";
import { StoreError } from "../../core/errors.ts";
import { Backoff } from "../../core/backoff.ts";
import { errorName, isNotFound, translateError } from "./errors.ts";
import type { Reporter } from "./events.ts";
import { isLockPartition, type Item } from "./items.ts";
import {
  initialPlan,
  nextPlan,
  type ShardInfo,
  type ShardStart,
  type ShardState,
} from "./shards.ts";

/** A change of one item, from one stream record. */
export interface StreamChange {
  /** The item's sort key: the full key. */
  key: string;
  /** Whether it is a lock item (only lock waiters care). */
  lock: boolean;
  /** The item was removed (a REMOVE record), not written. */
  removed: boolean;
  /** The item after the change, if the stream carries new images. */
  newImage?: Item;
  /** The item before the change, if the stream carries old images. */
  oldImage?: Item;
}

/**
 * The table's stream is gone: disabled, or the table deleted. Watches then
 * go on by polling; it is not an error of theirs.
 */
export class StreamGoneError extends StoreError {
  /** Always `"StreamGoneError"`. */
  override name: string = "StreamGoneError";
  /** Always `"STREAM_GONE"`. */
  override readonly code: string = "STREAM_GONE";
}

/** Hears the stream. */
export interface FeedListener {
  /**
   * Changes, in the order of the stream. Each call holds what one shard had
   * until it was drained (or 250 ms of a steady flow): a burst comes whole.
   */
  changes(changes: readonly StreamChange[]): void;
  /** Changes may have been missed: re-read what is watched. */
  resync(): void;
  /**
   * The stream is read again after reads of it failed: nothing was missed
   * (or a {@linkcode resync} follows).
   */
  resumed?(): void;
  /**
   * A reader from the oldest records (see {@linkcode StreamFeedOptions.from})
   * has read every shard up to its tip once: what follows is what was written
   * since. Called once.
   */
  caughtUp?(): void;
  /**
   * The stream cannot be read any more: a {@linkcode StreamGoneError} when
   * it was disabled, another error when reading it failed for good.
   */
  error(error: unknown): void;
}

/** A listener's registration. */
export interface Subscription {
  /** Resolves once every change from now on will be heard. */
  readonly ready: Promise<void>;
  /** Stops listening; the reader stops when nobody listens. */
  close(): void;
}

/** Options of {@linkcode StreamFeed}. */
export interface StreamFeedOptions {
  /** How long to wait before polling a shard that had no new records. */
  pollIntervalMs: number;
  /** Where the reader's retries and failures are reported. */
  report: Reporter;
  /**
   * `"now"` (the default): only what is written from now on, the open
   * shards from `LATEST`. `"oldest"`: everything the stream still holds
   * (up to 24 hours), every shard from `TRIM_HORIZON`, parents before
   * children; listeners hear {@linkcode FeedListener.caughtUp} once every
   * shard was read to its tip.
   */
  from?: "now" | "oldest";
}

/** The store call the reader's requests count as, in retry events. */
const OP = "watch";

/** GetRecords returns at most 1000 records a call (DynamoDB's limit). */
const RECORDS_PER_CALL = 1000;

/**
 * How often the shard list is read again, besides when a shard closes: a
 * safety net for shards that appear without a parent this reader followed.
 */
const DISCOVERY_INTERVAL_MS = 60_000;

/**
 * The longest a record waits to be handed out while its shard keeps
 * returning records: a bound on the latency that draining adds.
 */
const MAX_HOLD_MS = 250;

/** Retrying a failed GetRecords or DescribeStream. */
const ERROR_BACKOFF = { baseMs: 100, capMs: 5_000 };

/** Reads one table's stream for the listeners of one store. */
export class StreamFeed {
  #client: DynamoDBStreamsClient;
  #arn: string;
  #options: StreamFeedOptions;
  #listeners = new Set<FeedListener>();
  #run: Run | undefined;
  #gone = false;

  constructor(
    client: DynamoDBStreamsClient,
    streamArn: string,
    options: StreamFeedOptions,
  ) {
    this.#client = client;
    this.#arn = streamArn;
    this.#options = options;
  }

  /** Whether the stream is known to be gone (watches then poll). */
  get gone(): boolean {
    return this.#gone;
  }

  /**
   * When the stream was enabled (ms since the epoch), as DescribeStream
   * says, once a subscription's `ready` has resolved.
   */
  get createdMs(): number | undefined {
    return this.#run?.createdMs;
  }

  /** Starts hearing changes; the reader starts with the first listener. */
  subscribe(listener: FeedListener): Subscription {
    if (this.#gone) {
      const ready = Promise.reject(
        new StreamGoneError("The table's stream is gone"),
      );
      // The subscriber hears it from `ready` (the stream's end was
      // reported when it went); this only keeps a subscriber that does not
      // wait for `ready` from leaving a rejection unhandled.
      ready.catch(() => {});
      return { ready, close: () => {} };
    }
    this.#listeners.add(listener);
    const safely = (call: () => void) => this.#safely(call);
    this.#run ??= new Run(this.#client, this.#arn, this.#options, {
      changes: (changes) => {
        for (const l of [...this.#listeners]) safely(() => l.changes(changes));
      },
      resync: () => {
        for (const l of [...this.#listeners]) safely(() => l.resync());
      },
      resumed: () => {
        for (const l of [...this.#listeners]) safely(() => l.resumed?.());
      },
      caughtUp: () => {
        for (const l of [...this.#listeners]) safely(() => l.caughtUp?.());
      },
      error: (error) => {
        if (error instanceof StreamGoneError) this.#gone = true;
        // Watches fail with it, or go on by polling when the stream is
        // gone; lock waiters go on with backoff: reported once, here, so
        // none of them leaves it unseen.
        this.#options.report.emit({ type: "error", source: "stream", error });
        const listeners = [...this.#listeners];
        this.#listeners.clear();
        this.#stop();
        for (const l of listeners) safely(() => l.error(error));
      },
    });
    const ready = this.#run.ready;
    return {
      ready,
      close: () => {
        if (this.#listeners.delete(listener) && this.#listeners.size === 0) {
          this.#stop();
        }
      },
    };
  }

  /** Stops reading, whoever listens. */
  close(): void {
    this.#listeners.clear();
    this.#stop();
  }

  #stop(): void {
    this.#run?.stop();
    this.#run = undefined;
  }

  // A listener's failure is its own: the others still hear, and it is
  // reported, as no caller would see it.
  #safely(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.#options.report.emit({
        type: "error",
        source: "stream listener",
        error,
      });
    }
  }
}

/** One run of the reader, from the first listener until the last leaves. */
class Run {
  readonly ready: Promise<void>;
  #client: DynamoDBStreamsClient;
  #arn: string;
  #options: StreamFeedOptions;
  #out: FeedListener;
  #stop = new AbortController();
  #known = new Map<string, ShardState>();
  #discovering: Promise<void> | undefined;
  #discoverAgain = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** A read of the stream failed since records were last read. */
  #failing = false;
  /** When the stream was enabled, from DescribeStream. */
  createdMs: number | undefined;
  /**
   * Reading from the oldest records: the shards not yet read to their tip
   * once, until every one was (then `undefined`).
   */
  #behind: Set<string> | undefined;

  constructor(
    client: DynamoDBStreamsClient,
    arn: string,
    options: StreamFeedOptions,
    out: FeedListener,
  ) {
    this.#client = client;
    this.#arn = arn;
    this.#options = options;
    this.#out = out;
    this.ready = this.#begin();
    this.ready.catch((error) => {
      if (!this.#stop.signal.aborted) {
        out.error(
          isNotFound(error)
            ? gone(error)
            : translateError(error, { op: "read of the table's stream" }) ??
              error,
        );
      }
    });
  }

  stop(): void {
    this.#stop.abort();
    clearInterval(this.#timer);
  }

  #track<C extends { middlewareStack: object }>(command: C): C {
    return this.#options.report.track(command, OP);
  }

  // A read of the stream failed and is tried again: the listeners hear
  // `resumed` once records are read again.
  #failed(attempt: number, error: unknown): void {
    this.#failing = true;
    this.#options.report.retry(OP, attempt, error);
  }

  async #begin(): Promise<void> {
    const signal = this.#stop.signal;
    const shards = await this.#describe(signal);
    const oldest = this.#options.from === "oldest";
    const starts = oldest
      ? nextPlan(shards, this.#known)
      : initialPlan(shards, this.#known);
    if (oldest) this.#behind = new Set(starts.map((start) => start.id));
    const iterators = await Promise.all(
      starts.map((start) => this.#iterator(start, undefined, signal)),
    );
    starts.forEach((start, i) => void this.#read(start, iterators[i]));
    // A stream without shards holds nothing to catch up on.
    if (this.#behind?.size === 0) queueMicrotask(() => this.#reached(""));
    this.#timer = setInterval(() => this.#discover(), DISCOVERY_INTERVAL_MS);
    unrefTimer(this.#timer);
  }

  async #describe(signal: AbortSignal): Promise<ShardInfo[]> {
    const shards: ShardInfo[] = [];
    let start: string | undefined;
    do {
      const output = await this.#client.send(
        this.#track(
          new DescribeStreamCommand({
            StreamArn: this.#arn,
            ExclusiveStartShardId: start,
          }),
        ),
        { abortSignal: signal },
      );
      const description = output.StreamDescription;
      if (description?.StreamStatus === "DISABLED") {
        throw new StreamGoneError("The table's stream is disabled");
      }
      this.createdMs ??= description?.CreationRequestDateTime?.getTime();
      for (const shard of description?.Shards ?? []) {
        shards.push({
          id: shard.ShardId!,
          parentId: shard.ParentShardId,
          closed: shard.SequenceNumberRange?.EndingSequenceNumber !== undefined,
        });
      }
      start = description?.LastEvaluatedShardId;
    } while (start);
    return shards;
  }

  async #iterator(
    start: ShardStart,
    after: string | undefined,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    const input: GetShardIteratorCommandInput = after === undefined
      ? {
        StreamArn: this.#arn,
        ShardId: start.id,
        ShardIteratorType: start.position,
      }
      : {
        StreamArn: this.#arn,
        ShardId: start.id,
        ShardIteratorType: "AFTER_SEQUENCE_NUMBER",
        SequenceNumber: after,
      };
    const output = await this.#client.send(
      this.#track(new GetShardIteratorCommand(input)),
      { abortSignal: signal },
    );
    return output.ShardIterator;
  }

  // Reads one shard to its end (or until stopped), then looks for children.
  async #read(start: ShardStart, first: string | undefined): Promise<void> {
    const signal = this.#stop.signal;
    const backoff = new Backoff(ERROR_BACKOFF);
    let iterator = first;
    let position = start.position;
    let last: string | undefined;
    let missed = false;
    // Reads of this shard that failed in a row.
    let failures = 0;
    // Changes read but not handed out yet, and since when.
    let pending: StreamChange[] = [];
    let pendingSince = 0;
    const flush = () => {
      // A run that was stopped hands nothing to the listeners of the next.
      if (signal.aborted) return;
      if (pending.length > 0) {
        const changes = pending;
        pending = [];
        this.#out.changes(changes);
      }
      if (missed) {
        missed = false;
        this.#out.resync();
      }
    };
    while (!signal.aborted) {
      try {
        // A lost iterator resumes after the last record read.
        iterator ??= await this.#iterator(
          { id: start.id, position },
          last,
          signal,
        );
        if (iterator === undefined) break;
        const output = await this.#client.send(
          this.#track(
            new GetRecordsCommand({
              ShardIterator: iterator,
              Limit: RECORDS_PER_CALL,
            }),
          ),
          { abortSignal: signal },
        );
        backoff.reset();
        failures = 0;
        if (this.#failing) {
          this.#failing = false;
          this.#out.resumed?.();
        }
        const records = output.Records ?? [];
        if (records.length > 0) {
          last = records[records.length - 1].dynamodb?.SequenceNumber ?? last;
          if (pending.length === 0) pendingSince = performance.now();
          for (const record of records) {
            const change = toChange(record);
            if (change) pending.push(change);
          }
        }
        iterator = output.NextShardIterator;
        // An open shard that returns nothing is at its tip (a closed one is
        // done below, once its children are started).
        const atTip = records.length === 0 && iterator !== undefined;
        // Changes are handed out once the shard is drained, so a burst that
        // a poll caught halfway (the writes of one deleteTree batch) reaches
        // watches in one piece; a steady flow is handed out at least every
        // MAX_HOLD_MS.
        if (
          records.length === 0 || iterator === undefined ||
          performance.now() - pendingSince >= MAX_HOLD_MS
        ) flush();
        if (atTip) this.#reached(start.id);
        if (iterator === undefined) break;
        if (records.length === 0) {
          await delay(this.#options.pollIntervalMs, signal);
        }
      } catch (error) {
        if (signal.aborted) return;
        const name = errorName(error);
        if (!isNotFound(error)) this.#failed(++failures, error);
        if (name === "ExpiredIteratorException") {
          iterator = undefined;
          // Nothing read yet from LATEST: the tip has moved on since.
          if (last === undefined && position === "LATEST") missed = true;
        } else if (name === "TrimmedDataAccessException") {
          // The records after `last` are gone: resume at the tip.
          iterator = undefined;
          last = undefined;
          position = "LATEST";
          missed = true;
        } else if (isNotFound(error)) {
          this.#out.error(gone(error));
          return;
        } else {
          try {
            await delay(backoff.next(), signal);
          } catch {
            // Only the run's stop ends the delay early: nothing to report.
            return;
          }
        }
      }
    }
    if (signal.aborted) return;
    this.#known.set(start.id, "done");
    this.#discover();
    this.#reached(start.id);
  }

  // A shard was read to its tip (or end) once: when no shard is behind and
  // no children are being looked for, the reader has caught up.
  #reached(id: string): void {
    const behind = this.#behind;
    if (!behind) return;
    behind.delete(id);
    if (behind.size === 0 && !this.#discovering) {
      this.#behind = undefined;
      this.#out.caughtUp?.();
    }
  }

  // Reads the shard list and starts the shards that are due. One discovery
  // at a time; a request during one runs another after it.
  #discover(): void {
    if (this.#discovering) {
      this.#discoverAgain = true;
      return;
    }
    const signal = this.#stop.signal;
    this.#discovering = (async () => {
      const backoff = new Backoff(ERROR_BACKOFF);
      while (!signal.aborted) {
        try {
          const shards = await this.#describe(signal);
          for (const start of nextPlan(shards, this.#known)) {
            this.#behind?.add(start.id);
            void this.#read(start, undefined);
          }
          return;
        } catch (error) {
          if (signal.aborted) return;
          if (isNotFound(error)) {
            this.#out.error(gone(error));
            return;
          }
          if (error instanceof StoreError) {
            this.#out.error(error);
            return;
          }
          this.#failed(backoff.attempts + 1, error);
          // Only the run's stop ends the delay early, and ends the loop.
          await delay(backoff.next(), signal).catch(() => {});
        }
      }
    })().finally(() => {
      this.#discovering = undefined;
      if (this.#discoverAgain && !signal.aborted) {
        this.#discoverAgain = false;
        this.#discover();
      } else if (!signal.aborted && this.#behind?.size === 0) {
        this.#reached("");
      }
    });
  }
}

function gone(cause: unknown): StreamGoneError {
  return new StreamGoneError(
    "The table's stream is gone (stream disabled or table deleted)",
    { cause },
  );
}

function toChange(record: StreamRecord): StreamChange | null {
  const data = record.dynamodb;
  const key = data?.Keys?.key?.S;
  const partition = data?.Keys?.pk?.S;
  if (key === undefined || partition === undefined) return null;
  return {
    key,
    lock: isLockPartition(partition),
    removed: record.eventName === "REMOVE",
    newImage: data?.NewImage as Item | undefined,
    oldImage: data?.OldImage as Item | undefined,
  };
}
