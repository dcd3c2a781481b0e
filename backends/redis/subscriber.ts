/**
 * One subscriber connection to one server: it makes sure the server
 * publishes keyspace notifications, subscribes the store's channels and
 * patterns there, and comes back after a dropped connection.
 *
 * When the connection drops, notifications published meanwhile are lost. On
 * reconnecting, the subscriber checks the server's notification setting
 * again (a restarted server or a promoted replica may not have it),
 * subscribes everything again, and then tells its owner, whose listeners
 * re-read what they may have missed. Nothing is sent while it is settling
 * (connecting, checking, subscribing again): a subscription asked for then
 * is made with the others, so the connection never enters subscriber mode
 * before `CONFIG` ran on it.
 *
 * @module
 */

import type { Cluster, Redis } from "ioredis";
import { StoreError } from "../../core/errors.ts";
import { openConnection } from "./connection.ts";
import { ensureKeyspaceEvents } from "./keyspace_events.ts";
import { probeKey } from "./names.ts";
import type { NotifyingNode } from "./topology.ts";

/**
 * How long a subscriber may stay disconnected before its listeners get an
 * error instead of waiting on: long enough to ride out a failover (seconds)
 * or a server restart, short enough that a watch of a server that is gone
 * says so.
 */
export const SUBSCRIBER_OUTAGE_LIMIT_MS = 30_000;

/** Longest pause between reconnection attempts of a subscriber. */
const MAX_RECONNECT_DELAY_MS = 1_000;

/** A channel (`SUBSCRIBE`) or a pattern (`PSUBSCRIBE`). */
export type TopicKind = "channel" | "pattern";

/** What a subscriber reports to the store's notifications. */
export interface SubscriberOwner {
  /** The channels and patterns to subscribe now. */
  topics(kind: TopicKind): string[];
  /** A notification on `channel`, heard through `topic`. */
  message(kind: TopicKind, topic: string, channel: string): void;
  /** Back after a dropped connection: notifications may have been missed. */
  resumed(subscriber: Subscriber): void;
  /** Down for good: its listeners must learn why. */
  failed(subscriber: Subscriber, error: StoreError): void;
  /** The connection dropped: the server may be failing over. */
  dropped(subscriber: Subscriber): void;
}

/** The subscriber connection to one server. */
export class Subscriber {
  /** The server's id in the topology. */
  readonly id: string;
  readonly #node: NotifyingNode;
  readonly #commands: Redis | Cluster;
  readonly #owner: SubscriberOwner;
  #connection: Redis | undefined;
  #live = false;
  #settled = new Settled();
  #closed = false;

  /**
   * @param node The server.
   * @param commands The store's command connection (for a probe's writes).
   * @param owner Where notifications and state changes go.
   */
  constructor(
    node: NotifyingNode,
    commands: Redis | Cluster,
    owner: SubscriberOwner,
  ) {
    this.id = node.id;
    this.#node = node;
    this.#commands = commands;
    this.#owner = owner;
  }

  /**
   * Connects, makes sure notifications are on, and subscribes the owner's
   * topics. Rejects with `NotReachableError` or a `StoreError` that says
   * what to configure.
   */
  async start(): Promise<void> {
    try {
      await this.#start();
    } catch (error) {
      this.#settled.reject(error);
      this.close();
      throw error;
    }
  }

