/**
 * `/v1/kv/:key`: read, list, write, lock and delete keys.
 *
 * Behaviours and where they are documented
 * (https://developer.hashicorp.com/consul/api-docs/kv unless said):
 * - GET: a 404 when no key exists; `?recurse` lists a prefix; `?keys` lists
 *   names only (up to `?separator`), with `[]` rather than a 404 for the
 *   root; `?raw` answers the bare value; `X-Consul-Index` is the entry's
 *   `ModifyIndex`, or for a missing key or a list the index the KV table or
 *   the prefix was last changed at (a list's index "corresponds to the
 *   latest ModifyIndex within the prefix");
 * - PUT: `true`, or for `cas`/`acquire`/`release` whether it happened;
 *   at most one of them (a 400 "Conflicting flags"); `?flags` is a uint64;
 *   a body over `kv_max_value_size` (512 KiB) is a 413 ("Values in the KV
 *   store cannot be larger than 512kb"); `acquire` with an unknown session
 *   is an error and during a lock delay a refusal
 *   (https://developer.hashicorp.com/consul/docs/dynamic-app-config/sessions);
 * - DELETE: `?recurse` deletes a prefix, `?cas` deletes at that index only
 *   and "a 0 index will not delete the key";
 * - key names (Consul 1.21.6 and later, CVE-2025-11392): no path traversal
 *   (`../`, `..\`, their percent-encoded forms) and no leading or trailing
 *   space, unless the agent sets `disable_kv_key_validation`
 *   (https://github.com/hashicorp/consul/pull/22850).
 *
 * @module
 */

import { type Agent, checkDatacenter, requestNamespace } from "./agent.ts";
import { denied } from "./acl.ts";
import { blockingQuery } from "./blocking.ts";
import { type Call, HttpError, type Reply } from "./call.ts";
import type { DirEntry, EntryInput } from "./kv_table.ts";

/** Why Consul refuses a key name, or `undefined`. */
export function keyProblem(key: string): string | undefined {
  if (key.startsWith("/")) return "key must not begin with a '/'";
  if (key.includes("../") || key.includes("..\\")) {
    return "key contains invalid path traversal sequence";
  }
  for (const encoded of ["%2e%2e%2f", "%2e%2e/", "..%2f", "%2e%2e%5c"]) {
    if (key.includes(encoded)) {
      return "key contains encoded path traversal sequence";
    }
  }
  if (key.trim() !== key) return "key must not have leading or trailing spaces";
  return undefined;
}

