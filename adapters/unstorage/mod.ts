/**
 * Any store as an [unstorage](https://unstorage.unjs.io) driver, `watch`
 * included: unstorage's `:`-separated keys become `/` paths (`a:b:c` is
 * stored at `a/b/c`), each segment escaped where a store key could not hold
 * it. Values are stored as the strings unstorage gives (raw items as bytes).
 *
 * @example
 * ```ts ignore
 * import { createStorage } from "unstorage";
 * import { valkeyrieDriver } from "@valkeyrie/valkeyrie/unstorage";
 *
 * const storage = createStorage({
 *   driver: valkeyrieDriver({ store: "etcd://127.0.0.1:2379", base: "app" }),
 * });
 * await storage.setItem("config:db:host", "10.0.0.5");
 * await storage.watch((event, key) => console.log(event, key));
 * ```
 *
 * @module
 */

// The public entry point: it registers the built-in backends openStore needs.
import {
  InvalidConfigurationError,
  type KVPair,
  type OpenOptions,
  openStore,
  type Store,
} from "../../mod.ts";
import {
  checkOption,
  checkOptionNames,
  checkStoreArgument,
} from "../options.ts";
import { escapeSegment, unescapeSegment } from "../segment.ts";

/** Options of {@linkcode valkeyrieDriver}. */
export interface ValkeyrieDriverOptions {
  /** The store, or the URL of one to open (then closed by `dispose()`). */
  store: Store | string | URL;
  /** Options for `openStore`, when `store` is a URL. */
  openOptions?: OpenOptions;
  /** A key prefix (`:`-separated) every item is stored under. */
  base?: string;
  /** Default time to live of items, in seconds (as unstorage's drivers). */
  ttl?: number;
}

/** Per-call options unstorage passes to a driver. */
export interface UnstorageTransactionOptions {
  /** Time to live of this item, in seconds. */
  ttl?: number;
  /** Other options, ignored. */
  [option: string]: unknown;
}

/** unstorage's watch event. */
export type UnstorageWatchEvent = "update" | "remove";

/** An unstorage driver (structurally unstorage's `Driver`). */
export interface UnstorageDriver {
  /** `"valkeyrie"`. */
  name: string;
  /** The options it was made with. */
  options: ValkeyrieDriverOptions;
  /** The store (once opened). */
  getInstance(): Promise<Store>;
  /** Whether the item exists. */
  hasItem(key: string, opts?: UnstorageTransactionOptions): Promise<boolean>;
  /** The item as a string, or `null`. */
  getItem(
    key: string,
    opts?: UnstorageTransactionOptions,
  ): Promise<string | null>;
  /** The item's bytes, or `null`. */
  getItemRaw(
    key: string,
    opts?: UnstorageTransactionOptions,
  ): Promise<Uint8Array | null>;
  /** Writes a string item. */
  setItem(
    key: string,
    value: string,
    opts?: UnstorageTransactionOptions,
  ): Promise<void>;
  /** Writes a raw item (bytes, or what converts to them). */
  setItemRaw(
    key: string,
    value: unknown,
    opts?: UnstorageTransactionOptions,
  ): Promise<void>;
  /** Deletes the item. */
  removeItem(key: string, opts?: UnstorageTransactionOptions): Promise<void>;
  /** Every key under `base`, `:`-separated. */
  getKeys(base: string, opts?: UnstorageTransactionOptions): Promise<string[]>;
  /** Deletes every item under `base`. */
  clear(base: string, opts?: UnstorageTransactionOptions): Promise<void>;
  /** Closes the store if the driver opened it. */
  dispose(): Promise<void>;
  /** Calls `callback` on every change; resolves the function that stops it. */
  watch(
    callback: (event: UnstorageWatchEvent, key: string) => void,
  ): Promise<() => Promise<void>>;
}

const OPTIONS = ["store", "openOptions", "base", "ttl"];

/** Checks the driver's options; resolves whether it opens (owns) its store. */
function checkOptions(options: ValkeyrieDriverOptions): boolean {
  const where = "valkeyrieDriver";
  checkOptionNames(where, options, OPTIONS);
  const owned = checkStoreArgument(`${where}: store`, options.store);
  checkOption(
    `${where}: openOptions`,
    options.openOptions,
    "an object",
    (value) => typeof value === "object" && value !== null,
  );
  if (options.openOptions !== undefined && !owned) {
    throw new InvalidConfigurationError(
      `${where}: openOptions apply to a store URL, and store is a Store`,
    );
  }
  checkOption(
    `${where}: base`,
    options.base,
    "a string",
    (value) => typeof value === "string",
  );
  checkOption(
    `${where}: ttl`,
    options.ttl,
    "a positive number of seconds",
    (value) => typeof value === "number" && Number.isFinite(value) && value > 0,
  );
  return owned;
}

