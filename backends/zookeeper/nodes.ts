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

  constructor(session: Session, paths: Paths, acl: readonly Acl[]) {
    this.session = session;
    this.paths = paths;
    this.acl = acl;
  }

  /**
   * Makes the next reads see every write the ensemble committed before now
   * (ZooKeeper's `sync`): a server may lag the leader otherwise.
   */
  async sync(signal?: AbortSignal): Promise<void> {
    await this.session.request(
      Op.sync,
      (w) => w.string(this.paths.root),
      undefined,
      { signal },
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
   * implicit parent: a node without data.
   */
  async ensureParents(path: string, signal?: AbortSignal): Promise<void> {
    const ancestors = this.paths.ancestors(path);
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
    // Sent top down in one go: the server creates them in that order.
    await Promise.all(
      ancestors.filter((_, i) => !exist[i]).map((ancestor) =>
        this.create(this.createSpec(ancestor, null), signal).catch((error) => {
          if (!isCode(error, Code.nodeExists)) throw error;
        })
      ),
    );
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
