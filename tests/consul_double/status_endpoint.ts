/**
 * `/v1/status/leader` and `/v1/status/peers`
 * (https://developer.hashicorp.com/consul/api-docs/status): the Raft leader's
 * address, or `""` when the cluster has none; they need no ACL token. The
 * double is a single server that always leads.
 *
 * @module
 */

import { type Agent, checkDatacenter } from "./agent.ts";
import { type Call, HttpError, type Reply } from "./call.ts";

/** The Raft address the double reports for itself. */
export const RAFT_ADDRESS = "127.0.0.1:8300";

/** Handles a request under `/v1/status/`. */
export function statusEndpoint(agent: Agent, call: Call): Reply {
  if (call.method !== "GET") {
    throw new HttpError(405, `method ${call.method} not allowed`);
  }
  checkDatacenter(agent, call);
  if (call.path === "/status/leader") return call.json(RAFT_ADDRESS);
  if (call.path === "/status/peers") return call.json([RAFT_ADDRESS]);
  throw new HttpError(404, "404 page not found");
}
