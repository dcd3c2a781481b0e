/**
 * Batch calls as Consul transactions: the operations of many keys packed
 * into as few `/v1/txn` requests as Consul takes, each within its 64
 * operations and its `txn_max_req_len` body.
 *
 * @module
 */

import { utf8Length } from "../../core/keys.ts";
import type { TxnOp } from "./http.ts";

/**
 * Room per operation for what `ConsulHttp.txn` adds to it: a `Namespace`
 * field, whose value Consul Enterprise keeps to 64 characters.
 */
const NAMESPACE_ROOM = 96;

/** Bytes `op` takes in a transaction body: `{"KV":op}` and a comma. */
export function opBytes(op: TxnOp): number {
  return utf8Length(JSON.stringify({ KV: op })) + 1 + NAMESPACE_ROOM;
}

/**
 * Splits `units` (each one key's operations, which stay together) into
 * transactions of at most `maxOps` operations and `maxBytes` of body, in
 * order. A unit too large for any transaction goes alone, for Consul to
 * refuse.
 */
export function packTransactions<T>(
  units: readonly T[],
  opsOf: (unit: T) => TxnOp[],
  maxOps: number,
  maxBytes: number,
): T[][] {
  const groups: T[][] = [];
  let group: T[] = [];
  let ops = 0;
  // The body's brackets.
  let bytes = 2;
  for (const unit of units) {
    const unitOps = opsOf(unit);
    const unitBytes = unitOps.reduce((sum, op) => sum + opBytes(op), 0);
    if (
      group.length > 0 &&
      (ops + unitOps.length > maxOps || bytes + unitBytes > maxBytes)
    ) {
      groups.push(group);
      group = [];
      ops = 0;
      bytes = 2;
    }
    group.push(unit);
    ops += unitOps.length;
    bytes += unitBytes;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}
