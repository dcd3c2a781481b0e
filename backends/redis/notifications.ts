/**
 * Keyspace notifications: one subscriber connection per server (per master
 * on a Redis Cluster, where notifications are local to the node that holds
 * the key), shared by every watch and lock wait of the store.
 *
 * A key watch subscribes to the key's channel (`__keyspace@DB__:KEY`, an
 * exact name: no pattern, nothing to escape); a tree watch subscribes to the
 * pattern of its prefix, with the glob characters of the prefix escaped. A
 * channel or pattern is subscribed once however many listeners share it, on
 * every server, and unsubscribed when the last one leaves. On a cluster a
 * key is heard wherever it lives, also after its slot moved to another
 * master.
 *
 * When a subscriber comes back after a dropped connection, or a cluster
 * gains a master (a replica promoted in a failover), every listener re-reads
 * what it may have missed. A master that leaves the cluster's layout loses
 * its subscriber quietly.
 *
 * @module
 */

import {
  NotReachableError,
  StoreClosedError,
  StoreError,
} from "../../core/errors.ts";
import { keyspacePrefix, startsWithPattern } from "./names.ts";
import {
  Subscriber,
  type SubscriberOwner,
  type TopicKind,
} from "./subscriber.ts";
import type { Topology } from "./topology.ts";

export { SUBSCRIBER_OUTAGE_LIMIT_MS } from "./subscriber.ts";

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
 * After the server's notifications were found unusable, watches fail at
 * once with that error for this long before the store checks again (an
 * operator may have turned them on).
 */
const RECHECK_AFTER_FAILURE_MS = 30_000;

interface Topic {
  readonly listeners: Set<Listener>;
  /** Resolves when every server confirmed the subscription. */
  readonly subscribed: Promise<unknown>;
}

/** The keyspace notifications of one store. */
export class Notifications implements SubscriberOwner {
  readonly #topology: Topology;
  readonly #prefix: string;
  #starting: Promise<void> | undefined;
  #subscribers = new Map<string, Subscriber>();
  #stopFollowing: (() => void) | undefined;
  #failure: { error: unknown; at: number } | undefined;
  #channels = new Map<string, Topic>();
  #patterns = new Map<string, Topic>();
  #closed = false;