  async #start(): Promise<void> {
    let downSince: number | undefined;
    const connection = await openConnection(this.#node.endpoint, {
      connectionName: "valkeyrie-notifications",
      // Subscriptions are made again by #resume, after CONFIG: a command
      // ioredis sent again on its own could come first.
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (attempt) => {
        downSince ??= Date.now();
        if (!this.#closed) this.#owner.dropped(this);
        if (Date.now() - downSince > SUBSCRIBER_OUTAGE_LIMIT_MS) return null;
        return Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS);
      },
    }, undefined);
    this.#connection = connection;
    if (this.#closed) {
      connection.disconnect();
      return;
    }
    connection.on("message", (channel: string) => {
      this.#owner.message("channel", channel, channel);
    });
    connection.on("pmessage", (pattern: string, channel: string) => {
      this.#owner.message("pattern", pattern, channel);
    });
    await this.#settle(connection);
    connection.on("close", () => {
      this.#live = false;
      // Who waits on a settling that is cut short waits for the next one.
      if (this.#settled.done) this.#settled = new Settled();
    });
    connection.on("ready", () => {
      downSince = undefined;
      this.#resume(connection);
    });
    connection.on("end", () => {
      if (this.#closed) return;
      const error = new StoreError(
        `Lost the notification connection to ${this.#node.endpoint.what} for more than ${
          SUBSCRIBER_OUTAGE_LIMIT_MS / 1000
        } s; watches stopped`,
      );
      this.#settled.reject(error);
      this.#owner.failed(this, error);
    });
  }

  /**
   * Subscribes `name`. Resolves when the server confirmed it, or, while the
   * connection is down, once it is back and everything is subscribed again.
   */
  subscribe(kind: TopicKind, name: string): Promise<unknown> {
    const connection = this.#connection;
    if (!this.#live || !connection) return this.#settled.promise;
    return kind === "channel"
      ? connection.subscribe(name)
      : connection.psubscribe(name);
  }

  /** Unsubscribes `name` (a connection that is down forgets it anyway). */
  unsubscribe(kind: TopicKind, name: string): void {
    const connection = this.#connection;
    if (!this.#live || !connection) return;
    const done = kind === "channel"
      ? connection.unsubscribe(name)
      : connection.punsubscribe(name);
    done.catch(() => {});
  }

  /** Drops the connection. */
  close(): void {
    this.#closed = true;
    this.#live = false;
    this.#connection?.disconnect();
  }

  // After a reconnection: the setting again, every subscription again, then
  // the owner's listeners re-read.
  async #resume(connection: Redis): Promise<void> {
    try {
      await this.#settle(connection);
    } catch (error) {
      // Dropped again meanwhile: the next "ready" resumes.
      if (this.#closed || connection.status !== "ready") return;
      const failure = error instanceof StoreError ? error : new StoreError(
        `Watches stopped: after reconnecting to ${this.#node.endpoint.what}, notifications could not be set up again: ${
          (error as Error)?.message ?? error
        }`,
        { cause: error },
      );
      this.#settled.reject(failure);
      this.#owner.failed(this, failure);
      return;
    }
    this.#owner.resumed(this);
  }

  // Checks the notification setting, then subscribes what the owner has
  // now; subscriptions asked for meanwhile are among them.
  async #settle(connection: Redis): Promise<void> {
    await ensureKeyspaceEvents({
      config: connection,
      commands: this.#commands,
      probeKey: probeKey(this.#node.slot, crypto.randomUUID()),
      db: this.#node.endpoint.db,
      what: this.#node.endpoint.what,
    });
    const channels = this.#owner.topics("channel");
    const patterns = this.#owner.topics("pattern");
    await subscribeAll(connection, channels, patterns);
    // From here on, subscriptions go out at once; those asked for while the
    // ones above went out are made now.
    this.#live = true;
    const more = (kind: TopicKind, done: string[]) => {
      const made = new Set(done);
      return this.#owner.topics(kind).filter((name) => !made.has(name));
    };
    await subscribeAll(
      connection,
      more("channel", channels),
      more("pattern", patterns),
    );
    this.#settled.resolve();
  }
}

function subscribeAll(
  connection: Redis,
  channels: string[],
  patterns: string[],
): Promise<unknown> {
  return Promise.all([
    channels.length ? connection.subscribe(...channels) : undefined,
    patterns.length ? connection.psubscribe(...patterns) : undefined,
  ]);
}

// When a subscriber is (again) subscribed to everything: a promise with its
// settling functions. A failure nobody waits for is no news.
class Settled {
  readonly promise: Promise<void>;
  resolve!: () => void;
  reject!: (error: unknown) => void;
  done = false;

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = () => {
        this.done = true;
        resolve();
      };
      this.reject = (error) => {
        this.done = true;
        reject(error);
      };
    });
    this.promise.catch(() => {});
  }
}
