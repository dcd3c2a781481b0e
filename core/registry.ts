/**
 * The backend registry: valkeyrie's `AddStore`/`NewStore`, and opening a
 * store by URL.
 *
 * @module
 */

import { InvalidConfigurationError, UnknownBackendError } from "./errors.ts";
import { parseStoreUrl, type StoreUrl } from "./url.ts";
import { ConfigReader, type SettingsSchema } from "./config.ts";
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

/**
 * A backend, as one value: its name, its URL schemes, how a URL becomes its
 * settings, and how it opens. Everything the registry knows of a backend is
 * here, so a third-party backend can do all a built-in one does (a TLS
 * scheme of its own included) and core keeps no backend's names.
 *
 * @example A backend of one's own
 * ```ts
 * import { register, unregister, openStore } from "./registry.ts";
 * import { MemoryStore } from "../backends/memory/mod.ts";
 *
 * register({
 *   name: "scratch",
 *   schemes: { scratch: {}, scratchs: { tls: true } },
 *   fromUrl: (url) => ({ name: url.path }),
 *   open: ({ name, prefix }) =>
 *     new MemoryStore({ name: name as string, prefix: prefix as string }),
 * });
 * await using store = await openStore("scratch:jobs");
 * unregister("scratch");
 * ```
 */
export interface BackendDescriptor {
  /** The backend's name, as {@linkcode newStore} and {@linkcode backends} know it. */
  name: string;
  /**
   * Its URL schemes (default: its name alone). A scheme with `tls: true`
   * turns TLS on unless the options say otherwise (`rediss:`, `etcds:`).
   */
  schemes?: Readonly<Record<string, { tls?: boolean }>>;
  /**
   * Its own settings (besides the common `prefix`, `connectTimeout`,
   * `tls`, `username`, `password` and `signal`): their kinds, defaults,
   * bounds and docs. When given, the registry checks a store's settings
   * against it before the backend's module (and its client) loads, and
   * `scripts/settings.ts` writes the backend's options interface and docs
   * table from it.
   */
  settings?: SettingsSchema;
  /**
   * The settings a URL's hosts and path give, such as
   * `{ endpoints: url.hosts, prefix: url.path }`. Its query parameters,
   * user and password are added by the registry, the same way for every
   * backend. Throws `InvalidConfigurationError` for a URL the backend
   * cannot take (default: a URL with hosts or a path is refused).
   */
  fromUrl?: (url: StoreUrl) => Record<string, unknown>;
  /**
   * The settings {@linkcode newStore}'s `endpoints` give (default: a
   * non-empty list is refused).
   */
  fromEndpoints?: (endpoints: string[]) => Record<string, unknown>;
  /**
   * Opens a store from its settings: those the URL or the endpoints gave,
   * overridden by the options the caller passed.
   */
  open(settings: OpenOptions): Store | Promise<Store>;
}

const descriptors = new Map<string, BackendDescriptor>();
/** Each registered scheme's backend and whether it turns TLS on. */
const schemes = new Map<string, { backend: string; tls: boolean }>();

