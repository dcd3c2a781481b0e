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
import type { TlsOptions } from "../../core/types.ts";
import { EtcdClient } from "./client.ts";
import { EtcdDriver } from "./driver.ts";

/**
 * How long one call may take, retries on other members included, when the
 * caller does not say: long enough to ride out an etcd leader election
 * (about a second with the default `--election-timeout` of 1 s).
 */
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** etcd's client port (IANA). */
const DEFAULT_PORT = 2379;

/** Options of {@linkcode EtcdStore.connect}. */
export interface EtcdStoreOptions {
  /**
   * The members to talk to: `host:port` each, or `http://host:port` /
   * `https://host:port` (default `["127.0.0.1:2379"]`). Calls go to any of
   * them and move to another when one fails.
   */
  endpoints?: string[];
  /** A namespace every key is stored under (`prefix/key` in etcd). */
  prefix?: string;
  /** How long connecting may take, in milliseconds (default 10 000). */
  connectTimeout?: number;
  /**
   * How long one call may take, in milliseconds, retries on other members
   * included (default 10 000). Past it the call fails with
   * `NotReachableError`.
   */
  requestTimeout?: number;
  /**
   * TLS: `true` for the system's CAs, or a CA, a client certificate and key
   * for etcd's `--client-cert-auth`.
   */
  tls?: TlsOptions | boolean;
  /** An etcd user (etcd's `auth enable`). */
  username?: string;
  /** The user's password. */
  password?: string;
  /** Aborts connecting. */
  signal?: AbortSignal;
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
    const config = new ConfigReader("etcd", { ...options }, {
      endpoints: "object",
      requestTimeout: "number",
    });
    const requestTimeout = config.positive(
      "requestTimeout",
      DEFAULT_REQUEST_TIMEOUT_MS,
      { timer: true },
    );
    const { hosts, secure } = parseEndpoints(
      config.object<string[]>("endpoints") ?? [`127.0.0.1:${DEFAULT_PORT}`],
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
  if (
    !Array.isArray(endpoints) || endpoints.length === 0 ||
    endpoints.some((e) => typeof e !== "string" || e.trim() === "")
  ) {
    throw new InvalidConfigurationError(
      'The etcd endpoints must be a non-empty array of "host:port" strings',
    );
  }
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
