/**
 * The settings of a Consul store: from `ConsulStore.connect()` options, or
 * from a `consul://` / `consuls://` URL and `openStore()` options.
 *
 * @module
 */

import { ConfigReader } from "../../core/config.ts";
import { formatHostPort, parseHostPort } from "../../core/host_port.ts";
import type { TlsConnectionOptions } from "../../core/tls.ts";
import type { OpenOptions, StoreOptions } from "../../core/types.ts";
import { CONSUL_SETTINGS, HTTP_PORT, HTTPS_PORT } from "./settings.ts";

/** Options of {@linkcode ConsulStore.connect}. */
export interface ConsulStoreOptions extends StoreOptions {
  // Written by scripts/settings.ts from the settings schema: edit the schema.
  /**
   * The agent's HTTP address, `host:port`, as a list of one (the servers of
   * every backend are `endpoints`).
   *
   * Default: `["127.0.0.1:8500"]` (`:8501` with TLS).
   */
  endpoints?: string[];
  /**
   * The ACL token, sent as `X-Consul-Token`.
   *
   * Default: none.
   */
  token?: string;
  /**
   * The datacenter to use (`?dc=` on every request); an unknown one fails to
   * open.
   *
   * Default: the agent's.
   */
  datacenter?: string;
  /**
   * The Consul Enterprise namespace (`X-Consul-Namespace`, and `Namespace`
   * in transactions).
   *
   * Default: the token's.
   */
  namespace?: string;
  /**
   * The agent's `session_ttl_min` in ms; it must match the agent. Keys with
   * a TTL and locks use sessions, whose TTL cannot be shorter; it also
   * bounds how late a dead holder's lock passes on, so
   * `limits.ttlGranularityMs` is derived from it.
   *
   * A number (ms), ≤ 86,400,000. Default: `10000`.
   */
  sessionTtlMin?: number;
  /**
   * How long one blocking query of a watch or a waiting lock waits, in ms
   * (Consul caps it at 10 minutes; shorter than a second is polling in
   * disguise).
   *
   * A number (ms), 1,000–600,000. Default: `60000`.
   */
  watchWait?: number;
  /**
   * How long any request other than a blocking query may take, in ms.
   *
   * A number (ms), > 0. Default: `30000`.
   */
  requestTimeout?: number;
  /**
   * How long a watch or a waiting lock retries while Consul fails before it
   * errors with a `StoreError`, in ms: long enough to ride out an agent
   * restart or a leader election.
   *
   * A number (ms), > 0. Default: `30000`.
   */
  retryTimeout?: number;
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

/**
 * Checks options and reads them with defaults. From `openStore`, the
 * registry has already merged in what the URL gives (its host as
 * `endpoints`, its path as `prefix`, its query parameters); the caller's
 * options win over the URL.
 */
export function readSettings(
  options: ConsulStoreOptions | OpenOptions,
): ConsulSettings {
  const config = new ConfigReader("consul", options, CONSUL_SETTINGS);
  const tls = config.tls;
  const secure = tls !== undefined;
  const address = parseHostPort(
    "consul",
    config.get("endpoints")?.[0] ?? "127.0.0.1",
    secure ? HTTPS_PORT : HTTP_PORT,
  );
  return {
    origin: `${secure ? "https" : "http"}://${formatHostPort(address)}`,
    secure,
    prefix: config.prefix,
    token: config.get("token"),
    datacenter: config.get("datacenter"),
    namespace: config.get("namespace"),
    tls,
    username: config.username,
    password: config.password,
    sessionTtlMin: config.get("sessionTtlMin"),
    watchWait: config.get("watchWait"),
    requestTimeout: config.get("requestTimeout"),
    retryTimeout: config.get("retryTimeout"),
    connectTimeout: config.connectTimeout,
    signal: config.signal,
  };
}
