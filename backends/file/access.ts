/**
 * What a `file:` handle needs from its database, whether this process owns
 * the file ({@linkcode LocalAccess} in `local.ts`) or reaches the owner
 * through its socket (`RemoteAccess` in `remote.ts`). The driver is written
 * once over it.
 *
 * @module
 */

import type {
  AtomicStep,
  CommitOutcome,
  Entry,
  KeySink,
  TreeSink,
} from "../../core/driver.ts";
import type { IntegrityReport } from "../../engine/engine.ts";

/**
 * Lock holds are records in the file itself, under this prefix, which no
 * valid key can start with (control characters are refused in keys), so a
 * process that takes the file over after its owner died knows who holds
 * what. They are hidden from every read and watch of the store.
 */
export const LOCK_RECORD_PREFIX = "\u0001lock/";

/** Whether `key` is bookkeeping of the backend, not a key of the store. */
export function isHidden(key: string): boolean {
  return key.charCodeAt(0) < 0x20;
}

/** The record of the lock on `key`. */
export function lockRecordKey(key: string): string {
  return LOCK_RECORD_PREFIX + key;
}

/** What an attempt to take a lock found. */
export type LockAttempt =
  | { lastIndex: bigint }
  | { heldFor: number };

/** A fence of a commit: `token` must hold the lock on `key`. */
export interface LockFence {
  key: string;
  token: string;
}

/** The database of one file, as a handle uses it. */
export interface FileAccess {
  get(key: string): Promise<Entry | null>;
  list(dir: string): Promise<Entry[]>;
  /**
   * Up to `limit` entries under `dir` in key order after `after` (from the
   * first when undefined): a forward page of a scan.
   */
  page(dir: string, after: string | undefined, limit: number): Promise<Entry[]>;
  /** Writes `value` at `key`; resolves the key's new revision. */
  put(key: string, value: Uint8Array, ttl?: number): Promise<bigint>;
  delete(key: string): Promise<void>;
  deleteTree(key: string | null, dir: string): Promise<void>;
  /**
   * Applies the steps if every check passes and every fence's token holds
   * its lock, checked in the same write.
   */
  commit(
    steps: readonly AtomicStep[],
    fences?: readonly LockFence[],
  ): Promise<CommitOutcome>;
  /** Reports `key`'s state, then each change, until `signal` aborts. */
  watchKey(key: string, sink: KeySink, signal: AbortSignal): void;
  /** Reports the tree under `dir`, then each change, until `signal` aborts. */
  watchTree(dir: string, sink: TreeSink, signal: AbortSignal): void;
  /**
   * Takes the lock on `key` for `token` unless another holds it, writing
   * `value` at `key` in the same commit: the fencing token, or how long the
   * holder's hold has left.
   */
  tryLock(
    key: string,
    token: string,
    value: Uint8Array,
    ttl: number,
  ): Promise<LockAttempt>;
  /** Extends `token`'s hold by `ttl`; `false` when it no longer holds it. */
  renewLock(key: string, token: string, ttl: number): Promise<boolean>;
  /** Releases `token`'s hold (deleting `key` too, if asked and held). */
  unlock(key: string, token: string, deleteKey: boolean): Promise<void>;
  verify(): Promise<IntegrityReport>;
}
