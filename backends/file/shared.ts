/**
 * Open database files of this process, and who owns each file among all
 * the processes that have it open.
 *
 * Every handle of this process that opens one file (by its identity, so
 * hard links and other paths to it too) shares one {@linkcode SharedFile}.
 * One process on the machine owns the file: it has the engine's database
 * open and serves the others over its socket (see `owner_socket.ts`); the
 * others are its clients. When the owner closes the file or dies, its
 * clients notice the end of their connection at once and the first of them
 * to bind the socket opens the file and owns it; the rest connect to it.
 * Calls waiting meanwhile go on with the new owner: reads and lock calls are
 * sent again (they are safe to repeat), watches start over (their streams
 * drop what they already reported), and a write the old owner may have
 * carried out fails with a `StoreError` that says its outcome is unknown.
 * Each handle's store hears it as events: each call sent again (`retry`),
 * the next owner found or become (`reconnect`), each of its watches started
 * on it (`watch-resume`), and the errors of the connection to the owner.
 *
 * @module
 */

import {
  closeSync,
  existsSync,
  openSync,
  realpathSync,
  statSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Server } from "node:net";
import { delay } from "../../core/abort.ts";
import { Backoff } from "../../core/backoff.ts";
import { InvalidConfigurationError, StoreError } from "../../core/errors.ts";
import type { KeySink, TreeSink } from "../../core/driver.ts";
import type { DriverEvent } from "../../core/events.ts";
import { Database, type DatabaseOptions } from "../../engine/database.ts";
import { FileHost } from "../../engine/host.ts";
import type { FileAccess } from "./access.ts";
import { GuardedHost } from "./guarded_host.ts";
import { LocalAccess } from "./local.ts";
import { closeServer, connectOrClaim, fileIdentity } from "./owner_socket.ts";
import { Disconnected, RemoteAccess } from "./remote.ts";
import { OwnerServer } from "./server.ts";

/** How this process has the file: as its owner, or as a client. */
type Role =
  | {
    owner: true;
    access: LocalAccess;
    server: Server;
    serving: OwnerServer;
    socketPath: string;
  }
  | { owner: false; access: RemoteAccess };

/** Where a handle's store hears events. */
export type Emit = (event: DriverEvent) => void;

interface Watch {
  start(access: FileAccess, signal: AbortSignal): void;
  /** Ends the watch with an error: no owner could be found or become one. */
  fail(error: unknown): void;
  /** It was started again on a new owner, after the last one went away. */
  resumed(): void;
}

const ignore: Emit = () => {};

const opened = new Map<string, Promise<SharedFile>>();

/**
 * How long a call cut off by its owner's end waits before it is sent again
 * to what is still the same owner (the end not yet handled).
 */
const RESEND_PAUSE_MS = 5;

/** How long a process whose owner went away tries to find the next one. */
const REJOIN_MS = 60_000;
const REJOIN_BACKOFF = { baseMs: 10, capMs: 1_000 };

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
 * A database file as this process has it, shared by its handles.
 */
export class SharedFile {
  /** The file's real path. */
  readonly path: string;
  readonly #identity: string;
  readonly #options: DatabaseOptions;
  #role: Role | undefined;
  #ready: Promise<Role>;
  readonly #watches = new Map<Watch, AbortController>();
  /** Each watch's run on the current owner, aborted when the owner goes. */
  readonly #generations = new Map<Watch, AbortController>();
  /** The watches that ran on the owner that went away, until the next. */
  #interrupted = new Set<Watch>();
  /** Set from the owner's loss until the next one is found or become. */
  #rejoining = false;
  /** Each open handle's store (see {@linkcode observe}). */
  readonly #observers = new Set<Emit>();
  #holds = 0;
  /** Calls sent to another process that have not settled. */
  #waiting = 0;
  /**
   * A referenced timer while the next owner is sought for someone waiting
   * (a call, a watch): between the old owner's socket and the new role the
   * process may hold no other handle, and a runtime would end it with the
   * caller's promise still pending (Deno says so and fails).
   */
  #keeper: ReturnType<typeof setInterval> | undefined;
  /** Handles open on it. */
  handles = 0;
  #closing: Promise<void> | undefined;

  readonly #registered: boolean;

