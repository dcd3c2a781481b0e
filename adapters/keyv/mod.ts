/**
 * Any store as a [Keyv](https://keyv.org) storage adapter: Keyv's caching
 * API over Redis, etcd, ZooKeeper, Consul, DynamoDB or the embedded engine.
 *
 * Keyv's namespace becomes a key segment: with the default namespace `keyv`,
 * `keyv.set("user:42", ...)` is stored at `keyv/user:42`; characters a store
 * key may not hold (`/`, control characters, a leading `.`) are escaped as
 * `%XX`. `clear()` deletes the namespace's tree. Keyv's TTL becomes the
 * store's TTL. It passes Keyv's own compliance suite, `@keyv/test-suite`,
 * with Keyv 5 (5.6 and later) and Keyv 6.
 *
 * Keyv 5 and 6 call their stores differently (Keyv 5 with keys prefixed
 * `namespace:` and relative TTLs, Keyv 6 with bare keys and absolute expiry
 * times); the adapter speaks both. Keyv 6 asks every store for its
 * `capabilities` before it uses it, which Keyv 5 never does: an adapter
 * asked speaks Keyv 6's contract from then on. Under Keyv 5, as in Keyv 5
 * itself, a key that starts with its own namespace and `:` is the same key
 * without that prefix.
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
  type PutEntry,
  type Store,
} from "../../mod.ts";
import {
  checkOption,
  checkOptionNames,
  checkStoreArgument,
} from "../options.ts";
import { escapeSegment, unescapeSegment } from "../segment.ts";

/** Options of {@linkcode KeyvValkeyrie}. */
export interface KeyvValkeyrieOptions {
  /** Options for `openStore`, when the adapter is given a URL. */
  openOptions?: OpenOptions;
}

/** One method in {@linkcode KeyvStorageCapability}, as Keyv 6 describes it. */
export interface KeyvStorageMethod {
  /** Whether the adapter has the method. */
  exists: boolean;
  /** Whether it is an `async` function. */
  methodType: "async" | "sync" | "none";
}

/** What the adapter tells Keyv 6 it implements (Keyv 6's own type). */
export interface KeyvStorageCapability {
  /** Always `true`. */
  compatible: boolean;
  /** A full storage adapter. */
  store: "keyvStorage";
  /** Each method of Keyv 6's storage contract. */
  methods: Record<string, KeyvStorageMethod>;
  /** The Keyv 6 contract: `set`/`setMany` take absolute expiry times. */
  expires: true;
}

/** One entry of `setMany`: Keyv 5 gives a `ttl`, Keyv 6 an `expires`. */
export interface KeyvSetEntry {
  /** Keyv's key. */
  key: string;
  /** What Keyv serialized (a string). */
  value: unknown;
  /** Keyv 5: time to live in milliseconds. */
  ttl?: number;
  /** Keyv 6: when the entry expires, in milliseconds since the epoch. */
  expires?: number;
}

