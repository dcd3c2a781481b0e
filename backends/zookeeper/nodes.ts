/**
 * Znodes as the store sees them: reading a node's state (its data, version,
 * TTL), telling keys from the parents the backend creates, and the few
 * requests every operation is built of.
 *
 * **Keys and implicit parents.** A znode without data (ZooKeeper keeps a
 * null buffer apart from an empty one; `zkCli.sh get` prints `null`) is a
 * parent the backend created for a deeper key, not a key: `get`, `exists`,
 * `list` and watches skip it. A key put with an empty value has empty, not
 * null, data. Deleting a key that has children sets its data back to null.
 *
 * **TTLs.** A key put with a ttl is a TTL znode (ZooKeeper 3.5.3+, with
 * `zookeeper.extendedTypesEnabled=true`), which the server deletes once it
 * has not been written for the ttl and has no children. ZooKeeper does not
 * tell clients a node's TTL (its stat reports `ephemeralOwner` 0 for TTL
 * nodes), so the backend writes it in the node's ACL: an entry
 * `digest:valkeyrie-ttl:<ms>` with no permissions, which grants nothing (no
 * digest identity can match it) and lives and dies with the node. Readers
 * then know the node expires at `mtime + ttl` and hide it from then on,
 * without waiting for the server's container manager.
 *
 * @module
 */

import { StoreError } from "../../core/errors.ts";
import type { Entry } from "../../core/driver.ts";
import { isCode, ZkError } from "./errors.ts";
import { Generations } from "./generations.ts";
import type { JuteReader } from "./jute.ts";
import {
  type Acl,
  Code,
  type CreateSpec,
  Mode,
  type MultiOp,
  type MultiResult,
  Op,
  readAcls,
  readMulti,
  readStat,
  type Stat,
  writeCreate,
  writeMulti,
} from "./protocol.ts";
import type { Paths } from "./paths.ts";
import type { Session } from "./session.ts";

/**
 * Rounds of {@linkcode Nodes.ensureParents}: one may find what it knew of a
 * generation node stale, the next makes the parents; more means writers keep
 * deleting them.
 */
const MAX_PARENT_ROUNDS = 4;

/** The ACL entry that records a node's TTL: `digest:valkeyrie-ttl:<ms>`. */
const TTL_ACL_USER = "valkeyrie-ttl";

/** What a node is, as read. */
export interface NodeState {
  path: string;
  stat: Stat;
  /** The data (`null`: an implicit parent), if it was read. */
  data?: Uint8Array | null;
  /** The TTL the node was created with, in milliseconds, if any. */
  ttl: number | undefined;
}

/** The ACL entry recording `ttl`. */
export function ttlAcl(ttl: number): Acl {
  return { perms: 0, scheme: "digest", id: `${TTL_ACL_USER}:${ttl}` };
}

/** The TTL an ACL records, if any. */
export function ttlOf(acls: readonly Acl[]): number | undefined {
  for (const acl of acls) {
    if (acl.scheme !== "digest" || acl.perms !== 0) continue;
    const [user, value] = acl.id.split(":");
    if (user !== TTL_ACL_USER) continue;
    const ttl = Number(value);
    if (Number.isSafeInteger(ttl) && ttl > 0) return ttl;
  }
  return undefined;
}

/** When a node expires (ms since the epoch), if it has a TTL. */
export function expiresAt(state: NodeState): number | undefined {
  return state.ttl === undefined ? undefined : state.stat.mtime + state.ttl;
}

/** Whether the node is a key now: it has data and has not expired. */
export function isLive(state: NodeState, now: number): boolean {
  if (state.data === null) return false;
  const at = expiresAt(state);
  return at === undefined || at > now;
}

/** The entry of a live node, or `null`. */
export function entryOf(
  key: string,
  state: NodeState | null,
  now = Date.now(),
): Entry | null {
  if (!state || !state.data || !isLive(state, now)) return null;
  const entry: Entry = {
    key,
    value: state.data,
    lastIndex: state.stat.mzxid,
  };
  const at = expiresAt(state);
  if (at !== undefined) entry.expiresAt = at;
  return entry;
}

/** The requests the store's operations are made of, on one session. */
export class Nodes {
  readonly session: Session;
  readonly paths: Paths;
  /** The ACL of every node the store creates. */
  readonly acl: readonly Acl[];
  /** What is known of the generation nodes (see `generations.ts`). */
  readonly generations: Generations;

  constructor(session: Session, paths: Paths, acl: readonly Acl[]) {
    this.session = session;
    this.paths = paths;
    this.acl = acl;
    this.generations = new Generations(paths);
  }