/** An entry as the KV endpoints return it. */
export function entryJson(agent: Agent, entry: DirEntry, ns: string) {
  const json: Record<string, unknown> = {
    LockIndex: entry.LockIndex,
    Key: entry.Key,
    Flags: entry.Flags,
    Value: entry.Value ? base64(entry.Value) : null,
  };
  if (entry.Session) json.Session = entry.Session;
  if (agent.config.namespaces !== undefined) {
    json.Namespace = ns;
    json.Partition = "default";
  }
  json.CreateIndex = entry.CreateIndex;
  json.ModifyIndex = entry.ModifyIndex;
  return json;
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Handles a request under `/v1/kv/`. */
export async function kvEndpoint(
  agent: Agent,
  call: Call,
  signal: AbortSignal,
): Promise<Reply> {
  checkDatacenter(agent, call);
  const key = call.path.slice("/kv/".length);
  if (!agent.config.disableKvKeyValidation) {
    if (/\.\.[/\\]/.test(call.rawPath)) {
      throw new HttpError(400, "URL path contains invalid traversal sequence");
    }
    const problem = key === "" ? undefined : keyProblem(key);
    if (problem) throw new HttpError(400, problem);
  }
  const ns = requestNamespace(agent, call);
  switch (call.method) {
    case "GET":
      return call.has("keys")
        ? await getKeys(agent, call, key, ns, signal)
        : await get(agent, call, key, ns, signal);
    case "PUT":
      return put(agent, call, key, ns);
    case "DELETE":
      return del(agent, call, key, ns);
    default:
      throw new HttpError(405, `method ${call.method} not allowed`);
  }
}

async function get(
  agent: Agent,
  call: Call,
  key: string,
  ns: string,
  signal: AbortSignal,
): Promise<Reply> {
  call.consistency();
  const recurse = call.has("recurse");
  if (!recurse && key === "") throw new HttpError(400, "Missing key name");
  const table = agent.state.table(ns);
  let filtered = false;
  const result = await blockingQuery(
    agent.state,
    call.blocking(),
    signal,
    () => {
      if (recurse) {
        let entries = table.list(key);
        if (!agent.acl.allows(call, "key:read")) {
          filtered = entries.length > 0;
          entries = [];
        }
        const index = table.listIndex(key);
        return { index: index === 0n ? 1n : index, value: entries };
      }
      if (!agent.acl.allows(call, "key:read")) throw denied("key:read", key);
      const entry = table.get(key);
      const index = entry ? entry.ModifyIndex : table.maxIndex;
      return { index: index === 0n ? 1n : index, value: entry ? [entry] : [] };
    },
  );
  call.indexed(result.index);
  if (filtered && call.token !== undefined) {
    call.replyHeaders["X-Consul-Results-Filtered-By-ACLs"] = "true";
  }
  if (result.value.length === 0) return call.text("", 404);
  if (call.has("raw") && !recurse) {
    return {
      ...call.text(result.value[0].Value ?? new Uint8Array()),
      headers: {
        ...call.replyHeaders,
        "Content-Type": "text/plain",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
      },
    };
  }
  return call.json(result.value.map((entry) => entryJson(agent, entry, ns)));
}

async function getKeys(
  agent: Agent,
  call: Call,
  prefix: string,
  ns: string,
  signal: AbortSignal,
): Promise<Reply> {
  call.consistency();
  // "Due to historic spelling error" Consul reads both.
  const separator = call.query.get("separator") ??
    call.query.get("seperator") ?? "";
  const table = agent.state.table(ns);
  const result = await blockingQuery(
    agent.state,
    call.blocking(),
    signal,
    () => {
      const index = table.listIndex(prefix);
      const entries = agent.acl.allows(call, "key:read")
        ? table.list(prefix)
        : [];
      const keys: string[] = [];
      for (const entry of entries) {
        const after = entry.Key.slice(prefix.length);
        const at = separator === "" ? -1 : after.indexOf(separator);
        const name = at < 0
          ? entry.Key
          : entry.Key.slice(0, prefix.length + at + separator.length);
        if (keys[keys.length - 1] !== name) keys.push(name);
      }
      return { index: index === 0n ? 1n : index, value: keys };
    },
  );
  call.indexed(result.index);
  if (result.value.length === 0 && prefix !== "") return call.text("", 404);
  return call.json(result.value);
}

function put(agent: Agent, call: Call, key: string, ns: string): Reply {
  if (key === "") throw new HttpError(400, "Missing key name");
  agent.acl.require(call, "key:write", key);
  conflicting(call, ["cas", "acquire", "release"]);
  const input: EntryInput = { Key: key, Value: call.body, Flags: 0n };
  if (call.has("flags")) input.Flags = uint(call, "flags");
  if (call.body.length > agent.config.kvMaxValueSize) {
    throw new HttpError(
      413,
      `Request body(${call.body.length} bytes) too large, max size: ${agent.config.kvMaxValueSize} bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.`,
    );
  }
  const table = agent.state.table(ns);
  if (call.has("cas")) {
    input.ModifyIndex = uint(call, "cas");
    return call.json(
      agent.state.apply((idx) => table.cas(idx, input) !== undefined),
    );
  }
  if (call.has("acquire")) {
    input.Session = call.query.get("acquire") ?? "";
    // The lock delay is enforced before the write reaches Raft.
    if (table.lockDelay(key) !== undefined) return call.json(false);
    if (!isSession(agent, input.Session, ns)) {
      throw new HttpError(
        500,
        `invalid session ${JSON.stringify(input.Session)}`,
      );
    }
    return call.json(
      agent.state.apply((idx) => table.lock(idx, input) !== undefined),
    );
  }
  if (call.has("release")) {
    input.Session = call.query.get("release") ?? "";
    return call.json(
      agent.state.apply((idx) => table.unlock(idx, input) !== undefined),
    );
  }
  agent.state.apply((idx) => table.set(idx, input, false));
  return call.json(true);
}

function del(agent: Agent, call: Call, key: string, ns: string): Reply {
  conflicting(call, ["recurse", "cas"]);
  const table = agent.state.table(ns);
  if (call.has("recurse")) {
    agent.acl.require(call, "key:write", key);
    agent.state.apply((idx) => table.deleteTree(idx, key));
    return call.json(true);
  }
  if (key === "") throw new HttpError(400, "Missing key name");
  agent.acl.require(call, "key:write", key);
  if (call.has("cas")) {
    const index = uint(call, "cas");
    // "Unlike PUT, the index must be greater than 0 for Consul to take any
    // action: a 0 index will not delete the key."
    if (index === 0n) return call.json(false);
    return call.json(
      agent.state.apply((idx) => table.deleteCas(idx, key, index)),
    );
  }
  agent.state.apply((idx) => table.delete(idx, key));
  return call.json(true);
}

/** Whether `id` is a live session of namespace `ns`. */
export function isSession(agent: Agent, id: string, ns: string): boolean {
  return agent.state.sessions.get(id)?.ns === ns;
}

function conflicting(call: Call, flags: string[]): void {
  if (flags.filter((flag) => call.has(flag)).length > 1) {
    throw new HttpError(400, `Conflicting flags: ${call.query}\n`);
  }
}

function uint(call: Call, name: string): bigint {
  const text = call.query.get(name) ?? "";
  if (!/^\d+$/.test(text) || BigInt(text) >= 2n ** 64n) {
    throw new HttpError(
      500,
      `strconv.ParseUint: parsing ${JSON.stringify(text)}: invalid syntax`,
    );
  }
  return BigInt(text);
}
