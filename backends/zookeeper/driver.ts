/**
 * The ZooKeeper driver: the store contract over one ZooKeeper session (and
 * one more per lock ttl that differs from the session's timeout).
 *
 * @module
 */

import { StoreError } from "../../core/errors.ts";
import { utf8Length } from "../../core/keys.ts";
import type {
  AtomicStep,
  CommitOutcome,
  Driver,
  DriverCommitOptions,
  DriverLockOptions,
  DriverPut,
  DriverReadOptions,
  DriverSignalOptions,
  DriverTryLockOptions,
  DriverWriteOptions,
  Entry,
  KeySink,
  LockLease,
  ScanRange,
  TreeSink,
} from "../../core/driver.ts";
import type { DriverEvent } from "../../core/events.ts";
import type { StoreLimits } from "../../core/types.ts";
import { commit } from "./commit.ts";
import type { ZookeeperConfig } from "./config.ts";
import { resending, translateError } from "./errors.ts";
import { fenceOf, type LockContext, takeLock } from "./lock.ts";
import { entryOf, Nodes, ttlAcl } from "./nodes.ts";
import { Paths } from "./paths.ts";
import { openSession } from "./connect.ts";
import { LockSessions } from "./lock_sessions.ts";
import { scanTree } from "./scan.ts";
import type { Acl } from "./protocol.ts";
import type { Session } from "./session.ts";
import { deleteTree, listTree } from "./tree.ts";
import { watchKey, watchTree } from "./watch.ts";

/**
 * The longest key, in UTF-8 bytes: a bound of this backend, not of
 * ZooKeeper (whose only bound is the request size). It keeps the largest
 * path, escaped, a small part of a request.
 */
const MAX_KEY_BYTES = 4_096;

/**
 * How much longer than its key a path can be once escaped: `¤80;` (5 bytes)
 * stands for a 2-byte character.
 */
const ESCAPED_GROWTH = 2.5;

/** Request bytes besides paths, data and ACLs: headers of a two-step multi. */
const REQUEST_OVERHEAD_BYTES = 128;

/**
 * Bytes of one generation operation of a multi besides the root's path: its
 * header, `/¤gen/xx`, a version and (for a `setData`) a null buffer.
 */
const GENERATION_OP_BYTES = 40;

/**
 * How long after its session's timeout ZooKeeper may still hold an
 * ephemeral node, besides one tick (sessions expire on tick boundaries):
 * the leader's deletion, its notification and the waiter's requests.
 */
const EXPIRY_PROCESSING_MS = 250;

/**
 * The most checks and writes of one `atomic()`. ZooKeeper bounds a `multi`
 * by its size only (maxBufferSize, checked before sending); this keeps one
 * transaction from holding the ensemble's pipeline for long.
 */
const MAX_ATOMIC_OPERATIONS = 1_024;

/**
 * Keys per chunk of `getMany`, `putMany` and `deleteMany`. A chunk of writes
 * is one `multi` while it fits in maxBufferSize (see `byteGroups`); more
 * keys would only make one conflicting key retry more of them.
 */
const MAX_BATCH_KEYS = 256;

function aclBytes(acl: readonly Acl[]): number {
  return acl.reduce(
    (sum, entry) => sum + 12 + utf8Length(entry.scheme) + utf8Length(entry.id),
    4,
  );
}

/** The store's limits under `config`. */
function limitsOf(config: ZookeeperConfig): StoreLimits {
  const maxPath = utf8Length(config.root) + 1 +
    Math.ceil(MAX_KEY_BYTES * ESCAPED_GROWTH);
  // The largest write: a key made again with another kind, in one multi
  // (a delete and a create of the same path), with the TTL's ACL entry,
  // and the check and move of its generation node (generations.ts).
  const reserve = 2 * (4 + maxPath) +
    aclBytes([...config.acl, ttlAcl(Number.MAX_SAFE_INTEGER)]) +
    2 * (GENERATION_OP_BYTES + utf8Length(config.root)) +
    REQUEST_OVERHEAD_BYTES;
  return Object.freeze({
    maxKeyBytes: MAX_KEY_BYTES,
    maxValueBytes: config.maxBufferSize - reserve,
    ttlGranularityMs: config.tickTime + EXPIRY_PROCESSING_MS,
    maxAtomicOperations: MAX_ATOMIC_OPERATIONS,
    maxTtlMs: MAX_TTL_MS,
    maxBatchKeys: MAX_BATCH_KEYS,
  });
}

