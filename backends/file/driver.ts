/**
 * The driver of one `file:` handle, over the database file this process
 * owns or reaches through its owner (see `shared.ts`): the same calls
 * either way, so every process sees one store.
 *
 * @module
 */

import { randomUUID } from "node:crypto";
import { waitForLock } from "../../core/lock.ts";
import { compareKeys } from "../../core/keys.ts";
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
import type { StoreLimits } from "../../core/types.ts";
import type { IntegrityReport } from "../../engine/engine.ts";
import { type FileAccess, type LockFence, lockRecordKey } from "./access.ts";
import { closeShared, type Emit, type SharedFile } from "./shared.ts";
import { MAX_PAYLOAD_BYTES } from "./wire.ts";

/**
 * What a `file:` store accepts. Keys: the engine's node pages hold three
 * keys of 1 KiB each at least, which a B+tree split needs. Values: stored
 * in overflow pages beyond 900 bytes; 16 MiB is the size tested (a value
 * passes through the engine's memory whole). Reads check expiry exactly;
 * only watch notifications wait for a timer.
 */
export const FILE_LIMITS: StoreLimits = Object.freeze({
  maxKeyBytes: 1024,
  maxValueBytes: 16 * 1024 * 1024,
  ttlGranularityMs: 50,
  maxAtomicOperations: 10_000,
  // An atomic() travels to the owner as one message when this process is
  // not the owner; the same bound holds in the owner, so a program does not
  // depend on which process opened the file first.
  maxAtomicBytes: MAX_PAYLOAD_BYTES,
  // There is no round trip to save, but each chunk is a commit, and a commit
  // of random keys copies most of a large tree's leaves: four chunks in
  // flight at once are one commit, so 200,000 keys are one.
  maxBatchKeys: 65_536,
});

/** Entries per forward page of a reverse scan's walk. */
const REVERSE_WALK_PAGE = 1_024;

/**
 * A lock waiter tries again at least this often even if it hears nothing:
 * a safety net, since every release is a commit its watch hears.
 */
const LOCK_RECHECK_MS = 1_000;

// What a fenced commit checks for each lease this backend handed out: the
// hold's record names its token.
const leaseFences = new WeakMap<LockLease, LockFence>();

/**
 * `items` in runs in order, each of at most MAX_PAYLOAD_BYTES by `bytesOf`
 * (a UTF-16 key's UTF-8 bytes at most thrice its length), each item in one.
 */
function byPayload<T>(
  items: readonly T[],
  bytesOf: (item: T) => number,
): T[][] {
  const runs: T[][] = [];
  let bytes = Infinity;
  for (const item of items) {
    const size = bytesOf(item);
    if (bytes + size > MAX_PAYLOAD_BYTES) {
      runs.push([]);
      bytes = 0;
    }
    runs[runs.length - 1].push(item);
    bytes += size;
  }
  return runs;
}

/** One handle of a database file. */
export class FileDriver implements Driver {
  readonly backend = "file";
  readonly limits: StoreLimits = FILE_LIMITS;
  readonly #shared: SharedFile;
  #closed = false;
  /** The store's events: a no-op until the store observes the driver. */
  #emit: Emit = () => {};
  #unobserve: (() => void) | undefined;

  constructor(shared: SharedFile) {
    this.#shared = shared;
  }

  get(key: string, _options: DriverReadOptions): Promise<Entry | null> {
    // The owner's get, put and delete go straight to its engine: every
    // single-process program's path. SharedFile.call() would do the same,
    // but through a closure per call, which cost ~6 % of random gets.
    const local = this.#shared.local;
    if (local) return local.get(key);
    return this.#call("get", (db) => db.get(key), true);
  }

  put(
    key: string,
    value: Uint8Array,
    options: DriverWriteOptions,
  ): Promise<bigint> {
    const local = this.#shared.local;
    if (local) return local.put(key, value, options.ttl);
    return this.#call("put", (db) => db.put(key, value, options.ttl), false);
  }

  delete(key: string, _options: DriverSignalOptions): Promise<void> {
    const local = this.#shared.local;
    if (local) return local.delete(key);
    return this.#call("delete", (db) => db.delete(key), false);
  }

