/**
 * Where the process that owns a database file listens, and how a process
 * opening the file finds out whether it is the owner or a client.
 *
 * The socket is named after the file's identity, its device and inode, not
 * its path: every path to one file (hard links, symbolic links, relative
 * paths) leads to the same socket, and the name is short, whatever the
 * path's length. It lives in one fixed directory, not under `TMPDIR`, so
 * processes with different environments still meet there. `node:fs` has no
 * `flock`; binding a Unix socket is the exclusive step instead: binding a
 * name that exists fails, and a live owner answers connects even while its
 * event loop is busy (the kernel accepts). When the owner dies, even by
 * SIGKILL, its socket refuses connects: the next opener removes the stale
 * name and binds it, openers that find it stale at once taking turns through
 * a directory (`mkdir` is atomic). On Windows the socket is a named pipe,
 * which disappears with its owner.
 *
 * The socket is the file's only guard against two owners only while its
 * name stays in place; the database's host also refuses to commit over a
 * header another process wrote (see `guarded_host.ts`), so an owner whose
 * socket was deleted from under it fails loudly instead of losing writes.
 *
 * @module
 */

import { chmodSync, mkdirSync, rmdirSync, statSync, unlinkSync } from "node:fs";
import {
  createConnection,
  createServer,
  type Server,
  type Socket,
} from "node:net";
import { join } from "node:path";
import process from "node:process";
import { StoreError } from "../../core/errors.ts";

/**
 * The directory of the owners' sockets: fixed (not `TMPDIR`), shared by all
 * users with the sticky bit, like `/tmp` itself. A socket is made by its
 * owner's user and only that user may connect, as Unix sockets check write
 * permission.
 */
export const SOCKET_DIR = "/tmp/valkeyrie";
/** A takeover directory older than this was left by a crashed opener. */
const STALE_TAKEOVER_MS = 10_000;
/** How often an opener retries while another one takes over a stale name. */
const RETRY_MS = 10;
/**
 * How long opening waits for another opener to finish taking over: longer
 * than a stale takeover directory lives, so that one left by an opener
 * killed mid-takeover is cleared before anyone gives up.
 */
const TAKEOVER_WAIT_MS = 3 * STALE_TAKEOVER_MS;

/** The identity of the file at `path` (it must exist): device and inode. */
export function fileIdentity(path: string): string {
  const stat = statSync(path, { bigint: true });
  return `${stat.dev.toString(36)}-${stat.ino.toString(36)}`;
}

/** The owner's socket (or pipe) for the file with `identity`. */
export function socketPath(identity: string): string {
  if (process.platform === "win32") return `\\\\.\\pipe\\valkeyrie-${identity}`;
  return join(SOCKET_DIR, `${identity}.sock`);
}

function ensureSocketDir(): void {
  if (process.platform === "win32") return;
  try {
    mkdirSync(SOCKET_DIR, { mode: 0o1777 });
    // The mode above is masked by the umask; the directory is everyone's.
    chmodSync(SOCKET_DIR, 0o1777);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
      throw new StoreError(
        `Could not make the directory of database sockets ${SOCKET_DIR}: ${
          (error as Error).message
        }`,
        { cause: error },
      );
    }
  }
}

/** What opening found: this process owns the file, or a client connected. */
export type Claim =
  | { owner: true; server: Server; path: string }
  | { owner: false; socket: Socket; path: string };

function listen(
  path: string,
  onConnection: (socket: Socket) => void,
): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(onConnection);
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      server.unref();
      resolve(server);
    });
  });
}

/**
 * Connects to `path`: the socket, or `null` when nothing listens there. A
 * reset of the connect itself (Bun reports one under load) is tried again.
 */
async function connect(path: string, dbPath: string): Promise<Socket | null> {
  for (let attempt = 0;; attempt++) {
    const result = await new Promise<Socket | null | "again">(
      (resolve, reject) => {
        const socket = createConnection(path);
        socket.once("connect", () => {
          socket.removeAllListeners("error");
          resolve(socket);
        });
        socket.once("error", (error: NodeJS.ErrnoException) => {
          socket.destroy();
          if (
            error.code === "ECONNREFUSED" || error.code === "ENOENT" ||
            error.code === "ENOTSOCK"
          ) resolve(null);
          else if (error.code === "ECONNRESET" || error.code === "EPIPE") {
            resolve("again");
          } else if (error.code === "EACCES" || error.code === "EPERM") {
            reject(
              new StoreError(
                `Database ${dbPath} is in use by a process of another user (its socket ${path} is not ours to connect to)`,
                { cause: error },
              ),
            );
          } else reject(error);
        });
      },
    );
    if (result !== "again") return result;
    if (attempt >= 100) return null;
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}

/**
 * Connects to the owner of the file at `dbPath` with `identity`, or becomes
 * its owner when there is none (then `onConnection` serves its clients).
 *
 * @param dbPath The database file (for messages).
 * @param identity The file's identity ({@linkcode fileIdentity}).
 * @param onConnection Serves a client, once this process owns the file.
 * @returns Which of the two it is.
 */
export async function connectOrClaim(
  dbPath: string,
  identity: string,
  onConnection: (socket: Socket) => void,
): Promise<Claim> {
  ensureSocketDir();
  const path = socketPath(identity);
  const deadline = Date.now() + TAKEOVER_WAIT_MS;
  const fail = (error: unknown): never => {
    if (error instanceof StoreError) throw error;
    throw new StoreError(
      `Could not open database ${dbPath} (its socket ${path}): ${
        (error as Error).message
      }`,
      { cause: error },
    );
  };
  while (true) {
    try {
      const socket = await connect(path, dbPath);
      if (socket) return { owner: false, socket, path };
      try {
        return { owner: true, server: await listen(path, onConnection), path };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") throw error;
      }
      if (process.platform === "win32") continue;
      // The name exists: another opener just bound it, or its owner died.
      const again = await connect(path, dbPath);
      if (again) return { owner: false, socket: again, path };
      const takeover = `${path}.takeover`;
      try {
        mkdirSync(takeover);
      } catch {
        try {
          if (Date.now() - statSync(takeover).mtimeMs > STALE_TAKEOVER_MS) {
            rmdirSync(takeover);
          }
        } catch { /* another opener removed it */ }
        if (Date.now() > deadline) {
          throw new StoreError(
            `Database ${dbPath} could not be opened: another process has been taking it over for ${TAKEOVER_WAIT_MS} ms (${takeover})`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
        continue;
      }
      try {
        const late = await connect(path, dbPath);
        if (late) return { owner: false, socket: late, path };
        try {
          unlinkSync(path);
        } catch { /* already gone */ }
        try {
          return {
            owner: true,
            server: await listen(path, onConnection),
            path,
          };
        } catch (error) {
          // An opener that came after the unlink bound it first: it owns
          // the file now, and the next round connects to it.
          if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") {
            throw error;
          }
        }
      } finally {
        rmdirSync(takeover);
      }
    } catch (error) {
      fail(error);
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

/**
 * Stops listening at `path` and removes the name, so the next opener binds
 * it at once.
 *
 * @param server The owner's server.
 * @param path Its socket.
 */
export function closeServer(server: Server, path: string): Promise<void> {
  // Closing waits for the server's connections to be gone; the server is
  // unreferenced while it serves, so it holds the process until then.
  server.ref();
  return new Promise<void>((resolve) => {
    if (process.platform !== "win32" && !RUNTIME_UNLINKS_ON_CLOSE) {
      try {
        unlinkSync(path);
      } catch { /* already gone */ }
    }
    server.close(() => resolve());
  });
}
