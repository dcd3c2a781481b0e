/**
 * The Consul backend: the store contract on Consul's KV store, through the
 * `consul` npm client. Values are stored raw at their key; `lastIndex` is
 * the key's `ModifyIndex`; keys with a TTL and locks use sessions; watches
 * are blocking queries; `atomic()` is a `/v1/txn` transaction.
 *
 * Open it with `openStore("consul://127.0.0.1:8500")` (`consuls://` for
 * HTTPS) or {@linkcode ConsulStore.connect}. See `docs/backends/consul.md`
 * for every option, the limits and how the contract maps onto Consul.
 *
 * @example
 * ```ts ignore
 * import { ConsulStore } from "@valkeyrie/valkeyrie/consul";
 *
 * await using store = await ConsulStore.connect({ endpoints: ["127.0.0.1:8500"] });
 * await store.put("config/greeting", "hello");
 * console.log(new TextDecoder().decode((await store.get("config/greeting"))!.value));
 * ```
 *
 * @module
 */

import { BaseStore } from "../../core/store.ts";
import { connectWithin } from "../../core/connect.ts";
import { delay } from "../../core/abort.ts";
import { ConsulDriver } from "./driver.ts";
import { ConsulHttp } from "./http.ts";
import {
  type ConsulSettings,
  type ConsulStoreOptions,
  readSettings,
} from "./options.ts";

export type { ConsulStoreOptions } from "./options.ts";

/** While a new cluster elects its leader, connecting asks again this often. */
const LEADER_RETRY_MS = 250;

/**
 * A store on Consul's KV store.
 *
 * @example Options as an object
 * ```ts ignore
 * import { ConsulStore } from "@valkeyrie/valkeyrie/consul";
 *
 * await using store = await ConsulStore.connect({
 *   endpoints: ["consul.internal:8501"],
 *   tls: { ca: caPem },
 *   token: Deno.env.get("CONSUL_HTTP_TOKEN"),
 *   prefix: "my-app",
 * });
 * ```
 */
export class ConsulStore extends BaseStore {
  private constructor(driver: ConsulDriver, settings: ConsulSettings) {
    super(driver, { prefix: settings.prefix });
  }

  /**
   * Connects to a Consul agent. Rejects with `NotReachableError` when it
   * does not answer (or has no cluster leader) within `connectTimeout`.
   *
   * @param options Where the agent is and how to talk to it.
   * @returns The store.
   *
   * @example
   * ```ts ignore
   * const store = await ConsulStore.connect({ endpoints: ["127.0.0.1:8500"] });
   * ```
   */
  static async connect(options: ConsulStoreOptions = {}): Promise<ConsulStore> {
    return await ConsulStore.#open(readSettings(options));
  }

  static async #open(settings: ConsulSettings): Promise<ConsulStore> {
    const http = new ConsulHttp({
      origin: settings.origin,
      username: settings.username,
      password: settings.password,
      token: settings.token,
      datacenter: settings.datacenter,
      namespace: settings.namespace,
      tls: settings.tls,
      requestTimeout: settings.requestTimeout,
    });
    try {
      await connectWithin(
        `consul at ${settings.origin}`,
        settings.connectTimeout,
        settings.signal,
        async (signal) => {
          // An agent without a cluster leader cannot serve the KV store yet.
          while (await http.leader({ signal }) === "") {
            await delay(LEADER_RETRY_MS, signal);
          }
        },
      );
    } catch (error) {
      http.destroy();
      throw error;
    }
    const driver = new ConsulDriver(http, {
      sessionTtlMin: settings.sessionTtlMin,
      watchWait: settings.watchWait,
      retryTimeout: settings.retryTimeout,
    });
    return new ConsulStore(driver, settings);
  }
}