  getMany(
    keys: readonly string[],
    _options: DriverReadOptions,
  ): Promise<(Entry | null)[]> {
    // Reads of one read transaction's worth, sent together to an owner.
    return this.#call(
      "getMany",
      (db) => Promise.all(keys.map((key) => db.get(key))),
      true,
    );
  }

  putMany(
    writes: readonly DriverPut[],
    _options: DriverSignalOptions,
  ): Promise<bigint[]> {
    // The owner's chunk is plain puts issued at once: the group commit
    // applies them in key order, in one commit with whatever else is queued.
    const local = this.#shared.local;
    if (local) {
      return Promise.all(
        writes.map(({ key, value, ttl }) => local.put(key, value, ttl)),
      );
    }
    // A client sends a commit per run of the chunk that fits a message.
    const runs = byPayload(writes, (w) => w.key.length * 3 + w.value.length);
    return Promise.all(runs.map((run) => {
      const steps = run.map(({ key, value, ttl }) => ({
        type: "put" as const,
        key,
        value,
        ttl,
      }));
      return this.#call("putMany", async (db) => {
        const outcome = await db.commit(steps, []);
        if (!outcome.ok) throw new Error("a commit without checks failed");
        return run.map(() => outcome.lastIndex);
      }, false);
    })).then((results) => results.flat());
  }

  deleteMany(
    keys: readonly string[],
    _options: DriverSignalOptions,
  ): Promise<void> {
    const local = this.#shared.local;
    if (local) {
      return Promise.all(keys.map((key) => local.delete(key))).then(() => {});
    }
    const runs = byPayload(keys, (key) => key.length * 3);
    return Promise.all(runs.map((run) => {
      const steps = run.map((key) => ({ type: "delete" as const, key }));
      return this.#call("deleteMany", async (db) => {
        await db.commit(steps, []);
      }, false);
    })).then(() => {});
  }

  list(dir: string, _options: DriverReadOptions): Promise<Entry[]> {
    return this.#call("list", (db) => db.list(dir), true);
  }

  scan(range: ScanRange, options: DriverReadOptions): Promise<Entry[]> {
    if (range.reverse) return this.#reversePage(range, options);
    let lower = range.lower;
    let inclusive = range.lowerInclusive;
    // Below " " lie only the backend's lock records (keys cannot start with
    // a control character), so a page of the whole store starts at " ".
    if (
      range.dir === "" && (lower === undefined || compareKeys(lower, " ") < 0)
    ) {
      lower = " ";
      inclusive = true;
    }
    if (lower !== undefined && compareKeys(lower, range.dir) <= 0) {
      lower = undefined;
    }
    const from = lower;
    return this.#call("scan", async (db) => {
      const page: Entry[] = [];
      // The engine pages after a key; an inclusive bound is read first.
      if (from !== undefined && inclusive) {
        const first = await db.get(from);
        if (first) page.push(first);
      }
      if (page.length < range.limit) {
        page.push(...await db.page(range.dir, from, range.limit - page.length));
      }
      if (range.upper === undefined) return page;
      const upper = range.upper;
      const end = page.findIndex((entry) => compareKeys(entry.key, upper) >= 0);
      return end < 0 ? page : page.slice(0, end);
    }, true);
  }

  // The engine's cursor walks forward only: a reverse page walks the range
  // forward, a page at a time, keeping only its last `limit` entries, so
  // memory stays at the page (the cost is the range's length: see
  // docs/backends/file.md).
  async #reversePage(
    range: ScanRange,
    options: DriverReadOptions,
  ): Promise<Entry[]> {
    const step = Math.max(range.limit, REVERSE_WALK_PAGE);
    let kept: Entry[] = [];
    let forward: ScanRange = { ...range, reverse: false, limit: step };
    while (true) {
      const page = await this.scan(forward, options);
      kept.push(...page);
      // Trimmed in steps, so the walk copies each entry a bounded number of
      // times, and never holds more than two pages.
      if (kept.length > 2 * step) kept = kept.slice(-range.limit);
      if (page.length < step) break;
      forward = {
        ...forward,
        lower: page[page.length - 1].key,
        lowerInclusive: false,
      };
    }
    return kept.slice(-range.limit).reverse();
  }

  deleteTree(
    key: string | null,
    dir: string,
    _options: DriverSignalOptions,
  ): Promise<void> {
    return this.#call("deleteTree", (db) => db.deleteTree(key, dir), false);
  }

  commit(
    steps: readonly AtomicStep[],
    options: DriverCommitOptions,
  ): Promise<CommitOutcome> {
    // The store hands over only leases of its own driver; anything else
    // names no hold, so it fails the commit.
    const fences = (options.fences ?? []).map((lease) =>
      leaseFences.get(lease) ?? { key: "", token: "" }
    );
    return this.#call("atomic", (db) => db.commit(steps, fences), false);
  }

  watchKey(key: string, sink: KeySink, signal: AbortSignal): void {
    this.#shared.watchKey(key, sink, signal, this.#emit);
  }

  watchTree(dir: string, sink: TreeSink, signal: AbortSignal): void {
    this.#shared.watchTree(dir, sink, signal, this.#emit);
  }

  // Holds are records in the file, taken and renewed by the owner; a
  // waiter hears the holder's record change (its release or expiry) through
  // a watch, in whichever process it runs.
  lock(key: string, options: DriverLockOptions): Promise<LockLease> {
    const shared = this.#shared;
    const token = randomUUID();
    const record = lockRecordKey(key);
    shared.hold(1);
    return waitForLock<LockLease>({
      signal: options.signal,
      maxWaitMs: LOCK_RECHECK_MS,
      attempt: () => this.#attempt("lock", key, token, options),
      changed: (signal) =>
        new Promise<void>((resolve) => {
          let first = true;
          // The record's watch is the waiter's, not one of the store's: its
          // resumptions are not reported (the attempts' retries are).
          shared.watchKey(record, {
            state: () => {
              if (first) first = false;
              else resolve();
            },
            error: () => resolve(),
          }, signal);
          signal.addEventListener("abort", () => resolve(), { once: true });
        }),
    }).finally(() => shared.hold(-1));
  }

  async tryLock(
    key: string,
    options: DriverTryLockOptions,
  ): Promise<LockLease | null> {
    options.signal?.throwIfAborted();
    const lease = await this.#attempt("tryLock", key, randomUUID(), options);
    return typeof lease === "number" ? null : lease;
  }

  // One attempt of `op` at the lock on `key` for `token`: the lease, or how
  // long the holder's hold has left.
  async #attempt(
    op: string,
    key: string,
    token: string,
    options: DriverTryLockOptions,
  ): Promise<LockLease | number> {
    const { ttl, value } = options;
    const attempt = await this.#call(
      op,
      (db) => db.tryLock(key, token, value, ttl),
      true,
    );
    if ("heldFor" in attempt) return attempt.heldFor;
    const lease: LockLease = {
      lastIndex: attempt.lastIndex,
      renew: () =>
        this.#closed ? Promise.resolve(false) : this.#call(
          "keepAlive",
          (db) => db.renewLock(key, token, ttl),
          true,
        ),
      release: (deleteKey: boolean) =>
        this.#call("unlock", (db) => db.unlock(key, token, deleteKey), true),
    };
    leaseFences.set(lease, { key, token });
    return lease;
  }

  /** Runs the integrity check of the file (see `EmbeddedStore.verify`). */
  verify(): Promise<IntegrityReport> {
    return this.#call("verify", (db) => db.verify(), true);
  }

  // The file's reconnections and errors are every handle's; a call's
  // retries and a watch's resumptions are the handle's that made them.
  observe(emit: Emit): void {
    this.#emit = emit;
    this.#unobserve = this.#shared.observe(emit);
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#unobserve?.();
    return closeShared(this.#shared);
  }

  // A crashed holder: its locks stay until their TTL runs out, as they
  // would for a process that died.
  abandon(): Promise<void> {
    return this.close();
  }

  #call<T>(
    op: string,
    call: (db: FileAccess) => Promise<T>,
    repeatable: boolean,
  ): Promise<T> {
    return this.#shared.call(call, repeatable, op, this.#emit);
  }
}
