/**
 * The settings of a Consul store: from `ConsulStore.connect()` options, or
 * from a `consul://` / `consuls://` URL and `openStore()` options.
 *
 * @module
 */

import { ConfigReader } from "../../core/config.ts";
import { InvalidConfigurationError } from "../../core/errors.ts";
import { formatHostPort, parseHostPort } from "../../core/host_port.ts";
import type { FactoryConfig } from "../../core/registry.ts";
import type { TlsConnectionOptions } from "../../core/tls.ts";
import type { TlsOptions } from "../../core/types.ts";
import { DEFAULT_SESSION_TTL_MIN_MS, SESSION_TTL_MAX_MS } from "./sessions.ts";

/** Options of {@linkcode ConsulStore.connect}. */
export interface ConsulStoreOptions {
  /**
   * The agent's HTTP address, `host:port` (default `127.0.0.1:8500`, or
   * `127.0.0.1:8501` with TLS).
   */
  address?: string;
  /** A namespace every key is stored under (a valid key). */
  prefix?: string;
  /** The ACL token, sent as `X-Consul-Token`. */
  token?: string;
  /** The datacenter to use (`?dc=`); default: the agent's. */
  datacenter?: string;
  /** The Consul Enterprise namespace to use; default: the token's. */
  namespace?: string;
  /** HTTPS: `true`, or the CA, client certificate and key to use. */
  tls?: TlsOptions | boolean;
  /** HTTP basic authentication, for an agent behind a proxy that wants it. */
  username?: string;
  /** HTTP basic authentication password. */
  password?: string;
  /**
   * The agent's `session_ttl_min` in ms (default 10 000, Consul's
   * default). Keys with a TTL and locks use sessions, whose TTL cannot be
   * shorter; it also bounds how late a dead lock holder's lock passes on,
   * so `limits.ttlGranularityMs` is derived from it.
   */
  sessionTtlMin?: number;
  /** How long one blocking query of a watch or a lock waits, in ms (default 60 000, at most 600 000). */
  watchWait?: number;
  /** How long any other request may take, in ms (default 30 000). */
  requestTimeout?: number;
  /**
   * How long a watch or a waiting lock retries while Consul fails before
   * it gives up with a `StoreError`, in ms (default 30 000).
   */
  retryTimeout?: number;
  /** How long connecting may take, in ms (default 10 000). */
  connectTimeout?: number;
  /** Aborts connecting. */
  signal?: AbortSignal;
}

/** Settings after checking, with defaults applied. */
export interface ConsulSettings {
  origin: string;
  secure: boolean;
  prefix?: string;
  token?: string;
  datacenter?: string;
  namespace?: string;
  tls?: TlsConnectionOptions;
  username?: string;
  password?: string;
  sessionTtlMin: number;
  watchWait: number;
  requestTimeout: number;
  retryTimeout: number;
  connectTimeout: number;
  signal?: AbortSignal;
}

/** Consul's HTTP port (`ports.http`). */
const HTTP_PORT = 8500;
/** The port Consul's docs use for HTTPS (`ports.https`). */
const HTTPS_PORT = 8501;
/** The default blocking wait of this library (Consul's own is 5 minutes). */
const DEFAULT_WATCH_WAIT_MS = 60_000;
/** Consul caps a blocking query's wait at 10 minutes. */
const MAX_WATCH_WAIT_MS = 600_000;
/** A blocking query shorter than this is polling in disguise. */
const MIN_WATCH_WAIT_MS = 1_000;
/** Default deadline of a request that is not a blocking query. */
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/**
 * How long a watch retries before it errors its stream: long enough to
 * ride out an agent restart or a leader election.
 */
const DEFAULT_RETRY_TIMEOUT_MS = 30_000;

/**
 * Checks options and reads them with defaults. `config.url` (from
 * `openStore`) gives the address, a path used as the prefix, and settings
 * as query parameters; explicit options win over the URL.
 */
export function readSettings(
  options: ConsulStoreOptions | FactoryConfig,
  endpoints: string[] = [],
): ConsulSettings {
  const { url, ...given } = options as FactoryConfig;
  const merged: Record<string, unknown> = { ...(url?.params ?? {}) };
  for (const [name, value] of Object.entries(given)) {
    if (value !== undefined) merged[name] = value;
  }
  if (merged.prefix === undefined && url?.path && url.path !== "/") {
    merged.prefix = url.path;
  }
  const config = new ConfigReader("consul", merged, {
    address: "string",
    token: "string",
    datacenter: "string",
    namespace: "string",
    sessionTtlMin: "number",
    watchWait: "number",
    requestTimeout: "number",
    retryTimeout: "number",
  });
  if (endpoints.length > 1) {
    throw new InvalidConfigurationError(
      `A Consul store talks to one agent, not ${endpoints.length}: give the address of the local agent`,
    );
  }
  const tls = config.tls;
  const secure = tls !== undefined;
  const address = parseHostPort(
    "consul",
    config.string("address") ?? endpoints[0] ?? "127.0.0.1",
    secure ? HTTPS_PORT : HTTP_PORT,
  );
  const origin = `${secure ? "https" : "http"}://${formatHostPort(address)}`;
  const sessionTtlMin = config.positive(
    "sessionTtlMin",
    DEFAULT_SESSION_TTL_MIN_MS,
    { timer: true, max: SESSION_TTL_MAX_MS },
  );
  const watchWait = config.positive("watchWait", DEFAULT_WATCH_WAIT_MS, {
    timer: true,
    min: MIN_WATCH_WAIT_MS,
    max: MAX_WATCH_WAIT_MS,
  });
  const requestTimeout = config.positive(
    "requestTimeout",
    DEFAULT_REQUEST_TIMEOUT_MS,
    { timer: true },
  );
  const retryTimeout = config.positive(
    "retryTimeout",
    DEFAULT_RETRY_TIMEOUT_MS,
    { timer: true },
  );
  return {
    origin,
    secure,
    prefix: config.prefix,
    token: config.string("token"),
    datacenter: config.string("datacenter"),
    namespace: config.string("namespace"),
    tls,
    username: config.username,
    password: config.password,
    sessionTtlMin,
    watchWait,
    requestTimeout,
    retryTimeout,
    connectTimeout: config.connectTimeout,
    signal: config.signal,
  };
}