const METHODS: Record<string, KeyvStorageMethod> = Object.fromEntries(
  [
    "get",
    "getMany",
    "has",
    "hasMany",
    "set",
    "setMany",
    "delete",
    "deleteMany",
    "clear",
    "disconnect",
    "iterator",
  ].map((name) => [name, { exists: true, methodType: "async" }]),
);

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
  /**
   * The namespace Keyv sets: a key segment above the keys. Keyv 5's keys
   * also arrive prefixed with `namespace:`, which is taken off.
   */
  namespace?: string;
  #store: Promise<Store>;
  #owned: boolean;
  /** Whether Keyv 6 asked for the capabilities, so speaks its contract. */
  #keyv6 = false;

  /**
   * Creates the adapter.
   *
   * @param store A store, or the URL of one to open.
   * @param options How to open the URL.
   */
  constructor(store: Store | string | URL, options: KeyvValkeyrieOptions = {}) {
    super();
    this.#owned = checkStoreArgument("KeyvValkeyrie: store", store);
    checkOptionNames("KeyvValkeyrie", options, ["openOptions"]);
    checkOption(
      "KeyvValkeyrie: openOptions",
      options.openOptions,
      "an object",
      (value) => typeof value === "object" && value !== null,
    );
    // Keyv 5 offers iterator() only for adapters whose url names a dialect on
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
   * Keyv 6's question to a store: which contract it speaks. The answer is
   * Keyv 6's (absolute `expires`, keys without the namespace prefix), so
   * Keyv 6 calls the adapter directly; Keyv 5 never asks, and is answered in
   * its own contract.
   */
  get capabilities(): KeyvStorageCapability {
    this.#keyv6 = true;
    return {
      compatible: true,
      store: "keyvStorage",
      methods: METHODS,
      expires: true,
    };
  }

  /**
   * The stored value at `key`, or `undefined`.
   *
   * @param key Keyv's key.
   * @returns The value Keyv stored.
   */
  async get<Value>(key: string): Promise<Value | undefined> {
    const pair = await (await this.#store).get(this.#path(key));
    return pair ? decoder.decode(pair.value) as Value : undefined;
  }

  /**
   * The stored values at `keys`, `undefined` where absent, in one batch call.
   *
   * @param keys Keyv's keys.
   * @returns The values, in order.
   */
  async getMany<Value>(keys: string[]): Promise<Array<Value | undefined>> {
    const pairs = await (await this.#store).getMany(
      keys.map((key) => this.#path(key)),
    );
    return pairs.map((pair) =>
      pair ? decoder.decode(pair.value) as Value : undefined
    );
  }

  /**
   * Stores `value` at `key`, expiring as Keyv says.
   *
   * @param key Keyv's key.
   * @param value What Keyv serialized (a string).
   * @param expiry Keyv 5: time to live in milliseconds; Keyv 6: the expiry
   * time in milliseconds since the epoch.
   * @returns `true`.
   */
  async set(key: string, value: unknown, expiry?: number): Promise<boolean> {
    const [written] = await this.#setEntries([
      this.#keyv6
        ? { key, value, expires: expiry }
        : { key, value, ttl: expiry },
    ]);
    return written;
  }

  /**
   * Stores several entries in one batch call.
   *
   * @param entries The keys, values and TTLs (Keyv 5) or expiry times (Keyv 6).
   * @returns Keyv 6: `true` for each entry.
   */
  async setMany(entries: KeyvSetEntry[]): Promise<boolean[] | undefined> {
    const written = await this.#setEntries(entries);
    return this.#keyv6 ? written : undefined;
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
   * Deletes several keys in one batch call.
   *
   * @param keys Keyv's keys.
   * @returns Keyv 5: whether every one existed; Keyv 6: whether each did.
   */
  async deleteMany(keys: string[]): Promise<boolean | boolean[]> {
    const store = await this.#store;
    const paths = keys.map((key) => this.#path(key));
    const existed = (await store.getMany(paths)).map((pair) => pair !== null);
    await store.deleteMany(paths);
    return this.#keyv6 ? existed : existed.every(Boolean);
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
   * Whether each of `keys` exists, in one batch call.
   *
   * @param keys Keyv's keys.
   * @returns One boolean per key.
   */
  async hasMany(keys: string[]): Promise<boolean[]> {
    const pairs = await (await this.#store).getMany(
      keys.map((key) => this.#path(key)),
    );
    return pairs.map((pair) => pair !== null);
  }

  /**
   * Every entry of `namespace`, as `[key, value]`: Keyv 5 gets its keys
   * prefixed with `namespace:`, Keyv 6 bare.
   *
   * @param namespace The namespace (Keyv 5 passes its own; Keyv 6 none, and
   * the adapter's is used).
   * @returns The entries.
   */
  async *iterator<Value>(
    namespace: string | undefined = this.#keyv6 ? this.namespace : undefined,
  ): AsyncGenerator<[string, Value], void> {
    const store = await this.#store;
    const dir = namespace ? escapeSegment(namespace) : "";
    for await (const pair of store.scan(dir)) {
      const name = dir === "" ? pair.key : pair.key.slice(dir.length + 1);
      if (name.includes("/")) continue; // another namespace's key
      const key = unescapeSegment(name);
      yield [
        namespace && !this.#keyv6 ? `${namespace}:${key}` : key,
        decoder.decode(pair.value) as Value,
      ];
    }
  }

  /** Closes the store if the adapter opened it. */
  async disconnect(): Promise<void> {
    if (this.#owned) await (await this.#store).close();
  }

  async #setEntries(entries: KeyvSetEntry[]): Promise<boolean[]> {
    const now = Date.now();
    const puts: PutEntry[] = [];
    const gone: string[] = [];
    for (const entry of entries) {
      if (
        typeof entry.value !== "string" && !(entry.value instanceof Uint8Array)
      ) {
        throw new InvalidArgumentError(
          "The Keyv adapter stores serialized values: keep Keyv's serializer on",
        );
      }
      const path = this.#path(entry.key);
      // Store TTLs are whole milliseconds: an expiry time rounds up, so an
      // entry never goes before Keyv's own expiry check would drop it.
      const ttl = typeof entry.expires === "number"
        ? Math.ceil(entry.expires - now)
        : entry.ttl;
      if (typeof entry.expires === "number" && ttl! <= 0) gone.push(path);
      else {
        puts.push({
          key: path,
          value: entry.value,
          ...(typeof ttl === "number" && ttl > 0 ? { ttl } : {}),
        });
      }
    }
    const store = await this.#store;
    // Keyv 6 may hand over an entry already past its expiry: it is deleted.
    if (gone.length > 0) await store.deleteMany(gone);
    if (puts.length > 0) await store.putMany(puts);
    return entries.map(() => true);
  }

  #path(key: string): string {
    const namespace = this.namespace;
    if (!namespace) return escapeSegment(key);
    const name = !this.#keyv6 && key.startsWith(`${namespace}:`)
      ? key.slice(namespace.length + 1)
      : key;
    return `${escapeSegment(namespace)}/${escapeSegment(name)}`;
  }
}
