/**
 * Any store as a [Keyv](https://keyv.org) storage adapter: Keyv's caching
 * API over Redis, etcd, ZooKeeper, Consul, DynamoDB or the embedded engine.
 *
 * Keyv's namespace becomes a key segment: with the default namespace `keyv`,
 * `keyv.set("user:42", ...)` is stored at `keyv/user:42`; characters a store
 * key may not hold (`/`, control characters, a leading `.`) are escaped as
 * `%XX`. `clear()` deletes the namespace's tree. Keyv's TTL becomes the
 * store's TTL. It passes Keyv's own compliance suite, `@keyv/test-suite`.
 *
 * @example
 * ```ts ignore
 * import Keyv from "keyv";
 * import { KeyvValkeyrie } from "@valkeyrie/valkeyrie/keyv";
 *
 * const keyv = new Keyv({ store: new KeyvValkeyrie("redis://127.0.0.1:6379") });
 * await keyv.set("greeting", "hello", 60_000);
 * console.log(await keyv.get("greeting"));
 * await keyv.disconnect();
 * ```
 *
 * @module
 */

import { EventEmitter } from "node:events";
// The public entry point: it registers the built-in backends openStore needs.
import {
  InvalidArgumentError,
  type OpenOptions,
  openStore,
  type Store,
} from "../../mod.ts";
import { escapeSegment, unescapeSegment } from "../segment.ts";

/** Options of {@linkcode KeyvValkeyrie}. */
export interface KeyvValkeyrieOptions {
  /** Options for `openStore`, when the adapter is given a URL. */
  openOptions?: OpenOptions;
}

const decoder = new TextDecoder();

/**
 * A Keyv storage adapter over a {@linkcode Store}. Given a URL, it opens the
 * store itself and closes it on `disconnect()`; given a store, it leaves
 * closing to its owner.
 *
 * @example
 * ```ts ignore
 * import Keyv from "keyv";
 * import { openStore } from "@valkeyrie/valkeyrie";
 * import { KeyvValkeyrie } from "@valkeyrie/valkeyrie/keyv";
 *
 * await using store = await openStore("file:./cache.db");
 * const keyv = new Keyv({ store: new KeyvValkeyrie(store), namespace: "cache" });
 * await keyv.set("answer", 42);
 * ```
 */
export class KeyvValkeyrie extends EventEmitter {
  /** Keyv's options of this adapter (Keyv reads `opts.dialect` and `opts.url`). */
  readonly opts: { dialect: string; url: string };
  /** The namespace Keyv sets; keys arrive prefixed with `namespace:`. */
  namespace?: string;
  #store: Promise<Store>;
  #owned: boolean;

  /**
   * Creates the adapter.
   *
   * @param store A store, or the URL of one to open.
   * @param options How to open the URL.
   */
  constructor(store: Store | string | URL, options: KeyvValkeyrieOptions = {}) {
    super();
    this.#owned = typeof store === "string" || store instanceof URL;
    // Keyv offers iterator() only for adapters whose url names a dialect on
    // its list; "valkeyrie:" contains "valkey", which is on it.
    const where = this.#owned ? String(store) : (store as Store).backend;
    this.opts = { dialect: "valkeyrie", url: `valkeyrie:${where}` };
    this.#store = this.#owned
      ? openStore(store as string | URL, options.openOptions)
      : Promise.resolve(store as Store);
    // Keyv reports errors through 'error' events; an unhandled one would
    // throw, so the open failure is also surfaced by every call.
    this.#store.catch((error) => this.emit("error", error));
  }

  /**
   * The stored value at `key`, or `undefined`.
   *
   * @param key Keyv's key (with its namespace prefix).
   * @returns The value Keyv stored.
   */
  async get<Value>(key: string): Promise<Value | undefined> {
    const pair = await (await this.#store).get(this.#path(key));
    return pair ? decoder.decode(pair.value) as Value : undefined;
  }

  /**
   * The stored values at `keys`, `undefined` where absent.
   *
   * @param keys Keyv's keys.
   * @returns The values, in order.
   */
  getMany<Value>(keys: string[]): Promise<Array<Value | undefined>> {
    return Promise.all(keys.map((key) => this.get<Value>(key)));
  }

  /**
   * Stores `value` at `key`, expiring after `ttl` milliseconds if given.
   *
   * @param key Keyv's key.
   * @param value What Keyv serialized (a string).
   * @param ttl Time to live in milliseconds.
   * @returns `true`.
   */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    if (typeof value !== "string" && !(value instanceof Uint8Array)) {
      throw new InvalidArgumentError(
        "The Keyv adapter stores serialized values: keep Keyv's serializer on",
      );
    }
    const options = typeof ttl === "number" && ttl > 0 ? { ttl } : undefined;
    await (await this.#store).put(this.#path(key), value, options);
    return true;
  }

  /**
   * Stores several entries.
   *
   * @param entries The keys, values and TTLs.
   */
  async setMany(
    entries: Array<{ key: string; value: unknown; ttl?: number }>,
  ): Promise<void> {
    await Promise.all(entries.map((e) => this.set(e.key, e.value, e.ttl)));
  }

  /**
   * Deletes `key`.
   *
   * @param key Keyv's key.
   * @returns Whether it existed.
   */
  async delete(key: string): Promise<boolean> {
    const store = await this.#store;
    const path = this.#path(key);
    if (!(await store.exists(path))) return false;
    await store.delete(path);
    return true;
  }

  /**
   * Deletes several keys.
   *
   * @param keys Keyv's keys.
   * @returns Whether every one existed.
   */
  async deleteMany(keys: string[]): Promise<boolean> {
    const results = await Promise.all(keys.map((key) => this.delete(key)));
    return results.every(Boolean);
  }

  /** Deletes every key of the namespace (everything, without one). */
  async clear(): Promise<void> {
    const store = await this.#store;
    await store.deleteTree(this.namespace ? escapeSegment(this.namespace) : "");
  }

  /**
   * Whether `key` exists.
   *
   * @param key Keyv's key.
   * @returns `true` if it does.
   */
  async has(key: string): Promise<boolean> {
    return await (await this.#store).exists(this.#path(key));
  }

  /**
   * Whether each of `keys` exists.
   *
   * @param keys Keyv's keys.
   * @returns One boolean per key.
   */
  hasMany(keys: string[]): Promise<boolean[]> {
    return Promise.all(keys.map((key) => this.has(key)));
  }

  /**
   * Every entry of `namespace`, as `[key, value]` with Keyv's prefixed key.
   *
   * @param namespace The namespace (Keyv passes its own).
   * @returns The entries.
   */
  async *iterator<Value>(
    namespace?: string,
  ): AsyncGenerator<[string, Value], void> {
    const store = await this.#store;
    const dir = namespace ? escapeSegment(namespace) : "";
    for (const pair of await store.list(dir)) {
      const name = dir === "" ? pair.key : pair.key.slice(dir.length + 1);
      if (name.includes("/")) continue; // another namespace's key
      const key = unescapeSegment(name);
      yield [
        namespace ? `${namespace}:${key}` : key,
        decoder.decode(pair.value) as Value,
      ];
    }
  }

  /** Closes the store if the adapter opened it. */
  async disconnect(): Promise<void> {
    if (this.#owned) await (await this.#store).close();
  }

  #path(key: string): string {
    const namespace = this.namespace;
    if (namespace && key.startsWith(`${namespace}:`)) {
      return `${escapeSegment(namespace)}/${
        escapeSegment(key.slice(namespace.length + 1))
      }`;
    }
    return escapeSegment(key);
  }
}
