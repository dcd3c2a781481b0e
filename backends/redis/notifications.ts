/**
 * Keyspace notifications: one subscriber connection per store, shared by
 * every watch and lock wait of the store.
 *
 * A key watch subscribes to the key's channel (`__keyspace@DB__:KEY`, an
 * exact name: no pattern, nothing to escape); a tree watch subscribes to the
 * pattern of its prefix, with the glob characters of the prefix escaped. A
 * channel or pattern is subscribed once however many listeners share it, and
 * unsubscribed when the last one leaves.
 *
 * When the connection drops, notifications published meanwhile are lost.
 * On reconnecting, the subscriber checks the server's notification setting
 * again (a restarted server or a promoted replica may not have it),
 * subscribes everything again, and then tells every listener to re-read what
 * it may have missed.
 *
 * @module
 */

import type { Redis } from "ioredis";
import {
  NotReachableError,
  StoreClosedError,
  StoreError,
} from "../../core/errors.ts";
import { type Endpoint, openConnection } from "./connection.ts";
import { ensureKeyspaceEvents } from "./keyspace_events.ts";
import { keyspacePrefix, startsWithPattern } from "./names.ts";

/** What a watch or a lock wait hears. */
export interface Listener {
  /** A key it listens to changed (any keyspace event). */
  changed(key: string): void;
  /** Notifications may have been missed: re-read. */
  resync(): void;
  /** Notifications stopped for good: a `StoreError` that says why. */
  error(error: unknown): void;
}

/**
 * How long the subscriber may stay disconnected before its listeners get an
 * error instead of waiting on: long enough to ride out a Sentinel failover
 * (seconds) or a server restart, short enough that a watch of a server that
 * is gone says so.
 */
export const SUBSCRIBER_OUTAGE_LIMIT_MS = 30_000;

/** Longest pause between reconnection attempts of the subscriber. */
const MAX_RECONNECT_DELAY_MS = 1_000;

/**
 * After the server's notifications were found unusable, watches fail at
 * once with that error for this long before the store checks again (an
 * operator may have turned them on).
 */
const RECHECK_AFTER_FAILURE_MS = 30_000;

interface Topic {
  readonly listeners: Set<Listener>;
  /** Resolves when the server confirmed the subscription. */
  readonly subscribed: Promise<unknown>;
}

/** The keyspace notifications of one store. */
export class Notifications {
  readonly #endpoint: Endpoint;
  readonly #commands: Redis;
  readonly #prefix: string;
  #starting: Promise<Redis> | undefined;
  #subscriber: Redis | undefined;
  #failure: { error: unknown; at: number } | undefined;
  #channels = new Map<string, Topic>();
  #patterns = new Map<string, Topic>();
  #closed = false;

  /**
   * @param endpoint Where the server is; the subscriber connects there.
   * @param commands The store's command connection (for `CONFIG`).
   */
  constructor(endpoint: Endpoint, commands: Redis) {
    this.#endpoint = endpoint;
    this.#commands = commands;
    this.#prefix = keyspacePrefix(endpoint.db);
  }

  /**
   * Calls `listener` for every change of `key` until `signal` aborts.
   * Resolves once the subscription is active, so no later change is missed.
   */
  listenKey(
    key: string,
    listener: Listener,
    signal: AbortSignal,
  ): Promise<void> {
    return this.#listen("channel", this.#prefix + key, listener, signal);
  }

  /**
   * Calls `listener` for every change of a key starting with `dir` until
   * `signal` aborts. Resolves once the subscription is active.
   */
  listenTree(
    dir: string,
    listener: Listener,
    signal: AbortSignal,
  ): Promise<void> {
    const pattern = this.#prefix + startsWithPattern(dir);
    return this.#listen("pattern", pattern, listener, signal);
  }

  /** Drops the subscriber connection (also one still connecting). */
  close(): void {
    this.#closed = true;
    this.#starting?.then((subscriber) => subscriber.disconnect(), () => {});
  }