  private constructor(
    path: string,
    identity: string,
    options: DatabaseOptions,
    registered: boolean,
  ) {
    this.#registered = registered;
    this.path = path;
    this.#identity = identity;
    this.#options = options;
    this.#ready = this.#join();
  }

  /** Opens the file at `path`; resolves once this process owns it or reached its owner. */
  static async open(
    path: string,
    identity: string,
    options: DatabaseOptions,
    registered = true,
  ): Promise<SharedFile> {
    const file = new SharedFile(path, identity, options, registered);
    await file.#ready;
    return file;
  }

  /** Whether this process owns the file now. */
  get isOwner(): boolean {
    return this.#role?.owner === true;
  }

  /** Set once the last handle started closing it. */
  get closing(): Promise<void> | undefined {
    return this.#closing;
  }

  /** The owned database's access while this process owns it, else `undefined`. */
  get local(): LocalAccess | undefined {
    const role = this.#role;
    return role?.owner ? role.access : undefined;
  }

  /** The owned database (for tests and tools); `undefined` in a client. */
  get database(): Database | undefined {
    return this.#role?.owner ? this.#role.access.db : undefined;
  }

  /**
   * Tells `emit` what the file handles on its own from now on: the next
   * owner found, the connection's errors.
   *
   * @param emit A handle's store's events.
   * @returns Stops telling it.
   */
  observe(emit: Emit): () => void {
    this.#observers.add(emit);
    return () => this.#observers.delete(emit);
  }

  #emit(event: DriverEvent): void {
    for (const emit of this.#observers) emit(event);
  }