/** After a failed watch, the driver watches again this long later. */
const REWATCH_DELAY_MS = 1_000;

const decoder = new TextDecoder();

/**
 * Makes an unstorage driver over a store.
 *
 * @param options The store and where to keep items.
 * @returns The driver, for `createStorage({ driver })`.
 *
 * @example
 * ```ts ignore
 * import { createStorage } from "unstorage";
 * import { valkeyrieDriver } from "@valkeyrie/valkeyrie/unstorage";
 *
 * const storage = createStorage({ driver: valkeyrieDriver({ store: "memory:" }) });
 * ```
 */
export function valkeyrieDriver(
  options: ValkeyrieDriverOptions,
): UnstorageDriver {
  const owned = checkOptions(options);
  let opened: Promise<Store> | undefined;
  const store = () =>
    opened ??= owned
      ? openStore(options.store as string | URL, options.openOptions)
      : Promise.resolve(options.store as Store);
  const base = toPath(options.base ?? "");
  const path = (key: string) => join(base, toPath(key));
  const ttlOf = (opts?: UnstorageTransactionOptions) => {
    const seconds = opts?.ttl ?? options.ttl;
    return typeof seconds === "number" && seconds > 0
      ? { ttl: seconds * 1000 }
      : undefined;
  };
  const fromPath = (full: string) =>
    (base === "" ? full : full.slice(base.length + 1)).split("/")
      .map(unescapeSegment).join(":");

  return {
    name: "valkeyrie",
    options,
    getInstance: store,
    hasItem: async (key) => await (await store()).exists(path(key)),
    getItem: async (key) => {
      const pair = await (await store()).get(path(key));
      return pair ? decoder.decode(pair.value) : null;
    },
    getItemRaw: async (key) =>
      (await (await store()).get(path(key)))?.value ?? null,
    setItem: async (key, value, opts) => {
      await (await store()).put(path(key), value, ttlOf(opts));
    },
    setItemRaw: async (key, value, opts) => {
      await (await store()).put(path(key), toBytes(value), ttlOf(opts));
    },
    removeItem: async (key) => {
      await (await store()).delete(path(key));
    },
    // unstorage applies `maxDepth` itself to drivers that do not flag it.
    getKeys: async (prefix) => {
      const pairs = await (await store()).list(join(base, toPath(prefix)));
      return pairs.map((pair) => fromPath(pair.key));
    },
    clear: async (prefix) => {
      await (await store()).deleteTree(join(base, toPath(prefix)));
    },
    dispose: async () => {
      if (owned && opened) await (await opened).close();
    },
    watch: async (callback) => {
      const s = await store();
      const stop = new AbortController();
      void watchChanges(
        s,
        base,
        stop.signal,
        (event, full) => callback(event, fromPath(full)),
      );
      return () => {
        stop.abort();
        return Promise.resolve();
      };
    },
  };
}

// Turns tree snapshots into unstorage's per-key events; after a failure it
// watches again and reports what changed meanwhile.
async function watchChanges(
  store: Store,
  tree: string,
  signal: AbortSignal,
  emit: (event: UnstorageWatchEvent, key: string) => void,
): Promise<void> {
  let known: Map<string, bigint> | undefined;
  while (!signal.aborted) {
    try {
      for await (const snapshot of store.watchTree(tree, { signal })) {
        const next = indexOf(snapshot);
        if (known) {
          for (const [key, index] of next) {
            if (known.get(key) !== index) emit("update", key);
          }
          for (const key of known.keys()) {
            if (!next.has(key)) emit("remove", key);
          }
        }
        known = next;
      }
      return; // the store closed
    } catch {
      if (signal.aborted) return;
      await new Promise((resolve) => setTimeout(resolve, REWATCH_DELAY_MS));
    }
  }
}

function indexOf(pairs: KVPair[]): Map<string, bigint> {
  return new Map(pairs.map((pair) => [pair.key, pair.lastIndex]));
}

// unstorage's key normalisation: `/` and `\` separate too, empty segments
// and a query string go.
function toPath(key: string | undefined): string {
  return (key ?? "").split("?")[0].split(/[:/\\]+/).filter((s) => s !== "")
    .map(escapeSegment).join("/");
}

function join(base: string, path: string): string {
  return base === "" ? path : path === "" ? base : `${base}/${path}`;
}

function toBytes(value: unknown): Uint8Array | string {
  if (value instanceof Uint8Array || typeof value === "string") return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  return JSON.stringify(value);
}