/** A ZooKeeper store's driver. */
export class ZookeeperDriver implements Driver {
  readonly backend = "zookeeper";
  readonly limits: StoreLimits;
  readonly #session: Session;
  readonly #nodes: Nodes;
  readonly #locks: LockSessions;
  /** Request bytes a `multi` of a batch may take, its headers aside. */
  readonly #batchBudget: number;
  /** Bytes of one write's ACLs and generation ops, besides its path and data. */
  readonly #writeOverhead: number;

  private constructor(config: ZookeeperConfig, session: Session) {
    this.limits = limitsOf(config);
    this.#batchBudget = config.maxBufferSize - REQUEST_OVERHEAD_BYTES;
    this.#writeOverhead = aclBytes([
      ...config.acl,
      ttlAcl(Number.MAX_SAFE_INTEGER),
    ]) + 3 * (GENERATION_OP_BYTES + utf8Length(config.root));
    this.#session = session;
    this.#nodes = new Nodes(session, new Paths(config.root), config.acl);
    this.#locks = new LockSessions(config, session);
  }

  /** Opens the store's session within `connectTimeout`. */
  static async connect(
    config: ZookeeperConfig,
    signal?: AbortSignal,
  ): Promise<ZookeeperDriver> {
    const session = await openSession(config, config.sessionTimeout, signal);
    return new ZookeeperDriver(config, session);
  }

  async get(key: string, options: DriverReadOptions): Promise<Entry | null> {
    const path = this.#nodes.paths.path(key);
    try {
      return await resending(this.#session, "get", async () => {
        const barrier = this.#barrier(options.consistent);
        const state = await this.#nodes.read(path, true);
        await barrier;
        return entryOf(key, state);
      });
    } catch (error) {
      throw translateError(error, { op: "get", key }) ?? error;
    }
  }

  async put(
    key: string,
    value: Uint8Array,
    options: DriverWriteOptions,
  ): Promise<bigint> {
    // The multi's zxid is the node's new mzxid: the key's lastIndex.
    const outcome = await this.#write(
      "put",
      [{ type: "put", key, value, ttl: ttlOf(options.ttl) }],
      options.signal,
    );
    if (!outcome.ok) throw new StoreError("ZooKeeper refused an unchecked put");
    return outcome.lastIndex;
  }

  async delete(key: string, options: DriverSignalOptions): Promise<void> {
    await this.#write(
      "delete",
      [{ type: "delete", key }],
      options.signal,
    );
  }

  async list(dir: string, options: DriverReadOptions): Promise<Entry[]> {
    const key = dir.endsWith("/") ? dir.slice(0, -1) : dir;
    try {
      return await resending(this.#session, "list", async () => {
        const barrier = this.#barrier(options.consistent);
        const entries = await listTree(this.#nodes, key, options.signal);
        await barrier;
        return entries;
      });
    } catch (error) {
      throw translateError(error, { op: "list", key }) ?? error;
    }
  }

  async scan(range: ScanRange, options: DriverReadOptions): Promise<Entry[]> {
    try {
      return await resending(this.#session, "scan", async () => {
        const barrier = this.#barrier(options.consistent);
        const entries = await scanTree(this.#nodes, range, options.signal);
        await barrier;
        return entries;
      });
    } catch (error) {
      throw translateError(error, { op: "scan", key: range.dir }) ?? error;
    }
  }

  async getMany(
    keys: readonly string[],
    options: DriverReadOptions,
  ): Promise<(Entry | null)[]> {
    try {
      return await resending(this.#session, "getMany", async () => {
        const barrier = this.#barrier(options.consistent);
        // Every read goes out at once: one round trip for the chunk.
        const states = await Promise.allSettled(
          keys.map((key) =>
            this.#nodes.read(this.#nodes.paths.path(key), true, options.signal)
          ),
        );
        await barrier;
        const now = Date.now();
        return states.map((state, i) => {
          if (state.status === "rejected") throw state.reason;
          return entryOf(keys[i], state.value, now);
        });
      });
    } catch (error) {
      throw translateError(error, { op: "getMany" }) ?? error;
    }
  }

  async putMany(
    writes: readonly DriverPut[],
    options: DriverSignalOptions,
  ): Promise<bigint[]> {
    const groups = this.#byteGroups(
      writes,
      (write) => write.value.byteLength + this.#writeOverhead,
    );
    // Every key a multi writes gets the multi's zxid as its mzxid: the
    // lastIndex a single put of it reports.
    const indexes = await this.#writeGroups(groups, options, async (group) => {
      const outcome = await this.#write(
        "putMany",
        group.map(({ key, value, ttl }) => ({
          type: "put",
          key,
          value,
          ttl: ttlOf(ttl),
        })),
        options.signal,
      );
      if (!outcome.ok) {
        throw new StoreError("ZooKeeper refused unchecked puts");
      }
      return outcome.lastIndex;
    });
    return groups.flatMap((group, i) => group.map(() => indexes[i]));
  }

  async deleteMany(
    keys: readonly string[],
    options: DriverSignalOptions,
  ): Promise<void> {
    const groups = this.#byteGroups(keys, () => 0);
    await this.#writeGroups(groups, options, async (group) => {
      await this.#write(
        "deleteMany",
        group.map((key) => ({ type: "delete", key })),
        options.signal,
      );
    });
  }

  // Splits a batch into runs that each fit in one multi: its path twice (a
  // key made again with another kind is deleted and created) and `extra`.
  #byteGroups<T extends string | DriverPut>(
    items: readonly T[],
    extra: (item: T) => number,
  ): T[][] {
    const groups: T[][] = [];
    let bytes = 0;
    for (const item of items) {
      const key = typeof item === "string" ? item : item.key;
      const size = 2 * (4 + utf8Length(this.#nodes.paths.path(key))) +
        GENERATION_OP_BYTES + extra(item);
      const last = groups.at(-1);
      if (last && bytes + size <= this.#batchBudget) {
        last.push(item);
        bytes += size;
      } else {
        groups.push([item]);
        bytes = size;
      }
    }
    return groups;
  }

  // Sends the groups' multis together and waits for all of them, so none
  // lands after the call has failed.
  async #writeGroups<T, R>(
    groups: T[][],
    options: DriverSignalOptions,
    write: (group: T[]) => Promise<R>,
  ): Promise<R[]> {
    options.signal?.throwIfAborted();
    const results = await Promise.allSettled(groups.map(write));
    return results.map((result) => {
      if (result.status === "rejected") throw result.reason;
      return result.value;
    });
  }

  async deleteTree(
    key: string | null,
    dir: string,
    options: DriverSignalOptions,
  ): Promise<void> {
    try {
      await resending(
        this.#session,
        "deleteTree",
        () => deleteTree(this.#nodes, key, dir, options.signal),
      );
    } catch (error) {
      throw translateError(error, { op: "deleteTree", key: dir }) ?? error;
    }
  }

  commit(
    steps: readonly AtomicStep[],
    options: DriverCommitOptions,
  ): Promise<CommitOutcome> {
    // The store hands over only leases of this driver; anything else names
    // no lock node, so it cannot be held.
    const fences = (options.fences ?? []).map(fenceOf);
    if (fences.some((path) => path === undefined)) {
      return Promise.resolve({ ok: false, fenced: true });
    }
    const withTtl = steps.map((step) =>
      step.type === "put" ? { ...step, ttl: ttlOf(step.ttl) } : step
    );
    return this.#write(
      "atomic",
      withTtl,
      options.signal,
      fences as string[],
    );
  }

  watchKey(key: string, sink: KeySink, signal: AbortSignal): void {
    watchKey(this.#nodes, key, sink, signal);
  }

  watchTree(dir: string, sink: TreeSink, signal: AbortSignal): void {
    watchTree(this.#nodes, dir, sink, signal);
  }

  async lock(key: string, options: DriverLockOptions): Promise<LockLease> {
    return (await this.#takeLock(key, options, true))!;
  }

  tryLock(
    key: string,
    options: DriverTryLockOptions,
  ): Promise<LockLease | null> {
    return this.#takeLock(key, options, false);
  }

  // ZooKeeper takes a session timeout in whole milliseconds.
  #takeLock(key: string, options: DriverTryLockOptions, wait: boolean) {
    const ttl = Math.ceil(options.ttl);
    return takeLock(this.#lockContext(), key, { ...options, ttl }, wait);
  }

  #lockContext(): LockContext {
    return {
      nodes: this.#nodes,
      sessionFor: (ttl, signal) => this.#locks.acquire(ttl, signal),
      put: async (key, value) => {
        const outcome = await this.#write(
          "lock",
          [{ type: "put", key, value }],
          undefined,
        );
        return outcome.ok ? outcome.lastIndex : 0n;
      },
      delete: async (key) => {
        await this.#write(
          "unlock",
          [{ type: "delete", key }],
          undefined,
        );
      },
    };
  }

  observe(emit: (event: DriverEvent) => void): void {
    // The store's session reports its reconnections, retries, resumed
    // watches and background errors, and the lock sessions hand theirs to
    // it (lock_sessions.ts).
    this.#session.emit = emit;
  }

  async close(): Promise<void> {
    await this.#locks.close();
    await this.#session.close();
  }

  abandon(): Promise<void> {
    this.#locks.abandon();
    this.#session.abandon();
    return Promise.resolve();
  }

  // A consistent read's barrier (`Nodes.barrier`) goes out with the reads,
  // not a round trip before them: ZooKeeper answers a session's requests in
  // the order they were sent and holds its reads until a pending write is
  // applied, so the reads still see every write committed before the
  // barrier. This made a get one round trip instead of two
  // (bench/backends_compare.ts).
  #barrier(consistent: boolean): Promise<void> | undefined {
    if (!consistent) return undefined;
    const barrier = this.#nodes.barrier();
    // Awaited after the reads; a failure of the reads alone must not leave
    // it unhandled.
    barrier.catch(() => {});
    return barrier;
  }

  async #write(
    operation: string,
    steps: readonly AtomicStep[],
    signal: AbortSignal | undefined,
    fences?: readonly string[],
  ): Promise<CommitOutcome> {
    try {
      const { outcome, deleted } = await commit(this.#nodes, steps, {
        operation,
        signal,
        fences,
      });
      // Parents left empty by a deletion go too, if they can: once per
      // parent, however many of its children a batch deleted. One that
      // stays (a writer put a key under it meanwhile, the connection
      // dropped) has no data, and reads skip it as any implicit parent.
      const byParent = new Map<string, string>();
      for (const path of deleted) {
        byParent.set(path.slice(0, path.lastIndexOf("/")), path);
      }
      await Promise.allSettled(
        [...byParent.values()].map((path) => this.#nodes.prune(path)),
      );
      return outcome;
    } catch (error) {
      throw translateError(error, { op: "write" }) ?? error;
    }
  }
}

/** The longest TTL ZooKeeper can record: 2^40 - 1 ms, about 34 years. */
const MAX_TTL_MS = 2 ** 40 - 1;

// ZooKeeper takes whole milliseconds (up to limits.maxTtlMs, which the
// store checks).
function ttlOf(ttl: number | undefined): number | undefined {
  return ttl === undefined ? undefined : Math.ceil(ttl);
}
