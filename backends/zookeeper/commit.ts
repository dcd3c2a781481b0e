/**
 * Writes as ZooKeeper `multi` requests: every put, delete and atomic
 * operation reads the nodes it touches, then applies its writes in one
 * `multi` whose operations carry the versions it read, so the writes land
 * only if nothing changed in between. A conflict makes it read again; a
 * check that no longer holds ends it with `{ ok: false }`.
 *
 * A key's `lastIndex` is its node's `mzxid`, the id of the transaction that
 * last wrote it: it grows with every write and never repeats, also when the
 * key is deleted and created again (the node's version restarts at 0 then).
 * A check compares the `mzxid` read with the expected index; the `multi`
 * then carries the node's version (ZooKeeper's conditions only compare
 * versions) and, since a node deleted and created again can be back at that
 * version, the version of the path's generation node, read with the node:
 * every creation of a node at the path moves it on in the same `multi`, so
 * the `multi` fails unless the node is the very one read (see
 * `generations.ts`). A put that keeps the node checks its generation too, so
 * it cannot land on a node of another kind (TTL or not). A check that a key
 * is absent writes and deletes the node in the same `multi` when it does not
 * exist, which fails if it exists by then.
 *
 * The server a session talks to may lag the leader: its reads may miss a
 * write acknowledged before the commit began. A commit that writes asserts
 * in its `multi`, which the leader applies, everything it read (a delete of
 * a key absent where it read asserts that absence the same way), so a stale
 * read makes it fail and read again. A commit the reads alone decide (a
 * check that fails, a commit with nothing to write) reads again after a
 * barrier (`Nodes.barrier`, a `multi` the quorum commits) before it answers.
 *
 * A `multi` whose reply the connection lost may have landed. The commit
 * reads again after a barrier and writes again only if a node it wrote
 * shows the `multi` did not land (see `landed`); otherwise it fails saying
 * it may or may not have been applied. Sending it again regardless could
 * land it twice, the second time over another client's acknowledged write.
 *
 * A fenced commit starts its `multi` with a `check` of each holder's lock
 * node (any version): it fails with `NONODE` once the node is gone, so the
 * writes land only while every lock is still held (see `fenceOf` in
 * `lock.ts`).
 *
 * @module
 */

import { delay } from "../../core/abort.ts";
import { Backoff, type BackoffOptions } from "../../core/backoff.ts";
import { StoreError } from "../../core/errors.ts";
import type { AtomicStep, CommitOutcome } from "../../core/driver.ts";
import {
  isConnectionLoss,
  MAX_RESENDS,
  translateError,
  ZkError,
} from "./errors.ts";
import {
  checkGeneration,
  ensureGeneration,
  readGeneration,
} from "./generations.ts";
import {
  isLive,
  kindChangeError,
  type Nodes,
  type NodeState,
} from "./nodes.ts";
import { Code, Mode, type MultiOp } from "./protocol.ts";

/**
 * How many times a write reads and tries again when the nodes it read
 * changed before its `multi` landed, before it gives up: enough for heavy
 * contention on one key, short of spinning forever.
 */
const MAX_ATTEMPTS = 100;

/** After this many conflicts, back off a little between attempts. */
const BACKOFF_AFTER = 3;

/**
 * Pauses between attempts under contention: anywhere up to 50 ms (full
 * jitter), a ceiling that does not grow. Conflicting writers are on one
 * ensemble that answers in milliseconds; spreading them out is the point,
 * waiting longer is not.
 */
const CONFLICT_BACKOFF: BackoffOptions = { baseMs: 50, capMs: 50 };

/** What a commit wrote, for the driver's bookkeeping after it. */
export interface Committed {
  outcome: CommitOutcome;
  /** Nodes the commit deleted: their empty parents may go now. */
  deleted: string[];
}

interface Target {
  key: string;
  path: string;
  /** The path's generation node (see `generations.ts`). */
  generation: string;
  check?: bigint | null;
  write?: AtomicStep & { type: "put" | "delete" };
  state: NodeState | null;
}

