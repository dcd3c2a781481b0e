/**
 * The backend registry: valkeyrie's `AddStore`/`NewStore`, and opening a
 * store by URL.
 *
 * @module
 */

import { InvalidConfigurationError, UnknownBackendError } from "./errors.ts";
import { parseStoreUrl, type StoreUrl } from "./url.ts";
import type { OpenOptions, Store } from "./types.ts";

/** What a backend's factory receives besides its endpoints. */
export interface FactoryConfig extends OpenOptions {
  /** The parsed URL, when the store is opened by {@linkcode openStore}. */
  url?: StoreUrl;
}

/**
 * Opens a store of one backend.
 *
 * @param endpoints Where the servers are (`host:port` each), or the path of
 * a file store.
 * @param config The backend's settings.
 */
export type StoreFactory = (
  endpoints: string[],
  config: FactoryConfig,
) => Store | Promise<Store>;

const factories = new Map<string, StoreFactory>();

/**
 * URL schemes of the built-in backends; any other scheme names a backend
 * directly (so `register("mine", f)` opens `mine://...`).
 */
const SCHEMES: Readonly<Record<string, string>> = {
  memory: "memory",
  file: "file",
  redis: "redis",
  rediss: "redis",
  etcd: "etcd",
  etcds: "etcd",
  consul: "consul",
  consuls: "consul",
  zk: "zookeeper",
  zks: "zookeeper",
  dynamodb: "dynamodb",
};

/** Schemes that turn TLS on. */
const SECURE_SCHEMES = new Set(["rediss", "etcds", "consuls", "zks"]);

/**
 * Registers (or replaces) a backend under `name`.
 *
 * @param name The backend's name, also its URL scheme.
 * @param factory Opens a store of the backend.
 *
 * @example
 * ```ts
 * import { register, unregister, backends } from "./registry.ts";
 * import { MemoryStore } from "../backends/memory/mod.ts";
 *
 * register("scratch", () => new MemoryStore());
 * console.log(backends().includes("scratch")); // true
 * unregister("scratch");
 * ```
 */
export function register(name: string, factory: StoreFactory): void {
  if (typeof name !== "string" || !/^[a-z][a-z0-9+.-]*$/.test(name)) {
    throw new InvalidConfigurationError(
      `Backend name ${
        JSON.stringify(name)
      } must be lower case letters, digits, '+', '.' or '-'`,
    );
  }
  if (typeof factory !== "function") {
    throw new InvalidConfigurationError("A backend factory must be a function");
  }
  factories.set(name, factory);
}

/**
 * Removes the backend registered under `name` (no error if there is none).
 *
 * @param name The backend's name.
 *
 * @example
 * ```ts
 * import { unregister } from "./registry.ts";
 *
 * unregister("nothing-here");
 * ```
 */
export function unregister(name: string): void {
  factories.delete(name);
}

/**
 * The names of the registered backends, sorted.
 *
 * @returns The names.
 *
 * @example
 * ```ts
 * import { backends } from "./registry.ts";
 *
 * console.log(backends());
 * ```
 */
export function backends(): string[] {
  return [...factories.keys()].sort();
}

/**
 * Opens a store of the backend registered under `name`, as valkeyrie's
 * `NewStore` did.
 *
 * @param name The backend's name.
 * @param endpoints Where its servers are.
 * @param config Its settings.
 * @returns The open store.
 *
 * @example
 * ```ts ignore
 * const store = await newStore("redis", ["127.0.0.1:6379"], { prefix: "app" });
 * ```
 */
export async function newStore(
  name: string,
  endpoints: string[],
  config: FactoryConfig = {},
): Promise<Store> {
  const factory = factories.get(name);
  if (!factory) {
    throw new UnknownBackendError(
      `Unknown backend ${JSON.stringify(name)} (registered: ${
        backends().join(", ") || "none"
      })`,
    );
  }
  if (
    !Array.isArray(endpoints) || endpoints.some((e) => typeof e !== "string")
  ) {
    throw new InvalidConfigurationError(
      "endpoints must be an array of strings",
    );
  }
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw new InvalidConfigurationError(
      `The configuration of ${name} must be an object`,
    );
  }
  config.signal?.throwIfAborted();
  return await factory(endpoints, config);
}

/**
 * Opens a store by URL; the scheme picks the backend. Only that backend's
 * module (and its npm client) is loaded.
 *
 * Schemes: `memory:`, `file:` (the embedded engine), `redis://`, `rediss://`,
 * `etcd://`, `etcds://`, `consul://`, `consuls://`, `zk://`, `zks://`,
 * `dynamodb://TABLE?endpoint=...&region=...`.
 *
 * @param url The store's URL.
 * @param options Settings: `prefix`, `connectTimeout`, TLS, credentials and
 * what the backend documents.
 * @returns The open store.
 *
 * @example
 * ```ts ignore
 * await using store = await openStore("memory:");
 * await store.put("greeting", "hello");
 * ```
 */
export function openStore(
  url: string | URL,
  options: OpenOptions = {},
): Promise<Store> {
  let parsed: StoreUrl;
  try {
    parsed = parseStoreUrl(url);
  } catch (error) {
    return Promise.reject(error);
  }
  const name = SCHEMES[parsed.scheme] ?? parsed.scheme;
  if (!factories.has(name)) {
    return Promise.reject(
      new UnknownBackendError(
        `No backend for URL scheme "${parsed.scheme}:" (registered: ${
          backends().join(", ") || "none"
        })`,
      ),
    );
  }
  const config: FactoryConfig = { ...options, url: parsed };
  if (parsed.username !== undefined && options.username === undefined) {
    config.username = parsed.username;
  }
  if (parsed.password !== undefined && options.password === undefined) {
    config.password = parsed.password;
  }
  if (SECURE_SCHEMES.has(parsed.scheme) && options.tls === undefined) {
    config.tls = true;
  }
  return newStore(name, parsed.hosts.length ? parsed.hosts : [], config);
}
