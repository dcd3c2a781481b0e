/**
 * The database of a file this process owns: reads and writes go straight to
 * the engine's {@linkcode Database}, watches hear its change feed, and lock
 * holds are kept in memory and written to the file as records (see
 * {@linkcode LOCK_RECORD_PREFIX}), so whoever owns the file next finds them.
 *
 * @module
 */

import { watchKeyLocally, watchTreeLocally } from "../../core/local_feed.ts";
import type {
  AtomicStep,
  CommitOutcome,
  Entry,
  KeySink,
  TreeSink,
} from "../../core/driver.ts";
import type { Database } from "../../engine/database.ts";
import type { IntegrityReport } from "../../engine/engine.ts";
import {
  type FileAccess,
  isHidden,
  LOCK_RECORD_PREFIX,
  type LockAttempt,
  type LockFence,
  lockRecordKey,
} from "./access.ts";

interface Hold {
  token: string;
  expiresAt: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The database of a file this process owns. */
export class LocalAccess implements FileAccess {
  readonly db: Database;
  /** The lock holds: the records in the file, as of the last commit. */
  readonly #holds = new Map<string, Hold>();

  private constructor(db: Database) {
    this.db = db;
  }

  /**
   * Serves `db`, reading the lock holds its file records.
   *
   * @param db The open database.
   * @returns The access.
   */
  static async over(db: Database): Promise<LocalAccess> {
    const access = new LocalAccess(db);
    for (const entry of await db.list(LOCK_RECORD_PREFIX)) {
      access.#holds.set(entry.key.slice(LOCK_RECORD_PREFIX.length), {
        token: decoder.decode(entry.value),
        expiresAt: entry.expiresAt ?? Infinity,
      });
    }
    return access;
  }

  get(key: string): Promise<Entry | null> {
    try {
      return Promise.resolve(this.db.get(key));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async list(dir: string): Promise<Entry[]> {
    const entries = await this.db.list(dir);
    return dir === ""
      ? entries.filter((entry) => !isHidden(entry.key))
      : entries;
  }

  page(
    dir: string,
    after: string | undefined,
    limit: number,
  ): Promise<Entry[]> {
    try {
      // The lock records sort first ("\u0001..."): a page of the root
      // skips past them rather than filtering a page of them away.
      const entries = this.db.page(dir, after, limit);
      return Promise.resolve(
        dir === "" ? entries.filter((entry) => !isHidden(entry.key)) : entries,
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  put(key: string, value: Uint8Array, ttl?: number): Promise<bigint> {
    return this.db.put(key, value, ttl);
  }

  delete(key: string): Promise<void> {
    return this.db.delete(key);
  }

  deleteTree(key: string | null, dir: string): Promise<void> {
    return this.db.write((tx) => {
      const revision = tx.op();
      tx.deleteTree(key, dir);
      if (dir !== "") return;
      // The whole keyspace: the lock records stay, as the locks do.
      const now = Date.now();
      for (const [locked, hold] of this.#holds) {
        if (hold.expiresAt <= now) continue;
        tx.put(
          lockRecordKey(locked),
          encoder.encode(hold.token),
          revision,
          hold.expiresAt === Infinity ? undefined : hold.expiresAt - now,
        );
      }
    });
  }

  commit(
    steps: readonly AtomicStep[],
    fences: readonly LockFence[] = [],
  ): Promise<CommitOutcome> {
    return this.db.write((tx): CommitOutcome => {
      // Inside the write: no other write can take or release a hold between
      // this check and the commit.
      const now = Date.now();
      for (const fence of fences) {
        const held = this.#holds.get(fence.key);
        if (!held || held.token !== fence.token || held.expiresAt <= now) {
          return { ok: false, fenced: true };
        }
      }
      for (const step of steps) {
        if (step.type !== "check") continue;
        const current = tx.revision(step.key);
        if (current !== step.lastIndex) {
          return { ok: false, key: step.key, current };
        }
      }
      const revision = tx.op();
      for (const step of steps) {
        if (step.type === "put") {
          tx.put(step.key, step.value, revision, step.ttl);
        } else if (step.type === "delete") {
          tx.delete(step.key);
        }
      }
      return { ok: true, lastIndex: BigInt(revision) };
    });
  }

  watchKey(key: string, sink: KeySink, signal: AbortSignal): void {
    watchKeyLocally(this.db, key, sink, signal);
  }

  watchTree(dir: string, sink: TreeSink, signal: AbortSignal): void {
    if (dir !== "") {
      watchTreeLocally(this.db, dir, sink, signal);
      return;
    }
    watchTreeLocally(this.db, dir, {
      reset: (entries) => sink.reset(entries.filter((e) => !isHidden(e.key))),
      put: (entry) => isHidden(entry.key) || sink.put(entry),
      delete: (key) => isHidden(key) || sink.delete(key),
      error: (error) => sink.error(error),
    }, signal);
  }

  async tryLock(
    key: string,
    token: string,
    value: Uint8Array,
    ttl: number,
  ): Promise<LockAttempt> {
    const now = Date.now();
    const held = this.#holds.get(key);
    if (held && held.token !== token && held.expiresAt > now) {
      return { heldFor: held.expiresAt - now };
    }
    // Taken at once in memory, so a second attempt in this tick sees it.
    const hold = { token, expiresAt: now + ttl };
    this.#holds.set(key, hold);
    try {
      const revision = await this.db.write((tx) => {
        const revision = tx.op();
        tx.put(lockRecordKey(key), encoder.encode(token), revision, ttl);
        tx.put(key, value, revision);
        return revision;
      });
      return { lastIndex: BigInt(revision) };
    } catch (error) {
      if (this.#holds.get(key) === hold) this.#holds.delete(key);
      throw error;
    }
  }

  async renewLock(key: string, token: string, ttl: number): Promise<boolean> {
    const held = this.#holds.get(key);
    if (!held || held.token !== token || held.expiresAt <= Date.now()) {
      return false;
    }
    held.expiresAt = Date.now() + ttl;
    await this.db.write((tx) => {
      tx.put(lockRecordKey(key), encoder.encode(token), tx.op(), ttl);
    });
    return true;
  }

  async unlock(key: string, token: string, deleteKey: boolean): Promise<void> {
    const held = this.#holds.get(key);
    if (!held || held.token !== token) return;
    const live = held.expiresAt > Date.now();
    this.#holds.delete(key);
    await this.db.write((tx) => {
      tx.op();
      tx.delete(lockRecordKey(key));
      if (deleteKey && live) tx.delete(key);
    });
  }

  verify(): Promise<IntegrityReport> {
    return this.db.verify();
  }
}