  /**
   * @param topology The servers, and the store's command connection.
   * @param db The database number, in notification channels.
   */
  constructor(topology: Topology, db: number) {
    this.#topology = topology;
    this.#prefix = keyspacePrefix(db);
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

  /** Drops every subscriber connection (also those still connecting). */
  close(): void {
    this.#closed = true;
    this.#stopFollowing?.();
    for (const subscriber of this.#subscribers.values()) subscriber.close();
    this.#subscribers.clear();
  }

  topics(kind: TopicKind): string[] {
    return [...(kind === "channel" ? this.#channels : this.#patterns).keys()];
  }

  message(kind: TopicKind, topic: string, channel: string): void {
    const found = (kind === "channel" ? this.#channels : this.#patterns).get(
      topic,
    );
    if (!found) return;
    const key = channel.slice(this.#prefix.length);
    for (const listener of [...found.listeners]) listener.changed(key);
  }

  resumed(subscriber: Subscriber): void {
    if (this.#subscribers.get(subscriber.id) === subscriber) this.#resync();
  }

  dropped(): void {
    this.#topology.refresh();
  }

  // Ends every listener with `error`; the next watch starts afresh.
  failed(subscriber: Subscriber, error: StoreError): void {
    if (this.#subscribers.get(subscriber.id) !== subscriber) return;
    this.#stopFollowing?.();
    this.#stopFollowing = undefined;
    for (const each of this.#subscribers.values()) each.close();
    this.#subscribers = new Map();
    this.#starting = undefined;
    const topics = [...this.#channels.values(), ...this.#patterns.values()];
    this.#channels = new Map();
    this.#patterns = new Map();
    for (const topic of topics) {
      for (const listener of topic.listeners) listener.error(error);
    }
  }

  async #listen(
    kind: TopicKind,
    name: string,
    listener: Listener,
    signal: AbortSignal,
  ): Promise<void> {
    await this.#start();
    if (signal.aborted) return;
    const topics = kind === "channel" ? this.#channels : this.#patterns;
    let topic = topics.get(name);
    if (!topic) {
      const subscribed = Promise.all(
        [...this.#subscribers.values()].map((subscriber) =>
          subscriber.subscribe(kind, name)
        ),
      );
      topic = { listeners: new Set(), subscribed };
      topics.set(name, topic);
    }
    const joined = topic;
    joined.listeners.add(listener);
    const leave = () => {
      joined.listeners.delete(listener);
      if (joined.listeners.size > 0 || topics.get(name) !== joined) return;
      topics.delete(name);
      for (const subscriber of this.#subscribers.values()) {
        subscriber.unsubscribe(kind, name);
      }
    };
    signal.addEventListener("abort", leave, { once: true });
    try {
      await joined.subscribed;
    } catch (error) {
      if (topics.get(name) === joined) topics.delete(name);
      signal.removeEventListener("abort", leave);
      joined.listeners.delete(listener);
      if (error instanceof StoreError) throw error;
      throw new StoreError(
        `Could not subscribe to ${
          JSON.stringify(name)
        } on ${this.#topology.what}${
          /NOPERM/.test(String(error))
            ? " (the user may not subscribe to it: grant channels with ACL SETUSER USER &*, as Redis matches PSUBSCRIBE patterns literally)"
            : ""
        }: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  // Connects a subscriber to every server and checks their notification
  // settings, once. A server that does not give notifications is remembered
  // for a while (finding out may take a probe); one that cannot be reached
  // is not.
  #start(): Promise<void> {
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

  async #connect(): Promise<void> {
    const subscribers = this.#topology.notifyingNodes().map((node) =>
      new Subscriber(node, this.#topology.client, this)
    );
    for (const subscriber of subscribers) {
      this.#subscribers.set(subscriber.id, subscriber);
    }
    try {
      await Promise.all(subscribers.map((subscriber) => subscriber.start()));
    } catch (error) {
      for (const subscriber of subscribers) {
        subscriber.close();
        this.#subscribers.delete(subscriber.id);
      }
      throw error;
    }
    if (this.#closed) return;
    this.#stopFollowing = this.#topology.onChange(() => this.#follow());
    // The layout may have changed while the subscribers connected.
    this.#follow();
  }

  // Follows the cluster's masters: a master that left loses its subscriber;
  // a new one (a promoted replica) gets one, and every listener re-reads,
  // since the new master took writes the store did not hear.
  #follow(): void {
    if (this.#closed || !this.#stopFollowing) return;
    const nodes = this.#topology.notifyingNodes();
    const current = new Set(nodes.map((node) => node.id));
    for (const [id, subscriber] of this.#subscribers) {
      if (current.has(id)) continue;
      this.#subscribers.delete(id);
      subscriber.close();
    }
    for (const node of nodes) {
      if (this.#subscribers.has(node.id)) continue;
      const subscriber = new Subscriber(node, this.#topology.client, this);
      this.#subscribers.set(node.id, subscriber);
      subscriber.start().then(
        () => this.resumed(subscriber),
        (error) =>
          this.failed(
            subscriber,
            error instanceof StoreError ? error : new StoreError(
              `Watches stopped: could not listen to the new master ${node.id} of ${this.#topology.what}: ${
                (error as Error)?.message ?? error
              }`,
              { cause: error },
            ),
          ),
      );
    }
  }

  #resync(): void {
    for (
      const topic of [...this.#channels.values(), ...this.#patterns.values()]
    ) {
      for (const listener of [...topic.listeners]) listener.resync();
    }
  }
}