/** Options of {@linkcode commit}. */
export interface CommitOptions {
  /** The store's call (`put`, `atomic`, ...), for its `retry` events. */
  operation: string;
  /** Stops it between requests; a request already sent is not taken back. */
  signal?: AbortSignal;
  /**
   * The lock nodes of the commit's fences: each must still exist when the
   * `multi` is applied.
   */
  fences?: readonly string[];
}

/** Applies `steps` atomically (see the module doc). */
export async function commit(
  nodes: Nodes,
  steps: readonly AtomicStep[],
  options: CommitOptions,
): Promise<Committed> {
  const { signal, operation } = options;
  // Every attempt a dropped connection cut off is tried again, and said so.
  const retried = (attempt: number, error: unknown) =>
    nodes.session.emit({ type: "retry", operation, attempt, error });
  const fences: MultiOp[] = (options.fences ?? []).map((path) => ({
    type: "check",
    path,
    version: -1,
  }));
  const targets = new Map<string, Target>();
  for (const step of steps) {
    let target = targets.get(step.key);
    if (!target) {
      const path = nodes.paths.path(step.key);
      target = {
        key: step.key,
        path,
        generation: nodes.paths.generationPath(path),
        state: null,
      };
      targets.set(step.key, target);
    }
    if (step.type === "check") target.check = step.lastIndex;
    else target.write = step;
  }
  const list = [...targets.values()];
  // Whether the commit may create nodes, and which generations checks and
  // puts may rest on.
  const creates = list.some((target) => target.write?.type === "put");
  const watched = [
    ...new Set(
      list.filter((target) =>
        target.check !== undefined || target.write?.type === "put"
      ).map((target) => target.generation),
    ),
  ];
  let resends = 0;
  // Whether the reads follow a barrier (see the module doc).
  let synced = false;
  // What the targets a `multi` wrote looked like before it was sent, while
  // its reply is lost with the connection (see `landed`).
  let unanswered:
    | { written: Written[]; deleted: string[]; sent: MultiOp[] }
    | undefined;
  const backoff = new Backoff(CONFLICT_BACKOFF);
  // Parents made for a write that then failed, or only to check a key's
  // absence, are not needed afterwards.
  const parentsMade = new Set<string>();
  const parentsKept = new Set<string>();
  // A landed multi's nodes with data stay, also where made as parents.
  const keep = (sent: readonly MultiOp[]) => {
    for (const op of sent) {
      if (op.type === "create" && op.spec.data !== null) {
        parentsKept.add(op.spec.path);
      }
    }
  };
  try {
    attempts: for (let attempt = 1;; attempt++) {
      if (attempt > MAX_ATTEMPTS) {
        throw new StoreError(
          `The write kept conflicting with other writers; gave up after ${MAX_ATTEMPTS} attempts`,
        );
      }
      if (attempt > BACKOFF_AFTER) {
        await delay(backoff.next(), signal);
      }
      signal?.throwIfAborted();
      let states: (NodeState | null)[];
      let versions: Map<string, number | null>;
      try {
        // Sent before the reads, it holds them until the server has every
        // write the ensemble committed before it: one round trip for all.
        const barrier = synced ? nodes.barrier(signal) : undefined;
        barrier?.catch(() => {});
        // The generations go first: a session's requests are answered in
        // order, so each version read is no newer than the nodes read after
        // it.
        const generationReads = watched.map((path) =>
          readGeneration(nodes, path)
        );
        // Awaited below, unless a read before them fails first (with the
        // same connection's loss): theirs must not go unhandled then.
        for (const read of generationReads) read.catch(() => {});
        const known = creates ? nodes.generations.known(nodes) : undefined;
        // Puts need the node's kind, checks and deletes also its data; all
        // of them their data after a lost reply (see `shown`).
        states = await Promise.all(list.map((target) =>
          nodes.read(
            target.path,
            unanswered !== undefined || target.check !== undefined ||
              target.write?.type === "delete",
          )
        ));
        const read = await Promise.all(generationReads);
        versions = new Map(watched.map((path, i) => [path, read[i]]));
        await known;
        await barrier;
      } catch (error) {
        if (isConnectionLoss(error) && ++resends <= MAX_RESENDS) {
          retried(attempt, error);
          continue;
        }
        throw error;
      }
      if (unanswered) {
        const lastIndex = shown(unanswered.written, states);
        if (lastIndex !== undefined) {
          keep(unanswered.sent);
          return {
            outcome: { ok: true, lastIndex },
            deleted: unanswered.deleted,
          };
        }
        if (landed(unanswered.written, states, versions)) {
          throw new StoreError(
            `The connection to ZooKeeper dropped before the ${operation}'s reply, and the nodes it wrote do not show whether it landed: it may or may not have been applied (${
              readAgain(unanswered.written, states)
            }; attempt ${attempt}, ${resends} resent)`,
          );
        }
        unanswered = undefined;
      }
      const now = Date.now();
      const ops: MultiOp[] = [];
      const written: Written[] = [];
      const deleted: string[] = [];
      /** Generation nodes to check, with the version read. */
      const unchanged = new Map<string, number>();
      /** Generation nodes to move on: nodes are created at their paths. */
      const moved = new Set<string>();
      /** Generation nodes needed that do not exist yet. */
      const missing = new Set<string>();
      /** What asserts the reads that no write carries. */
      const absent: MultiOp[] = [];
      for (let i = 0; i < list.length; i++) {
        const target = list[i];
        const state = target.state = states[i];
        if (target.check !== undefined) {
          const current = state && isLive(state, now) ? state.stat.mzxid : null;
          if (current !== target.check) {
            if (!synced) {
              synced = true;
              continue attempts;
            }
            return {
              outcome: { ok: false, key: target.key, current },
              deleted,
            };
          }
        }
        const writes = plan(nodes, target);
        // A write carrying the version read already asserts the check; a
        // delete of a key absent here asserts that it is absent on the
        // leader too.
        if (
          writes.length === 0 &&
          (target.check !== undefined || target.write?.type === "delete")
        ) {
          absent.push(...assertUnchanged(nodes, target));
        }
        // Conditions on the node read hold only while it is that node.
        const keepsNode = target.write?.type === "put" &&
          writes[0]?.type === "setData";
        if (state && (target.check !== undefined || keepsNode)) {
          const version = versions.get(target.generation);
          if (version === null || version === undefined) {
            missing.add(target.generation);
          } else unchanged.set(target.generation, version);
        }
        if (writes.length > 0) {
          written.push({
            index: i,
            write: target.write!,
            before: state,
            generation: target.generation,
            version: versions.get(target.generation),
          });
        }
        for (const op of writes) {
          if (op.type === "delete") deleted.push(op.path);
          if (op.type === "create") moved.add(target.generation);
        }
        ops.push(...writes);
      }
      if (missing.size > 0) {
        // Made once per generation node; then read again.
        const lost = await madeGenerations(nodes, [...missing], signal);
        if (lost !== undefined) {
          if (++resends > MAX_RESENDS) throw lost;
          retried(attempt, lost);
        }
        continue;
      }
      // With fences, even a commit that writes nothing asks ZooKeeper
      // whether the locks are still held.
      if (ops.length === 0 && fences.length === 0) {
        // Nothing to write, and nothing to check: deletes of keys absent
        // here. Absent on the leader too once the reads follow a barrier.
        if (!synced) {
          synced = true;
          continue;
        }
        return { outcome: { ok: true, lastIndex: 0n }, deleted };
      }
      ops.push(...absent);
      // Checks before the writes, so a creation's own move of a generation
      // does not fail a check of the same generation; fences first of all,
      // so a failed one is what the reply names.
      const all: MultiOp[] = [
        ...fences,
        ...[...unchanged].map(([path, version]) =>
          checkGeneration(path, version)
        ),
        ...ops,
        ...nodes.generations.creationOps(nodes, moved),
      ];
      signal?.throwIfAborted();
      let reply;
      try {
        reply = await nodes.multi(all);
      } catch (error) {
        if (isConnectionLoss(error) && ++resends <= MAX_RESENDS) {
          // Whether it landed is read first, after a barrier: a CI run with
          // a server killed saw a put sent again land twice, over another
          // client's put acknowledged in between.
          retried(attempt, error);
          unanswered = { written, deleted, sent: all };
          synced = true;
          continue;
        }
        throw translateError(error, { op: "write" }) ?? error;
      }
      const { zxid, results } = reply;
      const failed = results.findIndex((result) =>
        result.err !== Code.ok && result.err !== Code.runtimeInconsistency
      );
      if (failed < 0) {
        keep(all);
        return { outcome: { ok: true, lastIndex: zxid }, deleted };
      }
      if (failed < fences.length) {
        // A lock node is gone: the lock is no longer held by that lease.
        return { outcome: { ok: false, fenced: true }, deleted: [] };
      }
      const op = all[failed];
      const err = results[failed].err;
      const at = op.type === "create" ? op.spec.path : op.path;
      if (nodes.paths.isGeneration(at) && STALE.has(err)) {
        // What was known of the generation nodes is stale: learn it again.
        nodes.generations.forget();
      } else if (err === Code.noNode && op.type === "create") {
        // Its parent is missing: create it and try again. A multi names only
        // its first failure, so the parents of every create from there on
        // are made now (once per parent), or a batch of keys under as many
        // new parents would take one attempt each.
        const byParent = new Map<string, string>();
        for (const later of all.slice(failed)) {
          if (
            later.type !== "create" || nodes.paths.isGeneration(later.spec.path)
          ) {
            continue;
          }
          const path = later.spec.path;
          byParent.set(path.slice(0, path.lastIndexOf("/")), path);
        }
        await Promise.all(
          [...byParent.values()].map((path) =>
            nodes.ensureParents(path, signal)
          ),
        );
        for (const path of byParent.values()) parentsMade.add(path);
      } else if (!CONFLICTS.has(err)) {
        const error = new ZkError(err, at);
        throw translateError(error, { op: "write" }) ?? error;
      }
    }
  } finally {
    // Best effort: a parent left behind has no data, and reads skip it as
    // they skip every implicit parent.
    const unneeded = [...parentsMade].filter((path) => !parentsKept.has(path));
    await Promise.allSettled(unneeded.map((path) => nodes.prune(path)));
  }
}

