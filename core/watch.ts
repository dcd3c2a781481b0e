/**
 * Watch streams: what every backend's watches share.
 *
 * A driver reports states (a key watch) or a tree and its changes (a tree
 * watch) through a sink; this module turns them into the `ReadableStream`s
 * of the contract: the current state first, one chunk per change of a key,
 * sorted snapshots of a tree folded when they come in a burst, expiry
 * reported on time, and the driver's resources freed on cancel, abort,
 * error and store close.
 *
 * @module
 */

import { compareKeys } from "./keys.ts";
import { StoreError } from "./errors.ts";
import { timerDelay, unrefTimer } from "./abort.ts";
import type { Entry, KeySink, ReplaySink, TreeSink } from "./driver.ts";
import type { KVPair, WatchEvent } from "./types.ts";

/**
 * How many chunks a key watch keeps for a reader that does not read before
 * it gives up with an error, so a forgotten stream cannot grow without bound.
 * A tree watch needs no such limit: it folds changes into one snapshot.
 */
export const WATCH_BUFFER_LIMIT = 10_000;

/** How a watch is started and torn down; given by `BaseStore`. */
export interface WatchSetup {
  /** Turns a driver entry into the caller's pair (prefix taken off). */
  toPair(entry: Entry): KVPair;
  /** Turns a driver's full key into the caller's key (prefix taken off). */
  userKey(full: string): string;
  /** The caller's signal: aborting it errors the stream with its reason. */
  signal?: AbortSignal;
  /** Turns what a driver reported as an error into the error the reader gets. */
  wrapError(error: unknown): unknown;
  /** Called once when the watch ends, however it ends. */
  onEnd(watch: Watch): void;
  /**
   * Called as the reader takes a chunk that carries a change: how long
   * since the driver reported the (oldest) change in it, in ms, and how many
   * chunks still wait. Not for the first state or tree, nor for replayed
   * history.
   */
  delivered?(lagMs: number, waiting: number): void;
}

/** A running watch, as the store tracks it. */
export interface Watch {
  /** Ends the watch by closing its stream (what `store.close()` does). */
  close(): void;
}

/**
 * The part of a watch that does not depend on what is watched: the driver's
 * stop signal, the caller's signal, and ending the stream exactly once.
 */
abstract class WatchBase<T> implements Watch {
  readonly stream: ReadableStream<T>;
  /** Aborted when the watch ends, to stop the driver's feed. */
  protected readonly stop: AbortController = new AbortController();
  protected controller!: ReadableStreamDefaultController<T>;
  #setup: WatchSetup;
  #ended = false;

