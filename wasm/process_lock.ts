/**
 * One process at a time per database file. `node:fs` has no `flock`, so the
 * lock is a Unix socket the holder listens on, beside the database
 * (`data.db.lock`). A second process cannot bind the same path (the bind
 * fails) and can connect to it: the kernel answers for the holder even
 * while its event loop is busy, so the lock is never taken from a live
 * holder. When the holder dies, even by SIGKILL, the kernel closes its
 * socket: connecting is refused, and the next process removes the stale
 * file and binds it. Two processes that find the same stale file at once
 * take turns through a directory (`mkdir` is atomic). On Windows the lock is
 * a named pipe, which disappears with its holder.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { mkdirSync, rmdirSync, statSync, unlinkSync } from "node:fs";
import { createConnection, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { StoreError } from "../core/errors.ts";

/** Unix socket paths longer than this do not fit `sockaddr_un` (104 on macOS). */
const MAX_SOCKET_PATH = 100;
/** A takeover directory older than this was left by a crashed opener. */
const STALE_TAKEOVER_MS = 10_000;
/** How often an opener retries while another one takes over a stale lock. */
const RETRY_MS = 25;
/** How long opening waits for another opener's takeover. */
const TAKEOVER_WAIT_MS = 5_000;

/** A held process lock. */
export interface ProcessLock {
  /** The socket (or pipe) path. */
  readonly path: string;
  /** Releases the lock. */
  release(): Promise<void>;
}

/** The lock path for the database at `dbPath` (absolute). */
export function lockPath(dbPath: string): string {
  const hash = createHash("sha256").update(dbPath).digest("hex").slice(0, 24);
  if (process.platform === "win32") {
    return `\\\\.\\pipe\\valkeyrie-${hash}`;
  }
  const beside = `${dbPath}.lock`;
  if (Buffer.byteLength(beside) <= MAX_SOCKET_PATH) return beside;
  return join(tmpdir(), `valkeyrie-${hash}.lock`);
}

function listen(path: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      server.unref();
      resolve(server);
    });
  });
}

/** Whether a live process listens at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => {
      socket.destroy();
      // The holder accepts and closes at once; Bun, under load, can report
      // that close as a reset of the connect itself. Only a live process
      // can accept, so a reset means "held", as a connect does.
      if (error.code === "ECONNRESET" || error.code === "EPIPE") {
        resolve(true);
      } else if (
        error.code === "ECONNREFUSED" || error.code === "ENOENT" ||
        error.code === "ENOTSOCK"
      ) resolve(false);
      else reject(error);
    });
  });
}

function locked(dbPath: string): StoreError {
  return new StoreError(
    `Database ${dbPath} is locked by another process`,
  );
}

/**
 * Takes the lock of the database at `dbPath` (absolute), or fails with a
 * `StoreError` saying it is locked by another process.
 *
 * @param dbPath The database file.
 * @returns The held lock.
 */
export async function acquireProcessLock(dbPath: string): Promise<ProcessLock> {
  const path = lockPath(dbPath);
  const deadline = Date.now() + TAKEOVER_WAIT_MS;
  while (true) {
    try {
      return held(path, await listen(path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") {
        throw new StoreError(
          `Could not lock database ${dbPath} (at ${path}): ${
            (error as Error).message
          }`,
          { cause: error },
        );
      }
    }
    let live: boolean;
    try {
      live = process.platform === "win32" || await answers(path);
    } catch (error) {
      throw new StoreError(
        `Could not tell whether database ${dbPath} is locked (at ${path}): ${
          (error as Error).message
        }`,
        { cause: error },
      );
    }
    if (live) throw locked(dbPath);
    // A stale lock: its holder died. Take it over, one opener at a time.
    const takeover = `${path}.takeover`;
    try {
      mkdirSync(takeover);
    } catch {
      try {
        if (Date.now() - statSync(takeover).mtimeMs > STALE_TAKEOVER_MS) {
          rmdirSync(takeover);
        }
      } catch { /* another opener removed it */ }
      if (Date.now() > deadline) throw locked(dbPath);
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      continue;
    }
    try {
      if (await answers(path)) throw locked(dbPath);
      try {
        unlinkSync(path);
      } catch { /* already gone */ }
      return held(path, await listen(path));
    } finally {
      rmdirSync(takeover);
    }
  }
}

// Node (libuv) unlinks a Unix socket's file when its server closes, so the
// file must not be unlinked by hand first: another process could bind a new
// one in between, which libuv would then unlink. Deno and Bun leave the
// file, so it is unlinked before closing (still listening, so no other
// process can have taken it over yet).
const RUNTIME_UNLINKS_ON_CLOSE = !("Deno" in globalThis) &&
  !process.versions.bun;

function held(path: string, server: Server): ProcessLock {
  let released: Promise<void> | undefined;
  return {
    path,
    release: () =>
      released ??= new Promise<void>((resolve) => {
        if (process.platform !== "win32" && !RUNTIME_UNLINKS_ON_CLOSE) {
          try {
            unlinkSync(path);
          } catch { /* already gone */ }
        }
        server.close(() => resolve());
      }),
  };
}
