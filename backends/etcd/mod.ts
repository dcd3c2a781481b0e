/**
 * The etcd backend: the store contract on an etcd v3 cluster, through the
 * `etcd3` client. Values are stored raw at their keys (`etcdctl get` shows
 * them), `lastIndex` is the key's mod revision, TTLs are leases, checks and
 * writes are etcd transactions, watches resume from the last revision they
 * saw, and locks follow etcd's own recipe with a fencing token.
 *
 * Open it with `etcd://host:2379` (several members:
 * `etcd://h1:2379,h2:2379,h3:2379`), or `etcds://` for TLS.
 *
 * @example
 * ```ts ignore
 * import { EtcdStore } from "@valkeyrie/valkeyrie/etcd";
 *
 * await using store = await EtcdStore.connect({
 *   endpoints: ["127.0.0.1:2379"],
 *   prefix: "app",
 * });
 * await store.put("greeting", "hello");
 * console.log((await store.get("greeting"))?.lastIndex);
 * ```
 *
 * @module
 */

import { BaseStore } from "../../core/store.ts";
import { ConfigReader } from "../../core/config.ts";
import { connectWithin } from "../../core/connect.ts";
import { InvalidConfigurationError } from "../../core/errors.ts";
import { formatHostPort, parseHostPort } from "../../core/host_port.ts";
import type { StoreOptions } from "../../core/types.ts";
import { DEFAULT_PORT, ETCD_SETTINGS } from "./settings.ts";
import { EtcdClient } from "./client.ts";
import { EtcdDriver } from "./driver.ts";

/** Options of {@linkcode EtcdStore.connect}. */
export interface EtcdStoreOptions extends StoreOptions {
  // Written by scripts/settings.ts from the settings schema: edit the schema.
  /**
   * The members to talk to: `host:port` each, or `http://host:port` /
   * `https://host:port`. Calls go to any of them and move to another when
   * one fails.
   *
   * Default: `["127.0.0.1:2379"]`.
   */
  endpoints?: string[];
  /**
   * How long one call may take, in ms, retries on other members included;
   * past it the call fails with `NotReachableError`.
   *
   * A number (ms), > 0. Default: `10000`.
   */
  requestTimeout?: number;
}

/**
 * A store on an etcd v3 cluster.
 *
 * @example Compare-and-set, then a lock
 * ```ts ignore
 * import { EtcdStore } from "@valkeyrie/valkeyrie/etcd";
 *
 * await using store = await EtcdStore.connect({ endpoints: ["127.0.0.1:2379"] });
 * const pair = await store.atomicPut("config/version", "1", null);
 * await store.atomicPut("config/version", "2", pair);
 * await using lock = await store.lock("jobs/nightly", { ttl: 10_000 });
 * console.log(lock.lastIndex); // the fencing token
 * ```
 */
export class EtcdStore extends BaseStore {
  private constructor(driver: EtcdDriver, prefix: string | undefined) {
    super(driver, { prefix });
  }

  /**
   * Connects to an etcd cluster.
   *
   * @param options The members, TLS, credentials, timeouts and key prefix.
   * @returns The open store.
   *
   * @example
   * ```ts ignore
   * import { EtcdStore } from "@valkeyrie/valkeyrie/etcd";
   *
   * const store = await EtcdStore.connect({
   *   endpoints: ["10.0.0.1:2379", "10.0.0.2:2379", "10.0.0.3:2379"],
   *   username: "app",
   *   password: "secret",
   * });
   * await store.close();
   * ```
   */
  static async connect(options: EtcdStoreOptions = {}): Promise<EtcdStore> {
    const config = new ConfigReader("etcd", { ...options }, ETCD_SETTINGS);
    const requestTimeout = config.get("requestTimeout");
    const { hosts, secure } = parseEndpoints(
      config.get("endpoints") ?? [`127.0.0.1:${DEFAULT_PORT}`],
    );
    const tls = config.tls ??
      (secure ? { rejectUnauthorized: true } : undefined);
    const settings = {
      hosts,
      tls,
      username: config.username,
      password: config.password,
      requestTimeout,
    };
    const client = await connectWithin(
      `etcd at ${hosts.join(",")}`,
      config.connectTimeout,
      config.signal,
      async (stop) => {
        const client = new EtcdClient(settings);
        stop.addEventListener("abort", () => client.close(), { once: true });
        // One call proves a member answers and the credentials work.
        await client.call(
          "idempotent",
          (o) => client.etcd.maintenance.status(o),
          stop,
        );
        return client;
      },
    );
    try {
      return new EtcdStore(new EtcdDriver(client), config.prefix);
    } catch (error) {
      client.close();
      throw error;
    }
  }
}

// `host:port`, `http://host:port` or `https://host:port` each; all of one
// kind, since one client speaks TLS to every member or to none.
function parseEndpoints(
  endpoints: string[],
): { hosts: string[]; secure: boolean } {
  const schemes = new Set<string>();
  const hosts = endpoints.map((endpoint) => {
    const match = /^(?:(https?):\/\/)?(.*?)\/?$/.exec(endpoint.trim())!;
    if (match[1]) schemes.add(match[1]);
    return formatHostPort(parseHostPort("etcd", match[2], DEFAULT_PORT));
  });
  if (schemes.size > 1) {
    throw new InvalidConfigurationError(
      "The etcd endpoints mix http:// and https://",
    );
  }
  return { hosts, secure: schemes.has("https") };
}