/**
 * Registers (or replaces) a backend: a {@linkcode BackendDescriptor}, or,
 * as valkeyrie's `AddStore` did, a name (also its one URL scheme) and a
 * factory.
 *
 * @param backend The backend's descriptor, or its name.
 * @param factory With a name: opens a store of the backend.
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
export function register(
  backend: string | BackendDescriptor,
  factory?: StoreFactory,
): void {
  const descriptor = typeof backend === "string"
    ? fromFactory(backend, factory)
    : backend;
  if (descriptor === null || typeof descriptor !== "object") {
    throw new InvalidConfigurationError(
      "register() takes a backend descriptor, or a name and a factory",
    );
  }
  checkName("Backend name", descriptor.name);
  if (typeof descriptor.open !== "function") {
    throw new InvalidConfigurationError(
      `The backend ${descriptor.name} needs an open function`,
    );
  }
  const own = descriptor.schemes ?? { [descriptor.name]: {} };
  for (const scheme of Object.keys(own)) {
    checkName("URL scheme", scheme);
    const holder = schemes.get(scheme)?.backend;
    if (holder !== undefined && holder !== descriptor.name) {
      throw new InvalidConfigurationError(
        `The URL scheme ${scheme}: belongs to the backend ${holder}`,
      );
    }
  }
  unregister(descriptor.name);
  descriptors.set(descriptor.name, descriptor);
  for (const [scheme, { tls }] of Object.entries(own)) {
    schemes.set(scheme, { backend: descriptor.name, tls: tls === true });
  }
}

function checkName(what: string, name: unknown): void {
  if (typeof name !== "string" || !/^[a-z][a-z0-9+.-]*$/.test(name)) {
    throw new InvalidConfigurationError(
      `${what} ${
        JSON.stringify(name)
      } must be lower case letters, digits, '+', '.' or '-'`,
    );
  }
}

// A valkeyrie-style factory as a descriptor: it gets the endpoints and the
// parsed URL as before, and its name is its one scheme.
function fromFactory(
  name: string,
  factory: StoreFactory | undefined,
): BackendDescriptor {
  if (typeof factory !== "function") {
    throw new InvalidConfigurationError("A backend factory must be a function");
  }
  const hosts = Symbol("endpoints");
  return {
    name,
    fromUrl: (url) => ({ url, [hosts]: url.hosts }),
    fromEndpoints: (endpoints) => ({ [hosts]: endpoints }),
    open: (settings) => {
      const { [hosts]: endpoints = [], ...config } = settings as
        & FactoryConfig
        & { [hosts]?: string[] };
      return factory(endpoints, config);
    },
  };
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
  descriptors.delete(name);
  for (const [scheme, { backend }] of schemes) {
    if (backend === name) schemes.delete(scheme);
  }
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
  return [...descriptors.keys()].sort();
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
  const descriptor = descriptors.get(name);
  if (!descriptor) {
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
  checkOptions(name, config);
  config.signal?.throwIfAborted();
  let given: Record<string, unknown> = {};
  if (endpoints.length > 0) {
    if (!descriptor.fromEndpoints) {
      throw new InvalidConfigurationError(
        `The ${name} backend takes no endpoints`,
      );
    }
    given = descriptor.fromEndpoints(endpoints);
  }
  return await descriptor.open(checked(descriptor, withOptions(given, config)));
}

/**
 * Opens a store by URL; the scheme picks the backend. Only that backend's
 * module (and its npm client) is loaded.
 *
 * Schemes: `memory:`, `file:` (the embedded engine), `redis://`, `rediss://`,
 * `etcd://`, `etcds://`, `consul://`, `consuls://`, `zk://`, `zks://`,
 * `dynamodb://TABLE?endpoint=...&region=...`, and those of backends
 * registered by the program.
 *
 * Settings come from the URL (its hosts and path as the backend reads them,
 * its query parameters, user and password, and TLS for a secure scheme) and
 * from `options`; a setting given in both is the one in `options`.
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
export async function openStore(
  url: string | URL,
  options: OpenOptions = {},
): Promise<Store> {
  const parsed = parseStoreUrl(url);
  const scheme = schemes.get(parsed.scheme);
  const descriptor = scheme && descriptors.get(scheme.backend);
  if (!scheme || !descriptor) {
    throw new UnknownBackendError(
      `No backend for URL scheme "${parsed.scheme}:" (registered: ${
        backends().join(", ") || "none"
      })`,
    );
  }
  checkOptions(descriptor.name, options);
  options.signal?.throwIfAborted();
  return await descriptor.open(
    checked(
      descriptor,
      withOptions(urlSettings(descriptor, parsed, scheme.tls), options),
    ),
  );
}

/**
 * The settings a store URL gives a backend: what its descriptor reads from
 * the hosts and the path, then the query parameters, user and password, and
 * `tls: true` for a secure scheme. For a backend's own `connect({ url })`.
 *
 * @param descriptor The backend.
 * @param url The parsed URL, of one of the backend's schemes.
 * @param tls Whether the URL's scheme turns TLS on.
 * @returns The settings.
 */
export function urlSettings(
  descriptor: BackendDescriptor,
  url: StoreUrl,
  tls = descriptor.schemes?.[url.scheme]?.tls === true,
): Record<string, unknown> {
  let own: Record<string, unknown>;
  if (descriptor.fromUrl) {
    own = descriptor.fromUrl(url);
  } else if (url.hosts.length > 0 || url.path.replace(/^\/+/, "") !== "") {
    throw new InvalidConfigurationError(
      `A ${descriptor.name} URL has no hosts or path (${url.scheme}:)`,
    );
  } else {
    own = {};
  }
  const settings: Record<string, unknown> = { ...url.params };
  if (url.username !== undefined) settings.username = url.username;
  if (url.password !== undefined) settings.password = url.password;
  if (tls) settings.tls = true;
  for (const [name, value] of Object.entries(own)) {
    if (value === undefined) continue;
    if (name in url.params && url.params[name] !== String(value)) {
      throw new InvalidConfigurationError(
        `The ${descriptor.name} URL gives ${name} twice, in its ${
          name === "prefix" ? "path" : "authority"
        } and as ?${name}=`,
      );
    }
    settings[name] = value;
  }
  // A factory registered by name gets its endpoints under a symbol.
  for (const symbol of Object.getOwnPropertySymbols(own)) {
    Reflect.set(settings, symbol, Reflect.get(own, symbol));
  }
  return settings;
}

/**
 * The one precedence rule: what the caller passed wins over the URL.
 *
 * @param fromUrl The settings a URL gave ({@linkcode urlSettings}).
 * @param options The caller's options; an `undefined` one is not given.
 * @returns The settings.
 */
export function withOptions(
  fromUrl: Record<string, unknown>,
  options: OpenOptions,
): OpenOptions {
  const settings: Record<string, unknown> = { ...fromUrl };
  for (const [name, value] of Object.entries(options)) {
    if (value !== undefined) settings[name] = value;
  }
  return settings;
}

// Settings against the backend's schema, before its module loads.
function checked(
  descriptor: BackendDescriptor,
  settings: OpenOptions,
): OpenOptions {
  if (descriptor.settings) {
    new ConfigReader(descriptor.name, settings, descriptor.settings);
  }
  return settings;
}

function checkOptions(name: string, options: unknown): void {
  if (
    options === null || typeof options !== "object" || Array.isArray(options)
  ) {
    throw new InvalidConfigurationError(
      `The configuration of ${name} must be an object`,
    );
  }
}