/** A target a `multi` writes, and its node as read before. */
interface Written {
  /** Its place in the commit's targets. */
  index: number;
  write: AtomicStep & { type: "put" | "delete" };
  before: NodeState | null;
  /** Its generation node. */
  generation: string;
  /** That node's version, when read (puts): `null` if there is none. */
  version: number | null | undefined;
}

// The lastIndex of a `multi` whose reply was lost, when its targets read
// again after a barrier show exactly its writes: each deleted key gone (or,
// kept as a parent, emptied by one write), each put key holding its bytes
// and kind after exactly one write since the read (a new node: its first),
// the put nodes all last written by one transaction, whose zxid it is (0
// when it only deleted, as a commit that writes nothing answers). Another
// client writing the very same bytes into that window would look the same:
// the put is then taken as landed just before that write, with its index.
// `undefined` when they show anything else.
function shown(
  written: readonly Written[],
  states: readonly (NodeState | null)[],
): bigint | undefined {
  let zxid: bigint | undefined;
  for (const { index, write, before } of written) {
    const now = states[index];
    if (write.type === "delete" && (!before || before.stat.numChildren === 0)) {
      if (now !== null) return undefined;
      continue;
    }
    if (now === null) return undefined;
    const sameNode = before !== null && before.stat.czxid === now.stat.czxid;
    const expected = write.type === "delete" ? null : write.value;
    const writes = sameNode ? now.stat.version - before!.stat.version : 1;
    if (
      writes !== 1 || (!sameNode && now.stat.version !== 0) ||
      !sameBytes(now.data, expected) ||
      (write.type === "put" && now.ttl !== write.ttl) ||
      (zxid !== undefined && now.stat.mzxid !== zxid)
    ) {
      return undefined;
    }
    zxid = now.stat.mzxid;
  }
  return zxid ?? 0n;
}

