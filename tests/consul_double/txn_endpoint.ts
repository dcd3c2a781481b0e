/**
 * `PUT /v1/txn`: several KV operations applied all together or not at all.
 *
 * Behaviours and where they are documented
 * (https://developer.hashicorp.com/consul/api-docs/txn unless said):
 * - the body is a JSON array of `{"KV": {Verb, Key, Value (base64), Flags,
 *   Index, Session, Namespace}}`; the verbs and what they need are the
 *   document's table (set, cas, lock, unlock, get, get-or-empty, get-tree,
 *   check-index, check-session, check-not-exists, delete, delete-tree,
 *   delete-cas);
 * - 200 with `Results` when applied, 409 with `Errors` (`OpIndex`, `What`)
 *   when rolled back; results only for operations that return an entry,
 *   none for deletes, and `Value` only for get and get-tree;
 * - at most 64 operations per transaction ("up to a limit of 64",
 *   https://developer.hashicorp.com/consul/api-docs/kv); a body over
 *   `txn_max_req_len` (512 KiB by default) and a value over
 *   `kv_max_value_size` are refused with a 413
 *   (https://developer.hashicorp.com/consul/docs/agent/config/config-files#txn_max_req_len);
 * - a transaction without writes is a read, with consistency modes;
 * - `get-or-empty` (Consul 1.14, hashicorp/consul#14474) answers a missing
 *   key with the operation's own entry, its value emptied: the key, and the
 *   `Flags`, `Session` and `Index` (as `ModifyIndex`) it was sent with,
 *   so 0 where not given (agent/consul/state/txn.go, txnKVS);
 * - results of KV operations are filtered by the token's `key:read`
 *   ("Filtering for GETs is done on the output side",
 *   agent/consul/txn_endpoint.go, FilterTxnResults), so a `get` the token
 *   may not do is left out of the results rather than failing;
 * - ACLs and lock delays are checked before anything is applied, and a
 *   failing check is an error of its operation (agent/consul/txn_endpoint.go);
 * - the error messages are Consul's (agent/consul/state/txn.go), which
 *   clients match to tell a failed check from other failures.
 *
 * The double implements KV operations only; Node, Service, Check and
 * Session operations are refused.
 *
 * @module
 */

import { type Agent, checkDatacenter, checkNamespace } from "./agent.ts";
import { type Call, HttpError, type Reply } from "./call.ts";
import { field, parse, toUint64 } from "./json.ts";
import { isSession } from "./kv_endpoint.ts";
import { entryJson } from "./kv_endpoint.ts";
import type { DirEntry, EntryInput, KvTable } from "./kv_table.ts";

/** The most operations one transaction may hold (Consul's `maxTxnOps`). */
export const MAX_TXN_OPS = 64;

const WRITES = new Set([
  "set",
  "cas",
  "lock",
  "unlock",
  "delete",
  "delete-tree",
  "delete-cas",
]);

interface KvOp {
  verb: string;
  key: string;
  value: Uint8Array | null;
  flags: bigint;
  index: bigint;
  session: string;
  ns: string;
}

interface TxnError {
  OpIndex: number;
  What: string;
}

/** Handles `PUT /v1/txn`. */
export function txnEndpoint(agent: Agent, call: Call): Reply {
  if (call.method !== "PUT") {
    throw new HttpError(405, `method ${call.method} not allowed`);
  }
  checkDatacenter(agent, call);
  const maxLength = Math.max(
    agent.config.txnMaxReqLen,
    agent.config.kvMaxValueSize,
  );
  if (call.body.length > maxLength) {
    throw new HttpError(
      413,
      `Request body too large, max size: ${maxLength} bytes`,
    );
  }
  const ops = parseOps(agent, call);
  const writes = ops.filter((op) => WRITES.has(op.verb)).length;
  if (writes === 0) call.consistency();
  // An unknown token fails the whole request ("ACL not found"), before any
  // operation is looked at.
  agent.acl.allows(call, "key:read");

  // Checks made before the write reaches Raft: keys, ACLs, lock delays.
  const errors: TxnError[] = [];
  ops.forEach((op, i) => {
    if (op.key === "" && op.verb !== "delete-tree") {
      errors.push({ OpIndex: i, What: "Must provide key" });
      return;
    }
    const permission = op.verb === "get" || op.verb === "get-tree" ||
        op.verb === "get-or-empty"
      ? undefined
      : op.verb.startsWith("check-")
      ? "key:read" as const
      : "key:write" as const;
    if (permission && !agent.acl.allows(call, permission)) {
      errors.push({ OpIndex: i, What: "Permission denied" });
    } else if (
      op.verb === "lock" &&
      agent.state.table(op.ns).lockDelay(op.key) !== undefined
    ) {
      errors.push({
        OpIndex: i,
        What: `failed to lock key ${JSON.stringify(op.key)} due to lock delay`,
      });
    }
  });
  if (errors.length) return call.json({ Results: null, Errors: errors }, 409);

  const run = (idx: bigint) => {
    const tables = new Set<KvTable>();
    const results: unknown[] = [];
    ops.forEach((op, i) => {
      const table = agent.state.table(op.ns);
      if (!tables.has(table)) {
        tables.add(table);
        if (writes) table.begin();
      }
      try {
        for (const entry of apply(agent, table, idx, op)) {
          const json = entryJson(agent, entry, op.ns);
          if (!op.verb.startsWith("get")) json.Value = null;
          results.push({ KV: json });
        }
      } catch (error) {
        if (!(error instanceof TxnOpError)) throw error;
        errors.push({ OpIndex: i, What: error.message });
      }
    });
    for (const table of tables) {
      if (!writes) continue;
      if (errors.length) table.rollback();
      else table.commit();
    }
    if (errors.length) return call.json({ Results: null, Errors: errors }, 409);
    // Only KV results are produced here, and ACLs are per token in the
    // double: a token that may not read keys gets none of them.
    const readable = agent.acl.allows(call, "key:read") ? results : [];
    return call.json({ Results: readable, Errors: null });
  };
  return writes ? agent.state.apply(run) : run(agent.state.index);
}

