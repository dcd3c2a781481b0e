/**
 * What every endpoint of the double shares: the state, the ACLs and the
 * agent's configuration, and the per-request checks of datacenter and
 * namespace.
 *
 * @module
 */

import type { Acl } from "./acl.ts";
import { type Call, HttpError } from "./call.ts";
import type { ConsulState } from "./state.ts";

/** The agent configuration the double implements. */
export interface AgentConfig {
  /** Its datacenter (`datacenter`, default `dc1`). */
  datacenter: string;
  /** Its node name (`node_name`). */
  nodeName: string;
  /** `session_ttl_min` in ms (default 10s). */
  sessionTtlMinMs: number;
  /** `limits.kv_max_value_size` in bytes (default 512 KiB). */
  kvMaxValueSize: number;
  /** `limits.txn_max_req_len` in bytes (default 512 KiB). */
  txnMaxReqLen: number;
  /** `disable_kv_key_validation` (Consul 1.21.6 and later). */
  disableKvKeyValidation: boolean;
  /**
   * Namespaces that exist, for an Enterprise agent; `undefined` for Consul
   * CE, which refuses namespaces.
   */
  namespaces: string[] | undefined;
}

/** The double as its endpoints see it. */
export interface Agent {
  readonly state: ConsulState;
  readonly acl: Acl;
  readonly config: AgentConfig;
  /** Aborts when the server stops, to end blocking queries. */
  readonly stopping: AbortSignal;
}

/** Refuses a request for another datacenter. */
export function checkDatacenter(agent: Agent, call: Call): void {
  const dc = call.query.get("dc");
  if (dc && dc !== agent.config.datacenter) {
    throw new HttpError(500, "No path to datacenter");
  }
}

/**
 * The namespace a request works in: `default` unless a header or `?ns`
 * names another, which only an Enterprise agent accepts
 * (agent/http_ce.go refuses them in Consul CE).
 */
export function requestNamespace(agent: Agent, call: Call): string {
  const ns = call.namespace;
  if (ns === undefined || ns === "") return "default";
  return checkNamespace(agent, ns, call.header("x-consul-namespace") === ns);
}

/** Checks a namespace named in a request or a transaction operation. */
export function checkNamespace(
  agent: Agent,
  ns: string,
  fromHeader: boolean,
): string {
  const known = agent.config.namespaces;
  if (known === undefined) {
    throw new HttpError(
      400,
      fromHeader
        ? 'Invalid header: "X-Consul-Namespace" - Namespaces are a Consul Enterprise feature'
        : 'Invalid query parameter: "ns" - Namespaces are a Consul Enterprise feature',
    );
  }
  if (ns !== "default" && !known.includes(ns)) {
    // The double's simplification: Enterprise answers a missing namespace
    // with an error too, in its own words.
    throw new HttpError(403, `Namespace ${JSON.stringify(ns)} does not exist`);
  }
  return ns;
}