  async #join(attempt = 1): Promise<Role> {
    let serving: OwnerServer | undefined;
    const queued: import("node:net").Socket[] = [];
    const claim = await connectOrClaim(this.path, this.#identity, (socket) => {
      if (serving) serving.accept(socket);
      else queued.push(socket);
    });
    if (!claim.owner) {
      try {
        const access = await RemoteAccess.connect(
          claim.socket,
          () => this.#lost(),
          (error) => this.#emit({ type: "error", source: "connection", error }),
        );
        return this.#become({ owner: false, access });
      } catch (error) {
        claim.socket.destroy();
        if (!(error instanceof Disconnected)) throw error;
        // The owner went away before it answered: find the next one.
        this.#emit({ type: "retry", operation: "connect", attempt, error });
        return this.#join(attempt + 1);
      }
    }
    let host: FileHost | undefined;
    try {
      host = new FileHost(this.path);
      const db = await Database.open(new GuardedHost(host, this.path), {
        ...this.#options,
        onError: (error, source) =>
          this.#emit({ type: "error", source, error }),
      });
      const access = await LocalAccess.over(db);
      serving = new OwnerServer(
        access,
        (error) =>
          this.#emit({ type: "error", source: "client connection", error }),
      );
      for (const socket of queued.splice(0)) serving.accept(socket);
      return this.#become({
        owner: true,
        access,
        server: claim.server,
        serving,
        socketPath: claim.path,
      });
    } catch (error) {
      for (const socket of queued.splice(0)) socket.destroy();
      host?.close();
      await closeServer(claim.server, claim.path);
      const message = error instanceof Error ? error.message : String(error);
      throw new StoreError(`Could not open database ${this.path}: ${message}`, {
        cause: error,
      });
    }
  }

  #become(role: Role): Role {
    this.#role = role;
    this.#applyHolds();
    if (this.#rejoining) {
      this.#rejoining = false;
      this.#emit({
        type: "reconnect",
        server: role.owner ? "this process" : role.access.owner,
      });
    }
    const interrupted = this.#interrupted;
    this.#interrupted = new Set();
    for (const [watch, controller] of this.#watches) {
      const generation = new AbortController();
      controller.signal.addEventListener("abort", () => generation.abort(), {
        once: true,
      });
      this.#generations.set(watch, generation);
      watch.start(role.access, generation.signal);
      if (interrupted.has(watch)) watch.resumed();
    }
    return role;
  }

  // The owner went away: find or become the next one.
  #lost(): void {
    if (this.#closing) return;
    for (const [watch, generation] of this.#generations) {
      generation.abort();
      this.#interrupted.add(watch);
    }
    this.#generations.clear();
    this.#role = undefined;
    this.#rejoining = true;
    this.#keepWhileRejoining();
    this.#ready = this.#rejoin().finally(() => {
      clearInterval(this.#keeper);
      this.#keeper = undefined;
    });
    // Calls get its failure from #ready, watches from #rejoin, and the
    // stores from its error event: nothing is left unhandled here.
    this.#ready.catch(() => {});
  }

  // Finds or becomes the next owner, trying again for a while when that
  // fails (a loaded machine, an opener killed mid-takeover). Giving up ends
  // every watch with the error, so none goes silent; calls get it too.
  async #rejoin(): Promise<Role> {
    const backoff = new Backoff(REJOIN_BACKOFF);
    const deadline = Date.now() + REJOIN_MS;
    while (true) {
      try {
        return await this.#join();
      } catch (error) {
        if (this.#closing || Date.now() > deadline) {
          for (const watch of this.#watches.keys()) watch.fail(error);
          if (!this.#closing) {
            this.#emit({ type: "error", source: "takeover", error });
          }
          throw error;
        }
        this.#emit({
          type: "retry",
          operation: "connect",
          attempt: backoff.attempts + 1,
          error,
        });
        await delay(backoff.next());
      }
    }
  }

  #applyHolds(): void {
    const role = this.#role;
    if (!role) return;
    if (!role.owner) role.access.keepAlive(this.#holds > 0);
    else if (this.#holds > 0) role.server.ref();
    else role.server.unref();
  }

  /**
   * Keeps the process alive while a watch or a lock wait needs the file
   * (`+1`), or no longer (`-1`): another process may write at any time.
   */
  hold(delta: number): void {
    this.#holds += delta;
    this.#applyHolds();
    this.#keepWhileRejoining();
  }

  #keepWhileRejoining(): void {
    if (this.#keeper || !this.#rejoining || this.#closing) return;
    if (this.#holds === 0 && this.#waiting === 0) return;
    this.#keeper = setInterval(() => {}, 1_000);
  }

  /**
   * Runs `call` on the current owner's database. A call cut off by the
   * owner going away is sent again to the next owner when `repeatable` or
   * when the owner had not started it (a `retry` event of `op` to `emit`);
   * otherwise it fails saying its outcome is unknown.
   */
  call<T>(
    call: (access: FileAccess) => Promise<T>,
    repeatable: boolean,
    op: string,
    emit: Emit = ignore,
  ): Promise<T> {
    // The owner's own calls go straight to the engine: a local database is
    // never cut off, and this path is every single-process program's.
    const role = this.#role;
    if (role?.owner) return call(role.access);
    return this.#callOwner(call, repeatable, op, emit);
  }

  async #callOwner<T>(
    call: (access: FileAccess) => Promise<T>,
    repeatable: boolean,
    op: string,
    emit: Emit,
  ): Promise<T> {
    this.#waiting++;
    this.#keepWhileRejoining();
    try {
      return await this.#resending(call, repeatable, op, emit);
    } finally {
      this.#waiting--;
    }
  }

  async #resending<T>(
    call: (access: FileAccess) => Promise<T>,
    repeatable: boolean,
    op: string,
    emit: Emit,
  ): Promise<T> {
    let previous: Role | undefined;
    for (let attempt = 1;; attempt++) {
      const role = await this.#ready;
      // Never a loop of promises alone: one that found the same owner gone
      // again would starve the timers and events that end it.
      if (role === previous) await delay(RESEND_PAUSE_MS);
      previous = role;
      try {
        return await call(role.access);
      } catch (error) {
        if (!(error instanceof Disconnected)) throw error;
        if (this.#closing) throw error;
        if (error.maybeRan && !repeatable) {
          throw new StoreError(
            `The process that owned database ${this.path} ended before answering: the write may or may not have been committed`,
            { cause: error },
          );
        }
        emit({ type: "retry", operation: op, attempt, error });
      }
    }
  }

  /** Starts `watch` on the current owner and again on each next one, until `signal`. */
  watch(watch: Watch, signal: AbortSignal): void {
    if (signal.aborted) return;
    const controller = new AbortController();
    this.#watches.set(watch, controller);
    this.hold(1);
    signal.addEventListener("abort", () => {
      controller.abort();
      this.#watches.delete(watch);
      this.#generations.delete(watch);
      this.#interrupted.delete(watch);
      this.hold(-1);
    }, { once: true });
    const role = this.#role;
    if (role) {
      const generation = new AbortController();
      controller.signal.addEventListener("abort", () => generation.abort(), {
        once: true,
      });
      this.#generations.set(watch, generation);
      watch.start(role.access, generation.signal);
    }
  }

  /**
   * Watches `key` through every owner (see {@linkcode watch}), a
   * `watch-resume` event to `emit` on each next one.
   */
  watchKey(
    key: string,
    sink: KeySink,
    signal: AbortSignal,
    emit: Emit = ignore,
  ): void {
    this.watch({
      start: (access, s) => access.watchKey(key, sink, s),
      fail: (error) => sink.error(error),
      resumed: () => emit({ type: "watch-resume", key }),
    }, signal);
  }

  /** Watches the tree under `dir` through every owner, as `watchKey`. */
  watchTree(
    dir: string,
    sink: TreeSink,
    signal: AbortSignal,
    emit: Emit = ignore,
  ): void {
    this.watch({
      start: (access, s) => access.watchTree(dir, sink, s),
      fail: (error) => sink.error(error),
      resumed: () => emit({ type: "watch-resume", key: dir }),
    }, signal);
  }

  /** Closes the file for this process (the last handle calls it). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#keeper);
      this.#keeper = undefined;
      if (this.#registered) opened.delete(this.#identity);
      for (const controller of this.#watches.values()) controller.abort();
      let role: Role | undefined;
      try {
        role = await this.#ready;
      } catch {
        // Never joined, or gave up finding the next owner (its error went
        // to the opener, or was an event): nothing open to close.
        return;
      }
      if (!role.owner) {
        role.access.close();
        return;
      }
      try {
        await role.serving.drain();
        await role.access.db.close();
      } finally {
        await closeServer(role.server, role.socketPath);
      }
    })();
    return this.#closing;
  }

  /** Drops the file without a clean close, as a crash would (for tests). */
  crash(): void {
    const role = this.#role;
    this.#closing ??= Promise.resolve();
    if (this.#registered) opened.delete(this.#identity);
    if (!role) return;
    if (role.owner) {
      role.access.db.crash();
      role.server.close();
    } else role.access.close();
  }
}

/**
 * Checks that `path` can hold a database: its directory exists, and it is
 * not a directory itself. Creates the file (empty) when missing, as opening
 * does, so its identity can be read.
 */
function prepare(path: string): string {
  const dir = dirname(path);
  if (!existsSync(dir)) {
    throw new InvalidConfigurationError(
      `The directory ${dir} of database ${path} does not exist`,
    );
  }
  try {
    if (statSync(path).isDirectory()) {
      throw new InvalidConfigurationError(
        `Database path ${path} is a directory`,
      );
    }
  } catch (error) {
    if (error instanceof InvalidConfigurationError) throw error;
    try {
      closeSync(openSync(path, "a"));
    } catch (cause) {
      throw new StoreError(
        `Could not create database ${path}: ${(cause as Error).message}`,
        { cause },
      );
    }
  }
  return fileIdentity(path);
}

/**
 * Opens the database file at `path` for one more handle.
 *
 * @param path The file.
 * @param options Cache, durability and engine; the first handle's options
 *   apply (they open the file again when this process takes it over).
 * @param isolated Open it apart from this process's other handles, as
 *   another process would.
 * @returns The shared file.
 */
export async function openShared(
  path: string,
  options: DatabaseOptions,
  isolated = false,
): Promise<SharedFile> {
  const real = realPath(path);
  const identity = prepare(real);
  if (isolated) {
    const shared = await SharedFile.open(real, identity, options, false);
    shared.handles++;
    return shared;
  }
  while (true) {
    let pending = opened.get(identity);
    if (!pending) {
      pending = SharedFile.open(real, identity, options);
      opened.set(identity, pending);
      pending.catch(() => opened.delete(identity));
    }
    const shared = await pending;
    if (shared.closing) {
      // Its failure is for the handle that closed it; this one opens anew.
      await shared.closing.catch(() => {});
      continue;
    }
    shared.handles++;
    return shared;
  }
}

/**
 * Closes one handle of `shared`; the last one closes the file.
 *
 * @param shared The file.
 */
export function closeShared(shared: SharedFile): Promise<void> {
  if (--shared.handles > 0) return Promise.resolve();
  return shared.close();
}
