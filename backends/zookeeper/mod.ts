/**
 * The ZooKeeper backend: the whole store contract on Apache ZooKeeper 3.6 or
 * later (3.8 tested), opened by `zk://host:port[,host:port...][/chroot]`
 * (`zks://` for TLS).
 *
 * Keys are znode paths under the chroot and values are the znodes' raw
 * data, as `zkCli.sh get` shows them. Parents the backend creates for deep
 * keys have no data (`null`, not empty) and are invisible to the store. A
 * key's `lastIndex` is its znode's `mzxid`. TTLs are ZooKeeper TTL nodes
 * (the server needs `-Dzookeeper.extendedTypesEnabled=true`); watches are
 * persistent watches, read again after every reconnection; locks follow
 * ZooKeeper's sequential-ephemeral recipe, their ttl being the timeout of
 * the session that holds them. See `docs/backends/zookeeper.md`.
 *
 * @example
 * ```ts ignore
 * import { ZookeeperStore } from "@valkeyrie/valkeyrie/zookeeper";
 *
 * await using store = await ZookeeperStore.connect({
 *   endpoints: ["127.0.0.1:2181"],
 *   chroot: "/myapp",
 * });
 * await store.put("config/db/host", "10.0.0.5");
 * ```
 *
 * @module
 */

import { BaseStore } from "../../core/store.ts";
import type { StoreOptions } from "../../core/types.ts";
import { readConfig } from "./config.ts";
import { ZookeeperDriver } from "./driver.ts";

/** An access control entry of ZooKeeper: who may do what with a node. */
export interface ZookeeperAcl {
  /** Permission bits: read 1, write 2, create 4, delete 8, admin 16. */
  perms: number;
  /** The scheme: `"world"`, `"auth"`, `"digest"`, `"ip"`, `"x509"`, ... */
  scheme: string;
  /** The identity within the scheme: `"anyone"`, `"user:base64(sha1)"`, ... */
  id: string;
}

/** Options of {@linkcode ZookeeperStore.connect}. */
export interface ZookeeperStoreOptions extends StoreOptions {
  // Written by scripts/settings.ts from the settings schema: edit the schema.
  /**
   * The ensemble's servers, `host:port` each.
   *
   * Default: `["127.0.0.1:2181"]`.
   */
  endpoints?: string[];
  /**
   * The znode every key lives under, a ZooKeeper path such as `"/myapp"` (a
   * URL's path); created when first needed.
   *
   * Default: `"/"`, the whole tree.
   */
  chroot?: string;
  /**
   * The session timeout to ask for, in ms. The server bounds it (2 to 20
   * ticks by default). Locks taken with this ttl live in the store's
   * session.
   *
   * A number (ms), > 0. Default: `20000`.
   */
  sessionTimeout?: number;
  /**
   * The ACL of the nodes the store creates: `"open"` (anyone may do
   * anything), `"creator"` (only the authenticated user), `"creator-read"`
   * (the user may do anything, anyone may read), or the entries themselves.
   *
   * Default: `"open"`, `"creator"` with credentials.
   */
  acl?: "open" | "creator" | "creator-read" | ZookeeperAcl[];
  /**
   * The servers' `jute.maxbuffer`: the largest request they accept, in
   * bytes. Requests are checked against it before sending.
   *
   * A whole number, ≥ 1. Default: `1048575`.
   */
  maxBufferSize?: number;
  /**
   * The largest reply the store takes, in bytes, at least `maxBufferSize`.
   * ZooKeeper sends all of a node's children in one reply, whatever its
   * `jute.maxbuffer`; a larger reply fails its call with a `StoreError` (the
   * connection stays up).
   *
   * A whole number, ≥ 1. Default: `67108864`.
   */
  maxReplyBytes?: number;
  /**
   * The servers' `tickTime` in ms. ZooKeeper expires sessions on tick
   * boundaries, so a dead holder's lock passes on up to a tick after its
   * ttl: it sets `limits.ttlGranularityMs`.
   *
   * A number (ms), > 0. Default: `2000`.
   */
  tickTime?: number;
}

/**
 * A store on a ZooKeeper ensemble.
 *
 * @example Opening by URL
 * ```ts ignore
 * import { openStore } from "@valkeyrie/valkeyrie";
 *
 * await using store = await openStore(
 *   "zk://zk1:2181,zk2:2181,zk3:2181/myapp?sessionTimeout=10000",
 * );
 * await using lock = await store.lock("jobs/nightly", { ttl: 10_000 });
 * ```
 */
export class ZookeeperStore extends BaseStore {
  private constructor(driver: ZookeeperDriver, prefix: string | undefined) {
    super(driver, { prefix });
  }

  /**
   * Connects to an ensemble.
   *
   * @param options Where the servers are and how to use them.
   * @returns The store, once a session is open.
   *
   * @example
   * ```ts ignore
   * import { ZookeeperStore } from "@valkeyrie/valkeyrie/zookeeper";
   *
   * await using store = await ZookeeperStore.connect({
   *   endpoints: ["127.0.0.1:2181"],
   *   username: "app",
   *   password: "secret",
   * });
   * ```
   */
  static async connect(
    options: ZookeeperStoreOptions = {},
  ): Promise<ZookeeperStore> {
    const config = readConfig([], { ...options });
    const driver = await ZookeeperDriver.connect(config, options.signal);
    try {
      return new ZookeeperStore(driver, options.prefix);
    } catch (error) {
      await driver.close();
      throw error;
    }
  }
}
