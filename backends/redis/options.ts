/**
 * The settings of a Redis store, from a URL and options, checked and turned
 * into ioredis options.
 *
 * - `redis://[user:password@]host[:port][/db]`: one server.
 * - `rediss://...`: the same over TLS.
 * - `redis://h1:26379,h2:26379,h3:26379/db?master=NAME`: a Sentinel
 *   deployment: the hosts are sentinels, `master` names the monitored master.
 * - `redis://h1:7000,h2:7001,h3:7002`: the nodes of a Redis Cluster (one node
 *   is enough: a server that is a cluster node is found to be one).
 *
 * @module
 */

import type { RedisOptions } from "ioredis";
import { ConfigReader } from "../../core/config.ts";
import { InvalidConfigurationError } from "../../core/errors.ts";
import { parseHostPort } from "../../core/host_port.ts";
import type { Endpoint, HostPort } from "./connection.ts";
import { REDIS_SETTINGS } from "./settings.ts";

export { DEFAULT_WAIT_TIMEOUT_MS } from "./settings.ts";

/** Redis's own port. */
export const DEFAULT_PORT = 6379;

/** Sentinel's own port. */
export const DEFAULT_SENTINEL_PORT = 26379;

/**
 * Writes acknowledged only once replicas have them (Redis's `WAIT`): how many
 * replicas, and how long to wait for them.
 */
export interface Replication {
  /** Replicas that must have a write before it is acknowledged. */
  replicas: number;
  /** How long to wait for them, in ms. */
  timeoutMs: number;
}

/** Checked settings of a store: where it connects and its key prefix. */
export interface RedisSettings {
  /** Where and how to connect. */
  endpoint: Endpoint;
  /** The store's key prefix, if any. */
  prefix?: string;
  /** Aborts opening. */
  signal?: AbortSignal;
  /** Writes wait for replicas (`waitReplicas`), when set. */
  replication?: Replication;
}

/**
 * Reads the settings of a store: `endpoints` (`host:port` of the server, of
 * the sentinels or of cluster nodes) and the rest, as the registry merged
 * them from a URL and the caller's options.
 *
 * @param settings The settings.
 */
export function readSettings(settings: Record<string, unknown>): RedisSettings {
  const merged = settings;
  const reader = new ConfigReader("redis", merged, REDIS_SETTINGS);
  const hosts = reader.get("endpoints") ?? [];
  const db = reader.get("db");
  const master = reader.get("master");
  const tls = reader.tls;
  const connectTimeout = reader.connectTimeout;
  const options: RedisOptions = {
    db,
    username: reader.username,
    password: reader.password,
    connectTimeout,
    connectionName: "valkeyrie",
  };
  let what: string;
  let servers: HostPort[] | undefined;
  if (master !== undefined) {
    const sentinels = (hosts.length ? hosts : ["127.0.0.1"]).map((host) =>
      parseHostPort("redis", host, DEFAULT_SENTINEL_PORT)
    );
    Object.assign(options, {
      name: master,
      sentinels,
      sentinelUsername: reader.get("sentinelUsername"),
      sentinelPassword: reader.get("sentinelPassword"),
    });
    if (tls) {
      Object.assign(options, {
        tls,
        sentinelTLS: tls,
        enableTLSForSentinelMode: true,
      });
    }
    what = `redis master ${JSON.stringify(master)} (sentinels ${
      sentinels.map(({ host, port }) => `${host}:${port}`).join(", ")
    })`;
  } else {
    for (const name of ["sentinelUsername", "sentinelPassword"]) {
      if (merged[name] !== undefined) {
        throw new InvalidConfigurationError(
          `The redis setting ${JSON.stringify(name)} needs a Sentinel master`,
        );
      }
    }
    servers = (hosts.length ? hosts : ["127.0.0.1"]).map((host) =>
      parseHostPort("redis", host, DEFAULT_PORT)
    );
    const { host, port } = servers[0];
    Object.assign(options, { host, port });
    if (tls) options.tls = tls;
    what = `redis at ${host}:${port}`;
  }
  let replication: Replication | undefined;
  const replicas = reader.get("waitReplicas");
  if (replicas !== undefined) {
    replication = { replicas, timeoutMs: reader.get("waitTimeout") };
  } else if (reader.has("waitTimeout")) {
    throw new InvalidConfigurationError(
      'The redis setting "waitTimeout" needs "waitReplicas"',
    );
  }
  return {
    endpoint: { what, options, db, connectTimeout, hosts: servers },
    prefix: reader.prefix,
    signal: reader.signal,
    replication,
  };
}