  constructor(setup: WatchSetup, strategy: QueuingStrategy<T>) {
    this.#setup = setup;
    this.stream = new ReadableStream<T>({
      start: (controller) => {
        this.controller = controller;
      },
      pull: () => this.pull(),
      cancel: () => {
        this.end();
      },
    }, strategy);
    const signal = setup.signal;
    if (signal) {
      const onAbort = () => this.fail(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      this.stop.signal.addEventListener(
        "abort",
        () => signal.removeEventListener("abort", onAbort),
        { once: true },
      );
    }
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Called when the reader wants a chunk. */
  protected pull(): void | Promise<void> {}

  /** Frees what the subclass holds (timers). */
  protected abstract dispose(): void;

  close(): void {
    if (this.ended) return;
    // What was reported before the close is still read, as a stream's
    // queued chunks are.
    this.flush();
    if (this.end()) this.controller.close();
  }

  /** Hands the reader every chunk that waits (before a close). */
  protected flush(): void {}

  fail(error: unknown): void {
    if (this.end()) this.controller.error(error);
  }

  /** Ends the watch with a driver's error, wrapped as a `StoreError`. */
  error(error: unknown): void {
    this.fail(this.#setup.wrapError(error));
  }

  /** Marks the watch ended; returns whether it was still running. */
  protected end(): boolean {
    if (this.#ended) return false;
    this.#ended = true;
    this.dispose();
    this.stop.abort();
    this.#setup.onEnd(this);
    return true;
  }

  protected toPair(entry: Entry): KVPair {
    return this.#setup.toPair(entry);
  }

  protected delivered(since: number, waiting: number): void {
    this.#setup.delivered?.(performance.now() - since, waiting);
  }

  protected userKey(full: string): string {
    return this.#setup.userKey(full);
  }
}

/** A chunk waiting for the reader. */
interface Waiting<T> {
  chunk: T;
  /** A change the driver reported (not a first state or a resync). */
  live: boolean;
  /** When the driver reported it (`performance.now()`). */
  at: number;
}

/**
 * Chunks waiting for a watch's reader, handed over one per read (the
 * stream's `pull`), so the watch knows when each is taken (its lag) and how
 * many changes wait (its limit).
 */
class Backlog<T> {
  #queue: Waiting<T>[] = [];
  #head = 0;
  // Live chunks in #queue: what the limit counts.
  #live = 0;
  #wake: (() => void) | undefined;
  readonly #hand: (waiting: Waiting<T>, left: number) => void;

  /** @param hand Enqueues a chunk the reader takes. */
  constructor(hand: (waiting: Waiting<T>, left: number) => void) {
    this.#hand = hand;
  }

  /** Queues a chunk; `false` when the reader is too far behind for it. */
  push(chunk: T, live: boolean): boolean {
    if (live && this.#live >= WATCH_BUFFER_LIMIT) return false;
    if (live) this.#live++;
    this.#queue.push({ chunk, live, at: performance.now() });
    const wake = this.#wake;
    if (wake) {
      this.#wake = undefined;
      this.#send();
      wake();
    }
    return true;
  }

  /** The stream's `pull`: a chunk now, or once one comes. */
  pull(): void | Promise<void> {
    if (this.#head < this.#queue.length) return this.#send();
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  /** Enqueues everything that waits, without waiting for reads. */
  drain(enqueue: (chunk: T) => void): void {
    for (let i = this.#head; i < this.#queue.length; i++) {
      enqueue(this.#queue[i].chunk);
    }
    this.clear();
  }

  /** Drops what waits and lets a pending `pull` go. */
  clear(): void {
    this.#queue = [];
    this.#head = 0;
    this.#live = 0;
    this.#wake?.();
    this.#wake = undefined;
  }

  #send(): void {
    const waiting = this.#queue[this.#head++];
    if (waiting.live) this.#live--;
    // Let go of what was sent, in steps, so the queue does not grow forever.
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    this.#hand(waiting, this.#queue.length - this.#head);
  }
}

/** Why a watch whose reader does not keep up is stopped. */
function behind(): StoreError {
  return new StoreError(
    `Watch reader fell more than ${WATCH_BUFFER_LIMIT} changes behind; the watch was stopped`,
  );
}

/**
 * A watch of one key. States the driver reports twice, or older than one
 * already reported, are dropped: a chunk is a change.
 */
export class KeyWatch extends WatchBase<KVPair | null> implements KeySink {
  // undefined: nothing reported yet; null: reported absent.
  #last: Entry | null | undefined = undefined;
  #highest = -1n;
  #expiry: ReturnType<typeof setTimeout> | undefined;
  #backlog = new Backlog<KVPair | null>((waiting, left) => {
    if (waiting.live) this.delivered(waiting.at, left);
    this.controller.enqueue(waiting.chunk);
  });

  /**
   * Creates the watch; the caller then starts the driver with `this` as the
   * sink and `this.signal` as its stop signal.
   *
   * @param setup How the store wants the watch run.
   */
  constructor(setup: WatchSetup) {
    super(setup, new CountQueuingStrategy({ highWaterMark: 0 }));
  }

  /** Aborted when the watch ends. */
  get signal(): AbortSignal {
    return this.stop.signal;
  }

  state(entry: Entry | null): void {
    if (this.ended) return;
    const last = this.#last;
    if (entry === null) {
      if (last === null) return;
    } else {
      if (entry.lastIndex <= this.#highest) return;
      this.#highest = entry.lastIndex;
    }
    const first = last === undefined;
    this.#last = entry;
    this.#armExpiry(entry);
    const chunk = entry === null ? null : this.toPair(entry);
    if (!this.#backlog.push(chunk, !first)) this.fail(behind());
  }

  protected override pull(): void | Promise<void> {
    return this.#backlog.pull();
  }

  protected override flush(): void {
    this.#backlog.drain((chunk) => this.controller.enqueue(chunk));
  }

  protected dispose(): void {
    clearTimeout(this.#expiry);
    this.#backlog.clear();
  }

  // A driver whose server deletes expired keys late still reports them gone
  // on time: the entry says when it expires.
  #armExpiry(entry: Entry | null): void {
    clearTimeout(this.#expiry);
    this.#expiry = undefined;
    if (entry?.expiresAt === undefined) return;
    const expiresAt = entry.expiresAt;
    this.#expiry = setTimeout(() => {
      if (this.#last !== entry) return;
      // Early when the expiry is further away than a timer can wait.
      if (expiresAt > Date.now()) this.#armExpiry(entry);
      else this.state(null);
    }, timerDelay(expiresAt - Date.now()));
    unrefTimer(this.#expiry);
  }
}

/**
 * A watch of a tree. It keeps the tree's entries and hands the reader a
 * sorted snapshot when something changed since the last one; changes that
 * come while the reader is busy are folded into the next snapshot.
 */
export class TreeWatch extends WatchBase<KVPair[]> implements TreeSink {
  #entries = new Map<string, Entry>();
  // The keys of #entries, sorted; undefined when a key came or went since.
  // A change of an existing key's value, the common case, keeps the order,
  // so a snapshot of a large tree needs no sort.
  #order: string[] | undefined;
  #ready = false;
  #dirty = false;
  #flushQueued = false;
  #wake: (() => void) | undefined;
  #expiring = 0;
  #expiry: ReturnType<typeof setTimeout> | undefined;
  #expiryAt = Infinity;
  // When the oldest change not yet sent came; undefined before the first
  // snapshot, which carries the tree, not a change.
  #changedAt: number | undefined;
  #sent = false;

  /**
   * Creates the watch; the caller then starts the driver with `this` as the
   * sink and `this.signal` as its stop signal.
   *
   * @param setup How the store wants the watch run.
   */
  constructor(setup: WatchSetup) {
    super(setup, new CountQueuingStrategy({ highWaterMark: 0 }));
  }

  /** Aborted when the watch ends. */
  get signal(): AbortSignal {
    return this.stop.signal;
  }

  reset(entries: Entry[]): void {
    if (this.ended) return;
    if (this.#ready && this.#same(entries)) return;
    this.#entries = new Map();
    this.#order = undefined;
    this.#expiring = 0;
    for (const entry of entries) this.#set(entry);
    this.#ready = true;
    this.#changed();
  }

  put(entry: Entry): void {
    if (this.ended) return;
    const old = this.#entries.get(entry.key);
    if (old && old.lastIndex >= entry.lastIndex) return;
    if (!old) this.#order = undefined;
    if (old?.expiresAt !== undefined) this.#expiring--;
    this.#set(entry);
    this.#changed();
  }

  delete(key: string): void {
    if (this.ended) return;
    const old = this.#entries.get(key);
    if (!old) return;
    if (old.expiresAt !== undefined) this.#expiring--;
    this.#entries.delete(key);
    this.#order = undefined;
    this.#changed();
  }

  protected override pull(): void | Promise<void> {
    if (this.#ready && this.#dirty) return this.#send();
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  protected dispose(): void {
    clearTimeout(this.#expiry);
    this.#wake?.();
    this.#wake = undefined;
  }

  #set(entry: Entry): void {
    this.#entries.set(entry.key, entry);
    if (entry.expiresAt !== undefined) this.#expiring++;
  }

  #same(entries: Entry[]): boolean {
    if (entries.length !== this.#entries.size) return false;
    for (const entry of entries) {
      if (this.#entries.get(entry.key)?.lastIndex !== entry.lastIndex) {
        return false;
      }
    }
    return true;
  }

  // Changes reported in one synchronous run (one transaction's events) are
  // folded: the snapshot is taken in a microtask, after the run.
  #changed(): void {
    if (this.#sent && !this.#dirty) this.#changedAt = performance.now();
    this.#dirty = true;
    this.#armExpiry();
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      const wake = this.#wake;
      if (wake && this.#ready && this.#dirty && !this.ended) {
        this.#wake = undefined;
        this.#send();
        wake();
      }
    });
  }

  #send(): void {
    this.#dirty = false;
    const now = Date.now();
    this.#order ??= [...this.#entries.keys()].sort(compareKeys);
    const snapshot: KVPair[] = [];
    for (const key of this.#order) {
      const entry = this.#entries.get(key)!;
      if (entry.expiresAt === undefined || entry.expiresAt > now) {
        snapshot.push(this.toPair(entry));
      }
    }
    if (this.#changedAt !== undefined) this.delivered(this.#changedAt, 0);
    this.#changedAt = undefined;
    this.#sent = true;
    this.controller.enqueue(snapshot);
  }

  // Keeps one timer, at the earliest expiry in the tree.
  #armExpiry(): void {
    if (this.#expiring === 0) {
      if (this.#expiry !== undefined) {
        clearTimeout(this.#expiry);
        this.#expiry = undefined;
        this.#expiryAt = Infinity;
      }
      return;
    }
    let earliest = Infinity;
    for (const entry of this.#entries.values()) {
      if (entry.expiresAt !== undefined && entry.expiresAt < earliest) {
        earliest = entry.expiresAt;
      }
    }
    if (earliest === this.#expiryAt) return;
    clearTimeout(this.#expiry);
    this.#expiryAt = earliest;
    // #expire re-arms when this fires early (an expiry beyond a timer's reach).
    this.#expiry = setTimeout(
      () => this.#expire(),
      timerDelay(earliest - Date.now()),
    );
    unrefTimer(this.#expiry);
  }

  #expire(): void {
    this.#expiry = undefined;
    this.#expiryAt = Infinity;
    const now = Date.now();
    let removed = false;
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt !== undefined && entry.expiresAt <= now) {
        this.#entries.delete(key);
        this.#order = undefined;
        this.#expiring--;
        removed = true;
      }
    }
    if (removed) this.#changed();
    else this.#armExpiry();
  }
}

/** What an event watch keeps of a key: enough to tell a change. */
interface Seen {
  lastIndex: bigint;
  expiry?: ReturnType<typeof setTimeout>;
}

/**
 * A watch of a tree's changes, one event each: the tree as `put`s, `synced`,
 * then a `put` or `delete` per change. It keeps each key's `lastIndex` (not
 * its value) to drop what the driver reports twice, and when the driver
 * reports a whole tree again (after a reconnect) it sends the difference,
 * so a change never costs the size of the tree and none is skipped.
 */
export class EventWatch extends WatchBase<WatchEvent> implements ReplaySink {
  #seen = new Map<string, Seen>();
  // Events not yet read; the tree sent on (re)sync is not live.
  #backlog = new Backlog<WatchEvent>((waiting, left) => {
    if (waiting.live) this.delivered(waiting.at, left);
    this.controller.enqueue(waiting.chunk);
  });
  #ready = false;
  #resume: boolean;
  // Started from replayed history: #seen holds only what changed since, so
  // every delete is passed on, and a later reset is sent as a reset.
  #replay = false;
  #highest = 0n;

  /**
   * Creates the watch; the caller then starts the driver with `this` as the
   * sink and `this.signal` as its stop signal.
   *
   * @param setup How the store wants the watch run.
   * @param resume Whether the caller asked to resume from an index the
   * driver cannot replay from: the stream then starts with `reset`.
   */
  constructor(setup: WatchSetup, resume: boolean) {
    super(setup, new CountQueuingStrategy({ highWaterMark: 0 }));
    this.#resume = resume;
  }

  /** Aborted when the watch ends. */
  get signal(): AbortSignal {
    return this.stop.signal;
  }

  reset(entries: Entry[]): void {
    if (this.ended) return;
    const now = Date.now();
    const live = entries.filter((entry) =>
      entry.expiresAt === undefined || entry.expiresAt > now
    ).sort((a, b) => compareKeys(a.key, b.key));
    if (!this.#ready || this.#replay) {
      // A view built from replayed changes cannot be diffed against the
      // tree (it never held the unchanged keys): the consumer starts over.
      if (this.#resume || this.#replay) this.#push({ type: "reset" }, false);
      this.#forget();
      this.#ready = true;
      this.#replay = false;
      for (const entry of live) this.#put(entry, false);
    } else {
      const present = new Set<string>();
      for (const entry of live) {
        present.add(entry.key);
        this.#put(entry, false);
      }
      for (const key of [...this.#seen.keys()]) {
        if (!present.has(key)) this.#delete(key, false);
      }
    }
    this.#push({ type: "synced", lastIndex: this.#highest }, false);
  }

  replaying(): void {
    if (this.ended || this.#ready) return;
    this.#ready = true;
    this.#replay = true;
  }

  replayed(lastIndex: bigint): void {
    if (this.ended || !this.#replay) return;
    if (lastIndex > this.#highest) this.#highest = lastIndex;
    this.#push({ type: "synced", lastIndex: this.#highest }, false);
  }

  put(entry: Entry): void {
    if (this.ended || !this.#ready) return;
    this.#put(entry, true);
  }

  delete(key: string): void {
    if (this.ended || !this.#ready) return;
    this.#delete(key, true);
  }

  protected override pull(): void | Promise<void> {
    return this.#backlog.pull();
  }

  protected override flush(): void {
    this.#backlog.drain((chunk) => this.controller.enqueue(chunk));
  }

  protected dispose(): void {
    this.#forget();
    this.#backlog.clear();
  }

  #put(entry: Entry, live: boolean): void {
    const old = this.#seen.get(entry.key);
    if (old && old.lastIndex >= entry.lastIndex) return;
    clearTimeout(old?.expiry);
    const seen: Seen = { lastIndex: entry.lastIndex };
    if (entry.expiresAt !== undefined) seen.expiry = this.#expire(entry);
    this.#seen.set(entry.key, seen);
    if (entry.lastIndex > this.#highest) this.#highest = entry.lastIndex;
    this.#push({ type: "put", pair: this.toPair(entry) }, live);
  }

  #forget(): void {
    for (const seen of this.#seen.values()) clearTimeout(seen.expiry);
    this.#seen.clear();
  }

  #delete(key: string, live: boolean): void {
    const old = this.#seen.get(key);
    if (!old && !this.#replay) return;
    clearTimeout(old?.expiry);
    this.#seen.delete(key);
    this.#push({ type: "delete", key: this.userKey(key) }, live);
  }

  // A driver whose server deletes expired keys late still reports them gone
  // on time: the entry says when it expires.
  #expire(entry: Entry): ReturnType<typeof setTimeout> {
    const expiresAt = entry.expiresAt!;
    const timer = setTimeout(() => {
      const seen = this.#seen.get(entry.key);
      if (seen?.expiry !== timer) return;
      // Early when the expiry is further away than a timer can wait.
      if (expiresAt > Date.now()) seen.expiry = this.#expire(entry);
      else this.#delete(entry.key, true);
    }, timerDelay(expiresAt - Date.now()));
    unrefTimer(timer);
    return timer;
  }

  #push(event: WatchEvent, live: boolean): void {
    if (!this.#backlog.push(event, live)) this.fail(behind());
  }
}
