/**
 * The Redis backend: the whole store contract on Redis (and Valkey), through
 * `ioredis`: a single server, a Sentinel deployment or a Redis Cluster, with
 * TLS and ACL users.
 *
 * Values are stored raw at their key, so `redis-cli GET key` returns exactly
 * the bytes that were put and other clients (Traefik, valkeyrie in Go with
 * its raw codec) share the data. Versions, lock holders and the version
 * counters live beside the data under names that start with `/`, which no key
 * can, each in the hash slot of its key, so every script keeps to one slot
 * and runs on Redis Cluster. See `docs/backends/redis.md` for the layout,
 * what the server must allow, and what happens when another client writes a
 * key.
 *
 * @example
 * ```ts ignore
 * import { RedisStore } from "@valkeyrie/valkeyrie/redis";
 *
 * await using store = await RedisStore.connect({ url: "redis://127.0.0.1:6379/0" });
 * await store.put("config/db/host", "10.0.0.5");
 * console.log((await store.get("config/db/host"))?.lastIndex);
 * ```
 *
 * @module
 */

import { BaseStore } from "../../core/store.ts";
import { InvalidConfigurationError } from "../../core/errors.ts";
import { urlSettings, withOptions } from "../../core/registry.ts";
import type { StoreOptions } from "../../core/types.ts";
import { parseStoreUrl } from "../../core/url.ts";
import { redisBackend } from "./backend.ts";
import { openClient } from "./connection.ts";
import { RedisDriver } from "./driver.ts";
import { readSettings } from "./options.ts";
import { Topology } from "./topology.ts";

/** Options of {@linkcode RedisStore.connect}. */
export interface RedisStoreOptions extends StoreOptions {
  // Written by scripts/settings.ts from the settings schema: edit the schema.
  /**
   * `RedisStore.connect()` only: the server as a URL,
   * `redis://[user:password@]host[:port][/db]`, `rediss://...` for TLS,
   * `redis://s1:26379,s2:26379/db?master=NAME` for Sentinel, or
   * `redis://n1:7000,n2:7001` for the nodes of a Redis Cluster. Options
   * given beside it win over its parts.
   *
   * Default: none.
   */
  url?: string | URL;
  /**
   * `host:port` of the server, of the sentinels when `master` is set, or of
   * nodes of a Redis Cluster (one node is enough: a server that is a cluster
   * node is found to be one).
   *
   * Default: `["127.0.0.1:6379"]`.
   */
  endpoints?: string[];
  /**
   * The database number (a URL's path; a cluster has only 0).
   *
   * A whole number, ≥ 0. Default: `0`.
   */
  db?: number;
  /**
   * The Sentinel master name: the endpoints are then sentinels. Several
   * endpoints without it are nodes of a Redis Cluster.
   *
   * Default: none.
   */
  master?: string;
  /**
   * The user name for the sentinels, when they require one.
   *
   * Default: none.
   */
  sentinelUsername?: string;
  /**
   * The password for the sentinels, when they require one.
   *
   * Default: none.
   */
  sentinelPassword?: string;
  /**
   * Acknowledge a write only once this many replicas have it (Redis's
   * `WAIT`, sent after each write): Redis replicates asynchronously, and a
   * failover loses the writes a master acknowledged but had not passed on. A
   * write the replicas do not confirm within `waitTimeout` fails with a
   * `StoreError` saying so. Not on Redis Cluster.
   *
   * A whole number, ≥ 1. Default: off.
   */
  waitReplicas?: number;
  /**
   * How long a write waits for `waitReplicas`, in ms.
   *
   * A whole number (ms), ≥ 1. Default: `1000`.
   */
  waitTimeout?: number;
}

/**
 * A store on Redis.
 *
 * @example Opening by URL, through the registry
 * ```ts ignore
 * import { openStore } from "@valkeyrie/valkeyrie";
 *
 * await using store = await openStore("rediss://app:secret@cache.internal:6380/2", {
 *   tls: { ca: await Deno.readTextFile("ca.pem") },
 *   prefix: "app",
 * });
 * ```
 *
 * @example Sentinel
 * ```ts ignore
 * import { RedisStore } from "@valkeyrie/valkeyrie/redis";
 *
 * await using store = await RedisStore.connect({
 *   endpoints: ["10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"],
 *   master: "mymaster",
 * });
 * ```
 *
 * @example Redis Cluster, with keys that an atomic() changes together in one slot
 * ```ts ignore
 * import { RedisStore } from "@valkeyrie/valkeyrie/redis";
 *
 * await using store = await RedisStore.connect({
 *   url: "redis://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000",
 * });
 * await store.atomic()
 *   .put("{user42}/profile", "...")
 *   .put("{user42}/settings", "...")
 *   .commit();
 * ```
 */
export class RedisStore extends BaseStore {
  private constructor(driver: RedisDriver, prefix: string | undefined) {
    super(driver, { prefix });
  }

  /**
   * Connects to Redis.
   *
   * @param options Where the server is and how to log in.
   * @returns The store, connected.
   */
  static async connect(options: RedisStoreOptions = {}): Promise<RedisStore> {
    const { url, ...given } = options;
    let settings: Record<string, unknown> = given;
    if (url !== undefined) {
      if (given.endpoints !== undefined) {
        throw new InvalidConfigurationError(
          "Give redis a url or endpoints, not both",
        );
      }
      const parsed = parseStoreUrl(url);
      if (!(parsed.scheme in redisBackend.schemes!)) {
        throw new InvalidConfigurationError(
          `A redis URL starts with redis:// or rediss://, not ${parsed.scheme}:`,
        );
      }
      settings = withOptions(urlSettings(redisBackend, parsed), given);
    }
    const { endpoint, prefix, signal, replication } = readSettings(settings);
    const topology = new Topology(await openClient(endpoint, signal), endpoint);
    try {
      if (replication && topology.isCluster) {
        throw new InvalidConfigurationError(
          'The redis setting "waitReplicas" is for one master with replicas (or Sentinel), not Redis Cluster',
        );
      }
      return new RedisStore(
        new RedisDriver(topology, endpoint.db, replication),
        prefix,
      );
    } catch (error) {
      topology.close();
      throw error;
    }
  }
}