  /**
   * Makes this session's next reads see every write the ensemble committed
   * before now: a server may lag the leader otherwise.
   *
   * ZooKeeper's own `sync` is not enough. A leader answers it from its own
   * state, also a leader the others have replaced without its knowing yet
   * (one paused for longer than `syncLimit`, answering the requests queued
   * meanwhile in the tick before it notices; ZOOKEEPER-1675), and a fault
   * run read a key as absent that way after a compare-and-set had found it.
   * So the barrier is a `multi` instead: a transaction a quorum of the
   * current leader's followers must accept, also when its one operation
   * fails, and a server answers the session's later requests only after it
   * has applied it. A replaced leader cannot get it accepted; it steps down
   * and drops the connection, and the caller sends again. Its one `check`
   * of the root, at any version, changes nothing; the price is a
   * transaction in every server's log (one zxid) per barrier.
   */
  async barrier(signal?: AbortSignal): Promise<void> {
    // Whether the check held does not matter: the multi went through the
    // quorum either way.
    await this.multi(
      [{ type: "check", path: this.paths.root, version: -1 }],
      signal,
    );
  }

  /**
   * Reads a node: its stat and TTL, and its data when `withData`. `null`
   * when it does not exist.
   */
  async read(
    path: string,
    withData: boolean,
    signal?: AbortSignal,
  ): Promise<NodeState | null> {
    while (true) {
      // Both requests go out together; the server answers them in order.
      const data = withData
        ? this.session.request(
          Op.getData,
          (w) => w.string(path).bool(false),
          readData,
          { signal },
        )
        : undefined;
      const acl = this.session.request(
        Op.getACL,
        (w) => w.string(path),
        readAcl,
        { signal },
      );
      // Both are awaited below; one whose twin failed first must not go
      // unhandled.
      data?.catch(() => {});
      acl.catch(() => {});
      let dataReply;
      try {
        dataReply = data ? (await data).value : undefined;
      } catch (error) {
        if (isCode(error, Code.noNode)) return null;
        throw error;
      }
      let aclReply;
      try {
        aclReply = (await acl).value;
      } catch (error) {
        // Deleted between the two reads: it is gone now.
        if (isCode(error, Code.noNode)) return null;
        throw error;
      }
      // Replaced between the two reads: read the new one.
      if (dataReply && dataReply.stat.czxid !== aclReply.stat.czxid) continue;
      return {
        path,
        stat: dataReply?.stat ?? aclReply.stat,
        data: dataReply?.data,
        ttl: ttlOf(aclReply.acl),
      };
    }
  }

  /** The names of a node's children, or `null` when it does not exist. */
  async children(path: string, signal?: AbortSignal): Promise<string[] | null> {
    try {
      const reply = await this.session.request(
        Op.getChildren,
        (w) => w.string(path).bool(false),
        (r) => r.strings(),
        { signal },
      );
      return reply.value;
    } catch (error) {
      if (isCode(error, Code.noNode)) return null;
      throw error;
    }
  }

  /** Runs a multi; resolves its zxid and per-operation results. */
  async multi(
    ops: readonly MultiOp[],
    signal?: AbortSignal,
  ): Promise<{ zxid: bigint; results: MultiResult[] }> {
    const reply = await this.session.request(
      Op.multi,
      (w) => writeMulti(w, ops),
      readMulti,
      { signal, allowError: true },
    );
    if (reply.err !== Code.ok && reply.value === undefined) {
      throw new ZkError(reply.err);
    }
    return { zxid: reply.zxid, results: reply.value ?? [] };
  }

  /** Creates a node; resolves its path (sequential nodes get a suffix). */
  async create(spec: CreateSpec, signal?: AbortSignal): Promise<string> {
    const op = spec.mode === Mode.persistentWithTtl
      ? Op.createTTL
      : spec.mode === Mode.container
      ? Op.createContainer
      : Op.create2;
    const reply = await this.session.request(
      op,
      (w) => writeCreate(w, spec),
      (r) => r.string(),
      { signal },
    );
    return reply.value;
  }

  /** Deletes a node if it is at `version` (-1: any). */
  async delete(path: string, version: number, signal?: AbortSignal) {
    await this.session.request(
      Op.delete,
      (w) => w.string(path).int(version),
      undefined,
      { signal },
    );
  }

  /** How to create the node of a key holding `data`, with `ttl` if set. */
  createSpec(path: string, data: Uint8Array | null, ttl?: number): CreateSpec {
    if (ttl === undefined) {
      return { path, data, acl: this.acl, mode: Mode.persistent };
    }
    return {
      path,
      data,
      acl: [...this.acl, ttlAcl(ttl)],
      mode: Mode.persistentWithTtl,
      ttl,
    };
  }