  async #listen(
    kind: "channel" | "pattern",
    name: string,
    listener: Listener,
    signal: AbortSignal,
  ): Promise<void> {
    const subscriber = await this.#start();
    if (signal.aborted) return;
    const topics = kind === "channel" ? this.#channels : this.#patterns;
    let topic = topics.get(name);
    if (!topic) {
      const subscribed = kind === "channel"
        ? subscriber.subscribe(name)
        : subscriber.psubscribe(name);
      topic = { listeners: new Set(), subscribed };
      topics.set(name, topic);
    }
    const joined = topic;
    joined.listeners.add(listener);
    const leave = () => {
      joined.listeners.delete(listener);
      if (joined.listeners.size > 0 || topics.get(name) !== joined) return;
      topics.delete(name);
      if (this.#subscriber?.status !== "ready") return;
      const unsubscribed = kind === "channel"
        ? this.#subscriber.unsubscribe(name)
        : this.#subscriber.punsubscribe(name);
      unsubscribed.catch(() => {});
    };
    signal.addEventListener("abort", leave, { once: true });
    try {
      await joined.subscribed;
    } catch (error) {
      if (topics.get(name) === joined) topics.delete(name);
      signal.removeEventListener("abort", leave);
      joined.listeners.delete(listener);
      throw new StoreError(
        `Could not subscribe to ${
          JSON.stringify(name)
        } on ${this.#endpoint.what}${
          /NOPERM/.test(String(error))
            ? " (the user may not subscribe to it: grant channels with ACL SETUSER USER &*, as Redis matches PSUBSCRIBE patterns literally)"
            : ""
        }: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  // Connects the subscriber and checks the server's notification setting,
  // once. A server that does not give notifications is remembered for a
  // while (finding out may take a probe); one that cannot be reached is not.
  #start(): Promise<Redis> {
    if (this.#closed) return Promise.reject(new StoreClosedError("redis"));
    const failure = this.#failure;
    if (failure && Date.now() - failure.at < RECHECK_AFTER_FAILURE_MS) {
      return Promise.reject(failure.error);
    }
    this.#failure = undefined;
    if (!this.#starting) {
      const starting = this.#connect();
      this.#starting = starting;
      starting.catch((error) => {
        if (this.#starting !== starting) return;
        this.#starting = undefined;
        if (!(error instanceof NotReachableError)) {
          this.#failure = { error, at: Date.now() };
        }
      });
    }
    return this.#starting;
  }

  async #connect(): Promise<Redis> {
    let downSince: number | undefined;
    const subscriber = await openConnection(this.#endpoint, {
      connectionName: "valkeyrie-notifications",
      autoResubscribe: false,
      retryStrategy: (attempt) => {
        downSince ??= Date.now();
        if (Date.now() - downSince > SUBSCRIBER_OUTAGE_LIMIT_MS) return null;
        return Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS);
      },
    }, undefined);
    try {
      await ensureKeyspaceEvents(
        this.#commands,
        subscriber,
        this.#endpoint.db,
        this.#endpoint.what,
      );
    } catch (error) {
      subscriber.disconnect();
      throw error;
    }
    this.#subscriber = subscriber;
    subscriber.on("message", (channel: string) => {
      const topic = this.#channels.get(channel);
      if (!topic) return;
      const key = channel.slice(this.#prefix.length);
      for (const listener of [...topic.listeners]) listener.changed(key);
    });
    subscriber.on("pmessage", (pattern: string, channel: string) => {
      const topic = this.#patterns.get(pattern);
      if (!topic) return;
      const key = channel.slice(this.#prefix.length);
      for (const listener of [...topic.listeners]) listener.changed(key);
    });
    subscriber.on("ready", () => {
      downSince = undefined;
      this.#resume(subscriber);
    });
    subscriber.on("end", () => {
      if (this.#closed) return;
      this.#fail(
        subscriber,
        new StoreError(
          `Lost the notification connection to ${this.#endpoint.what} for more than ${
            SUBSCRIBER_OUTAGE_LIMIT_MS / 1000
          } s; watches stopped`,
        ),
      );
    });
    return subscriber;
  }

  // After a reconnection: the setting again, every subscription again, then
  // every listener re-reads.
  async #resume(subscriber: Redis): Promise<void> {
    try {
      await ensureKeyspaceEvents(
        this.#commands,
        subscriber,
        this.#endpoint.db,
        this.#endpoint.what,
      );
      const channels = [...this.#channels.keys()];
      const patterns = [...this.#patterns.keys()];
      await Promise.all([
        channels.length ? subscriber.subscribe(...channels) : undefined,
        patterns.length ? subscriber.psubscribe(...patterns) : undefined,
      ]);
    } catch (error) {
      // Dropped again meanwhile: the next "ready" resumes.
      if (this.#closed || subscriber.status !== "ready") return;
      this.#fail(
        subscriber,
        error instanceof StoreError ? error : new StoreError(
          `Watches stopped: after reconnecting to ${this.#endpoint.what}, notifications could not be set up again: ${
            (error as Error)?.message ?? error
          }`,
          { cause: error },
        ),
      );
      return;
    }
    for (
      const topic of [...this.#channels.values(), ...this.#patterns.values()]
    ) {
      for (const listener of [...topic.listeners]) listener.resync();
    }
  }

  // Ends every listener with `error`; the next watch starts afresh.
  #fail(subscriber: Redis, error: unknown): void {
    if (this.#subscriber !== subscriber) return;
    this.#subscriber = undefined;
    this.#starting = undefined;
    const topics = [...this.#channels.values(), ...this.#patterns.values()];
    this.#channels = new Map();
    this.#patterns = new Map();
    subscriber.disconnect();
    for (const topic of topics) {
      for (const listener of topic.listeners) listener.error(error);
    }
  }
}