class TxnOpError extends Error {}

function quote(key: string): string {
  return JSON.stringify(key);
}

// One operation, as agent/consul/state/txn.go dispatches it.
function apply(
  agent: Agent,
  table: KvTable,
  idx: bigint,
  op: KvOp,
): DirEntry[] {
  const input: EntryInput = {
    Key: op.key,
    Value: op.value,
    Flags: op.flags,
    Session: op.session,
    ModifyIndex: op.index,
  };
  const key = quote(op.key);
  switch (op.verb) {
    case "set":
      return [table.set(idx, input, false)];
    case "cas": {
      const entry = table.cas(idx, input);
      if (!entry) {
        throw new TxnOpError(`failed to set key ${key}, index is stale`);
      }
      return [entry];
    }
    case "lock": {
      if (op.session === "") throw new TxnOpError("missing session");
      if (!isSession(agent, op.session, op.ns)) {
        throw new TxnOpError(`invalid session ${quote(op.session)}`);
      }
      const entry = table.lock(idx, input);
      if (!entry) {
        throw new TxnOpError(`failed to lock key ${key}, lock is already held`);
      }
      return [entry];
    }
    case "unlock": {
      if (op.session === "") throw new TxnOpError("missing session");
      const entry = table.unlock(idx, input);
      if (!entry) {
        throw new TxnOpError(
          `failed to unlock key ${key}, lock isn't held, or is held by another session`,
        );
      }
      return [entry];
    }
    case "get": {
      const entry = table.get(op.key);
      if (!entry) throw new TxnOpError(`key ${key} doesn't exist`);
      return [entry];
    }
    case "get-or-empty":
      return [
        table.get(op.key) ?? {
          Key: op.key,
          Value: null,
          Flags: op.flags,
          Session: op.session,
          LockIndex: 0n,
          CreateIndex: 0n,
          ModifyIndex: op.index,
        },
      ];
    case "get-tree":
      return table.list(op.key);
    case "check-index": {
      const entry = table.get(op.key);
      if (!entry) {
        throw new TxnOpError(`failed to check index, key ${key} doesn't exist`);
      }
      if (entry.ModifyIndex !== op.index) {
        throw new TxnOpError(
          `failed index check for key ${key}, current modify index ${entry.ModifyIndex} != ${op.index}`,
        );
      }
      return [entry];
    }
    case "check-session": {
      const entry = table.get(op.key);
      if (!entry) {
        throw new TxnOpError(
          `failed to check session, key ${key} doesn't exist`,
        );
      }
      if (entry.Session !== op.session) {
        throw new TxnOpError(
          `failed session check for key ${key}, current session ${
            quote(entry.Session)
          } != ${quote(op.session)}`,
        );
      }
      return [entry];
    }
    case "check-not-exists":
      if (table.get(op.key)) throw new TxnOpError(`key ${key} exists`);
      return [];
    case "delete":
      table.delete(idx, op.key);
      return [];
    case "delete-tree":
      table.deleteTree(idx, op.key);
      return [];
    case "delete-cas":
      if (!table.deleteCas(idx, op.key, op.index)) {
        throw new TxnOpError(`failed to delete key ${key}, index is stale`);
      }
      return [];
    default:
      throw new TxnOpError(`unknown KV verb ${quote(op.verb)}`);
  }
}

function parseOps(agent: Agent, call: Call): KvOp[] {
  let body: unknown;
  try {
    body = parse(new TextDecoder().decode(call.body));
  } catch (error) {
    throw new HttpError(
      400,
      `Failed to parse body: ${(error as Error).message}`,
    );
  }
  if (!Array.isArray(body)) {
    throw new HttpError(400, "Failed to parse body: not a JSON array");
  }
  if (body.length > MAX_TXN_OPS) {
    throw new HttpError(
      413,
      `Transaction contains too many operations (${body.length} > ${MAX_TXN_OPS})`,
    );
  }
  return body.map((raw) => {
    const kv = field(raw, "KV");
    if (kv === undefined) {
      throw new HttpError(
        400,
        "The Consul double implements KV operations only",
      );
    }
    const value = field(kv, "Value");
    let bytes: Uint8Array | null = null;
    if (typeof value === "string") {
      try {
        bytes = Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
      } catch {
        throw new HttpError(
          400,
          "Failed to parse body: failed to decode value: illegal base64 data",
        );
      }
    }
    const key = String(field(kv, "Key") ?? "");
    if (bytes && bytes.length > agent.config.kvMaxValueSize) {
      throw new HttpError(
        413,
        `Value for key ${
          quote(key)
        } is too large (${bytes.length} > ${agent.config.kvMaxValueSize} bytes)`,
      );
    }
    const namespace = field(kv, "Namespace");
    const ns = agent.config.namespaces === undefined ||
        typeof namespace !== "string" || namespace === ""
      ? "default"
      : checkNamespace(agent, namespace, false);
    return {
      verb: String(field(kv, "Verb") ?? ""),
      key,
      value: bytes,
      flags: toUint64(field(kv, "Flags")) ?? 0n,
      index: toUint64(field(kv, "Index")) ?? 0n,
      session: String(field(kv, "Session") ?? ""),
      ns,
    };
  });
}
