/**
 * `/v1/snapshot` (https://developer.hashicorp.com/consul/api-docs/snapshot):
 * GET saves the state, PUT restores a saved one. The format is opaque to
 * clients (Consul's is a gzipped archive, the double's is JSON). Restoring
 * an older snapshot sends every index back, which is how the double tests
 * clients against "an index that goes backwards"
 * (https://developer.hashicorp.com/consul/api-docs/features/blocking#implementation-details).
 * Both need a management token when ACLs are on.
 *
 * @module
 */

import type { Agent } from "./agent.ts";
import { type Call, HttpError, type Reply } from "./call.ts";
import { parse, stringify, toUint64 } from "./json.ts";
import type { SnapshotData } from "./state.ts";

/** Handles `GET` and `PUT /v1/snapshot`. */
export function snapshotEndpoint(agent: Agent, call: Call): Reply {
  agent.acl.require(call, "key:write", "");
  if (call.method === "GET") {
    call.indexed(agent.state.index);
    return call.text(stringify(agent.state.snapshot()));
  }
  if (call.method === "PUT") {
    let data: SnapshotData;
    try {
      data = revive(parse(new TextDecoder().decode(call.body))) as SnapshotData;
    } catch (error) {
      throw new HttpError(500, `Snapshot restore failed: ${error}`);
    }
    agent.state.restore(data);
    return call.text("");
  }
  throw new HttpError(405, `method ${call.method} not allowed`);
}

const UINT64_FIELDS = new Set([
  "index",
  "maxIndex",
  "Flags",
  "LockIndex",
  "CreateIndex",
  "ModifyIndex",
  "LockDelay",
]);

// Turns the snapshot's numbers back into bigints and its base64 values back
// into bytes.
function revive(value: unknown, name = ""): unknown {
  if (Array.isArray(value)) return value.map((item) => revive(item, name));
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      out[key] = revive(item, key);
    }
    if ("Key" in out && "Value" in out) {
      out.Value = typeof out.Value === "object" && out.Value !== null
        ? new Uint8Array(Object.values(out.Value as Record<string, number>))
        : null;
    }
    return out;
  }
  if (UINT64_FIELDS.has(name)) return toUint64(value) ?? 0n;
  return value;
}
