/**
 * Open database files of this process. Every handle that opens the same
 * file (by its real path) shares one engine database, one lock table and
 * one process lock; the last handle to close closes the file.
 *
 * @module
 */

import { realpathSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { StoreError } from "../../core/errors.ts";
import { Database, type DatabaseOptions } from "../../wasm/database.ts";
import { FileHost } from "../../wasm/host.ts";
import {
  acquireProcessLock,
  type ProcessLock,
} from "../../wasm/process_lock.ts";
import { LocalLockTable } from "../../core/local_locks.ts";

/** A database file opened by one or more handles. */
export interface SharedDatabase {
  /** The file's real path. */
  readonly path: string;
  readonly db: Database;
  readonly locks: LocalLockTable;
  readonly processLock: ProcessLock;
  /** Handles open on it. */
  handles: number;
  /** Set once the last handle started closing it. */
  closing?: Promise<void>;
}

const opened = new Map<string, Promise<SharedDatabase>>();

/** The real path of `path`, also when the file does not exist yet. */
export function realPath(path: string): string {
  const absolute = resolve(path);
  try {
    return realpathSync(absolute);
  } catch {
    try {
      return join(realpathSync(dirname(absolute)), basename(absolute));
    } catch {
      return absolute;
    }
  }
}

/**
 * Opens the database file at `path` for one more handle.
 *
 * @param path The file.
 * @param options Cache and durability; the first handle's options apply.
 * @returns The shared database.
 */
export async function openShared(
  path: string,
  options: DatabaseOptions,
): Promise<SharedDatabase> {
  const real = realPath(path);
  while (true) {
    let pending = opened.get(real);
    if (!pending) {
      pending = openFile(real, options);
      opened.set(real, pending);
      pending.catch(() => opened.delete(real));
    }
    const shared = await pending;
    if (shared.closing) {
      await shared.closing.catch(() => {});
      continue;
    }
    shared.handles++;
    return shared;
  }
}

async function openFile(
  path: string,
  options: DatabaseOptions,
): Promise<SharedDatabase> {
  const processLock = await acquireProcessLock(path);
  let host: FileHost | undefined;
  try {
    host = new FileHost(path);
    const db = await Database.open(host, options);
    return { path, db, locks: new LocalLockTable(), processLock, handles: 0 };
  } catch (error) {
    host?.close();
    await processLock.release();
    const message = error instanceof Error ? error.message : String(error);
    throw new StoreError(`Could not open database ${path}: ${message}`, {
      cause: error,
    });
  }
}

/**
 * Closes one handle of `shared`; the last one closes the file.
 *
 * @param shared The database.
 */
export function closeShared(shared: SharedDatabase): Promise<void> {
  if (--shared.handles > 0) return Promise.resolve();
  shared.closing = (async () => {
    opened.delete(shared.path);
    shared.locks.clear();
    try {
      await shared.db.close();
    } finally {
      await shared.processLock.release();
    }
  })();
  return shared.closing;
}
