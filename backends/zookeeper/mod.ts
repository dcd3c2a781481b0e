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

import { InvalidConfigurationError } from "../../core/errors.ts";
import { BaseStore } from "../../core/store.ts";
import type { TlsOptions } from "../../core/types.ts";
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
export interface ZookeeperStoreOptions {
  /**
   * The ensemble's servers, `host:port` each (default `127.0.0.1:2181`):
   * `endpoints`, as etcd's and Redis's server lists are named.
   */
  endpoints?: string[];
  /**
   * The servers, by their earlier name.
   *
   * @deprecated Use `endpoints`; giving both is an error.
   */
  hosts?: string[];
  /**
   * The znode every key lives under, a ZooKeeper path such as `"/myapp"`
   * (default `"/"`, ZooKeeper's whole tree). Created when first needed.
   */
  chroot?: string;
  /**
   * The session timeout to ask for, in milliseconds (default 20 000). The
   * server bounds it (2 to 20 ticks by default). Locks taken with this ttl
   * live in the store's session.
   */
  sessionTimeout?: number;
  /** How long to wait for a server, in milliseconds (default 10 000). */
  connectTimeout?: number;
  /** Digest authentication: the user name. */
  username?: string;
  /** Digest authentication: the password. */
  password?: string;
  /**
   * The ACL of the nodes the store creates: `"open"` (anyone may do
   * anything; the default without credentials), `"creator"` (only the
   * authenticated user; the default with credentials), `"creator-read"`
   * (the user may do anything, anyone may read), or the entries themselves.
   */
  acl?: "open" | "creator" | "creator-read" | ZookeeperAcl[];
  /** TLS to the servers' secure client port (`zks://`). */
  tls?: TlsOptions | boolean;
  /**
   * The servers' `jute.maxbuffer`: the largest request they accept, in bytes
   * (default 0xfffff). Values are checked against it before sending.
   */
  maxBufferSize?: number;
  /**
   * The servers' `tickTime` in milliseconds (default 2000). ZooKeeper
   * expires sessions on tick boundaries, so a dead holder's lock passes on
   * up to a tick after its ttl: it sets `limits.ttlGranularityMs`.
   */
  tickTime?: number;
  /** A namespace every key is stored under (a valid key). */
  prefix?: string;
  /** Aborts connecting. */
  signal?: AbortSignal;
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
    const { endpoints, hosts, ...settings } = options;
    if (endpoints !== undefined && hosts !== undefined) {
      throw new InvalidConfigurationError(
        "The zookeeper settings endpoints and hosts name the same servers: give endpoints alone (hosts is its earlier name)",
      );
    }
    return await ZookeeperStore.#open(endpoints ?? hosts ?? [], settings);
  }

  static async #open(
    hosts: readonly string[],
    settings: Record<string, unknown>,
  ): Promise<ZookeeperStore> {
    const config = readConfig(hosts, settings);
    const driver = await ZookeeperDriver.connect(
      config,
      settings.signal as AbortSignal | undefined,
    );
    try {
      return new ZookeeperStore(driver, settings.prefix as string | undefined);
    } catch (error) {
      await driver.close();
      throw error;
    }
  }
}
