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

import { Buffer } from "node:buffer";
import type { ConnectionOptions } from "node:tls";
import type { RedisOptions } from "ioredis";
import { ConfigReader } from "../../core/config.ts";
import { InvalidConfigurationError } from "../../core/errors.ts";
import type { FactoryConfig } from "../../core/registry.ts";
import type { TlsOptions } from "../../core/types.ts";
import type { Endpoint, HostPort } from "./connection.ts";

/** Redis's own port. */
export const DEFAULT_PORT = 6379;

/** Sentinel's own port. */
export const DEFAULT_SENTINEL_PORT = 26379;

/** The settings only the Redis backend knows, and their kinds. */
const REDIS_SETTINGS = {
  db: "number",
  master: "string",
  sentinelUsername: "string",
  sentinelPassword: "string",
} as const;

/** Checked settings of a store: where it connects and its key prefix. */
export interface RedisSettings {
  /** Where and how to connect. */
  endpoint: Endpoint;
  /** The store's key prefix, if any. */
  prefix?: string;
  /** Aborts opening. */
  signal?: AbortSignal;
}

/**
 * Reads the settings of a store opened by the registry: `hosts` from the URL
 * (or `newStore`'s endpoints), everything else from `config` and the URL's
 * path and query.
 *
 * @param hosts `host:port` of the server, or of the sentinels.
 * @param config The caller's options, with the parsed URL if any.
 */
export function readSettings(
  hosts: readonly string[],
  config: FactoryConfig,
): RedisSettings {
  const { url, ...given } = config;
  const merged: Record<string, unknown> = { ...url?.params };
  for (const [name, value] of Object.entries(given)) {
    if (value !== undefined) merged[name] = value;
  }
  const path = url?.path ?? "";
  if (path !== "" && path !== "/" && merged.db === undefined) {
    merged.db = path.slice(1);
  }
  const reader = new ConfigReader("redis", merged, REDIS_SETTINGS);
  const db = reader.number("db") ?? 0;
  if (!Number.isInteger(db) || db < 0) {
    throw new InvalidConfigurationError(
      `The redis database must be a whole number from 0, not ${db}`,
    );
  }
  const master = reader.string("master");
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
      parseHost(host, DEFAULT_SENTINEL_PORT)
    );
    Object.assign(options, {
      name: master,
      sentinels,
      sentinelUsername: reader.string("sentinelUsername"),
      sentinelPassword: reader.string("sentinelPassword"),
    });
    if (tls) {
      const secure = tlsOptions(tls);
      Object.assign(options, {
        tls: secure,
        sentinelTLS: secure,
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
      parseHost(host, DEFAULT_PORT)
    );
    const { host, port } = servers[0];
    Object.assign(options, { host, port });
    if (tls) options.tls = tlsOptions(tls);
    what = `redis at ${host}:${port}`;
  }
  return {
    endpoint: { what, options, db, connectTimeout, hosts: servers },
    prefix: reader.prefix,
    signal: reader.signal,
  };
}

function parseHost(text: string, defaultPort: number): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:\[\]]*))(?::([0-9]+))?$/.exec(text);
  const host = match?.[1] ?? match?.[2];
  const port = match?.[3] === undefined ? defaultPort : Number(match[3]);
  if (!match || !host || port < 1 || port > 65535) {
    throw new InvalidConfigurationError(
      `Redis endpoint ${JSON.stringify(text)} is not HOST or HOST:PORT`,
    );
  }
  return { host, port };
}

const TLS_SETTINGS = new Set([
  "ca",
  "cert",
  "key",
  "servername",
  "rejectUnauthorized",
]);

function tlsOptions(tls: TlsOptions): ConnectionOptions {
  for (const name of Object.keys(tls)) {
    if (!TLS_SETTINGS.has(name)) {
      throw new InvalidConfigurationError(
        `Unknown redis TLS setting ${JSON.stringify(name)} (known: ${
          [...TLS_SETTINGS].join(", ")
        })`,
      );
    }
  }
  const pem = (value: string | Uint8Array) =>
    typeof value === "string" ? value : Buffer.from(value);
  const options: ConnectionOptions = {};
  if (tls.ca !== undefined) {
    options.ca = Array.isArray(tls.ca) ? tls.ca.map(pem) : pem(tls.ca);
  }
  if (tls.cert !== undefined) options.cert = pem(tls.cert);
  if (tls.key !== undefined) options.key = pem(tls.key);
  if (tls.servername !== undefined) options.servername = tls.servername;
  if (tls.rejectUnauthorized !== undefined) {
    options.rejectUnauthorized = tls.rejectUnauthorized;
  }
  return options;
}