  /**
   * Creates every missing ancestor of `path` (below ZooKeeper's root) as an
   * implicit parent: a node without data. One at a key's path moves its
   * generation node in the same `multi` (see `generations.ts`).
   */
  async ensureParents(path: string, signal?: AbortSignal): Promise<void> {
    const ancestors = this.paths.ancestors(path);
    const keys = ancestors.some((ancestor) =>
      this.paths.key(ancestor) !== undefined
    );
    for (let round = 1;; round++) {
      const known = keys ? this.generations.known(this) : undefined;
      const exist = await Promise.all(
        ancestors.map((ancestor) =>
          this.session.request(
            Op.exists,
            (w) => w.string(ancestor).bool(false),
            undefined,
            { signal },
          ).then(() => true, (error) => {
            if (isCode(error, Code.noNode)) return false;
            throw error;
          })
        ),
      );
      await known;
      const missing = ancestors.filter((_, i) => !exist[i]);
      // Sent top down in one go: the server creates them in that order.
      const failures = (await Promise.all(
        missing.map((ancestor) => this.#createParent(ancestor, signal)),
      )).filter((failure) => failure !== undefined);
      if (failures.length === 0) return;
      if (round >= MAX_PARENT_ROUNDS) throw failures[0];
    }
  }

  // Creates one parent; resolves why it could not be made yet (its parent
  // is missing, or what was known of its generation node was stale), or
  // `undefined` when it exists now.
  async #createParent(
    path: string,
    signal?: AbortSignal,
  ): Promise<ZkError | undefined> {
    const spec = this.createSpec(path, null);
    if (this.paths.key(path) === undefined) {
      // The store's root and above, hidden nodes: not keys, no generation.
      await this.create(spec, signal).catch((error) => {
        if (!isCode(error, Code.nodeExists)) throw error;
      });
      return undefined;
    }
    const ops: MultiOp[] = [
      { type: "create", spec },
      ...this.generations.creationOps(this, [
        this.paths.generationPath(path),
      ]),
    ];
    const { results } = await this.multi(ops, signal);
    const failed = results.findIndex((result) =>
      result.err !== Code.ok && result.err !== Code.runtimeInconsistency
    );
    if (failed < 0) return undefined;
    const err = results[failed].err;
    if (failed === 0 && err === Code.nodeExists) return undefined;
    const op = ops[failed];
    const at = op.type === "create" ? op.spec.path : op.path;
    if (
      this.paths.isGeneration(at) &&
      (err === Code.noNode || err === Code.nodeExists)
    ) {
      this.generations.forget();
      return new ZkError(err, at);
    }
    if (err === Code.noNode) return new ZkError(err, at);
    throw new ZkError(err, at);
  }

  /**
   * Deletes the implicit parents above `path` (and `path` itself when
   * `inclusive`) that no key needs any more: each node below the store's
   * root that has neither data nor children, bottom up, stopping at the
   * first that is still needed.
   */
  async prune(
    path: string,
    signal?: AbortSignal,
    inclusive = false,
  ): Promise<void> {
    const ancestors = [
      ...this.paths.ancestors(path),
      ...(inclusive ? [path] : []),
    ].filter((a) => this.paths.below(a));
    for (const ancestor of ancestors.reverse()) {
      const state = await this.read(ancestor, true, signal);
      if (!state || state.data !== null || state.stat.numChildren > 0) return;
      try {
        await this.delete(ancestor, state.stat.version, signal);
      } catch (error) {
        // A key or a child arrived meanwhile: it is needed after all.
        if (error instanceof ZkError) return;
        throw error;
      }
    }
  }
}

function readData(r: JuteReader): { data: Uint8Array | null; stat: Stat } {
  return { data: r.buffer(), stat: readStat(r) };
}

function readAcl(r: JuteReader): { acl: Acl[]; stat: Stat } {
  return { acl: readAcls(r), stat: readStat(r) };
}

/**
 * The error for a write ZooKeeper cannot make: a znode's kind (with or
 * without a TTL) is fixed at creation, and a znode with children cannot be
 * deleted to create it again.
 */
export function kindChangeError(key: string, ttl: number | undefined) {
  return new StoreError(
    ttl === undefined
      ? `Cannot make ${
        JSON.stringify(key)
      } permanent: it was put with a ttl and has children, and ZooKeeper cannot change a znode with children into one without a TTL`
      : `Cannot put ${
        JSON.stringify(key)
      } with a ttl: it has children, and ZooKeeper cannot give a TTL to a znode with children (or change its TTL)`,
  );
}