// What the targets of a lost `multi` showed, before it and after, for the
// error that says its outcome is unknown.
function readAgain(
  written: readonly Written[],
  states: readonly (NodeState | null)[],
): string {
  const node = (state: NodeState | null, bytes?: Uint8Array | null) =>
    state === null
      ? "absent"
      : `version ${state.stat.version}, created 0x${
        state.stat.czxid.toString(16)
      }, written 0x${state.stat.mzxid.toString(16)}${
        bytes === undefined || state.data === undefined
          ? ""
          : sameBytes(state.data, bytes)
          ? ", its bytes"
          : ", other bytes"
      }`;
  return written.map(({ index, write, before }) =>
    `${write.key}: ${node(before)} before, ${
      node(states[index], write.type === "put" ? write.value : null)
    } now`
  ).join("; ");
}

function sameBytes(
  a: Uint8Array | null | undefined,
  b: Uint8Array | null,
): boolean {
  if (a === undefined) return false;
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

// Whether a `multi` whose reply was lost may have landed, from its targets
// read again after a barrier. A `multi` lands whole or not at all, so one
// target shown untouched means it did not: a node still there that is the
// same creation with the same last write, or a node still absent whose
// generation node (which every creation at its path moves on) has not
// moved. Otherwise it did, or other writers changed every target meanwhile;
// the two cannot be told apart. A `multi` that writes nothing only asserts
// what it read: sending it again is harmless.
function landed(
  written: readonly Written[],
  states: readonly (NodeState | null)[],
  versions: ReadonlyMap<string, number | null>,
): boolean {
  return written.length > 0 && !written.some((target) => {
    const { before, generation, version } = target;
    const now = states[target.index];
    if (before !== null) {
      return now !== null && before.stat.czxid === now.stat.czxid &&
        before.stat.mzxid === now.stat.mzxid;
    }
    return now === null && version !== null && version !== undefined &&
      versions.get(generation) === version;
  });
}

// Makes generation nodes; resolves the connection's loss when it dropped
// meanwhile (making them again is harmless), `undefined` once made.
async function madeGenerations(
  nodes: Nodes,
  paths: readonly string[],
  signal: AbortSignal | undefined,
): Promise<ZkError | undefined> {
  try {
    await Promise.all(
      paths.map((path) => ensureGeneration(nodes, path, signal)),
    );
    return undefined;
  } catch (error) {
    if (isConnectionLoss(error)) return error as ZkError;
    throw error;
  }
}

/** Errors of a generation operation that mean "it was not as known". */
const STALE: ReadonlySet<number> = new Set([Code.noNode, Code.nodeExists]);

/** Errors that mean "the nodes changed since they were read". */
const CONFLICTS: ReadonlySet<number> = new Set([
  Code.noNode,
  Code.nodeExists,
  Code.badVersion,
  Code.notEmpty,
]);

// The operations that write a target, each carrying the version read.
function plan(nodes: Nodes, target: Target): MultiOp[] {
  const { write, state, path } = target;
  if (!write) return [];
  if (write.type === "delete") {
    if (!state || state.data === null) return [];
    // A key with children keeps its node, as an implicit parent.
    if (state.stat.numChildren > 0) {
      return [{
        type: "setData",
        path,
        data: null,
        version: state.stat.version,
      }];
    }
    return [{ type: "delete", path, version: state.stat.version }];
  }
  const spec = nodes.createSpec(path, write.value, write.ttl);
  if (!state) return [{ type: "create", spec }];
  if (state.ttl === write.ttl) {
    return [{
      type: "setData",
      path,
      data: write.value,
      version: state.stat.version,
    }];
  }
  // A node's kind is fixed at creation: make it again.
  if (state.stat.numChildren > 0) throw kindChangeError(target.key, write.ttl);
  return [
    { type: "delete", path, version: state.stat.version },
    { type: "create", spec },
  ];
}

// Operations that fail unless the node is still as it was read.
function assertUnchanged(nodes: Nodes, target: Target): MultiOp[] {
  const { state, path } = target;
  if (state) return [{ type: "check", path, version: state.stat.version }];
  return [
    {
      type: "create",
      spec: { path, data: null, acl: nodes.acl, mode: Mode.persistent },
    },
    { type: "delete", path, version: 0 },
  ];
}
