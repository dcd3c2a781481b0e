/**
 * The database of a file another process owns, reached through the owner's
 * socket ({@linkcode OwnerServer} on the other side). Each call is a message
 * and its answer; each watch a message and the reports pushed after it.
 *
 * When the connection ends, every call still waiting fails with
 * {@linkcode Disconnected}, which says whether the owner may have run it:
 * the shared file then finds the next owner (or becomes it) and sends again
 * what is safe to send again.
 *
 * @module
 */

import type { Socket } from "node:net";
import { StoreError } from "../../core/errors.ts";
import type {
  AtomicStep,
  CommitOutcome,
  Entry,
  KeySink,
  TreeSink,
} from "../../core/driver.ts";
import type { IntegrityReport } from "../../engine/engine.ts";
import type { FileAccess, LockAttempt, LockFence } from "./access.ts";
import {
  encode,
  type Message,
  readMessages,
  WIRE_VERSION,
  type WireError,
} from "./wire.ts";

/**
 * A call cut off by the end of the connection. `maybeRan` is `false` when
 * the owner had not started it (it answered "retry", or the call was never
 * sent): sending it again is safe.
 */
export class Disconnected extends StoreError {
  /** Always `"Disconnected"`. */
  override name: string = "Disconnected";
  /** Always `"DISCONNECTED"`. */
  override readonly code: string = "DISCONNECTED";
  /** Whether the owner may have carried the call out. */
  readonly maybeRan: boolean;
  /**
   * Creates the error.
   *
   * @param maybeRan Whether the owner may have carried the call out.
   */
  constructor(maybeRan: boolean) {
    super("The process that owns the database file went away");
    this.maybeRan = maybeRan;
  }
}

interface Waiting {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  /**
   * Whether the socket took the call's bytes (`true`), refused them
   * (`false`: the owner never got them), or has not said yet.
   */
  delivered?: boolean;
  /** Set when the connection ended before the socket said. */
  ended?: boolean;
}

// The owner's errors are the engine's and the database's (a refused write,
// a closed file): the client raises them as store errors with the message.
function fromWire(error: WireError): StoreError {
  return new StoreError(error.message);
}

/** The database of a file another process owns. */
export class RemoteAccess implements FileAccess {
  readonly #socket: Socket;
  readonly #waiting = new Map<number, Waiting>();
  readonly #reports = new Map<number, (message: Message) => void>();
  #nextId = 1;
  #ended = false;
  #calls = 0;
  #kept = false;
  #ownerPid: unknown;
  readonly #onEnd: () => void;

  private constructor(
    socket: Socket,
    onEnd: () => void,
    onError: (error: unknown) => void,
  ) {
    this.#socket = socket;
    this.#onEnd = onEnd;
    socket.setNoDelay?.(true);
    socket.unref();
    // The connection's end is whichever of these comes first: Bun may mark
    // a socket destroyed without (or long before) its "close" event. Its
    // error is told before the end is handled.
    socket.on("error", (error) => {
      onError(error);
      socket.destroy();
      this.#end();
    });
    // The owner never half-closes: its end of the stream is its end. (Deno
    // may not report a write into a half-closed socket as an error.)
    socket.on("end", () => {
      socket.destroy();
      this.#end();
    });
    socket.on("close", () => this.#end());
    readMessages(socket, (message) => this.#receive(message));
  }

  /**
   * Greets the owner at the other end of `socket`.
   *
   * @param socket A connection to the owner's socket.
   * @param onEnd Called once when the connection ends.
   * @param onError Hears the connection's errors (its end follows).
   * @returns The access, once the owner answered.
   */
  static async connect(
    socket: Socket,
    onEnd: () => void,
    onError: (error: unknown) => void,
  ): Promise<RemoteAccess> {
    const access = new RemoteAccess(socket, onEnd, onError);
    const hello = await access.#call({ op: "hello", version: WIRE_VERSION });
    access.#ownerPid = (hello as { pid?: unknown } | null)?.pid;
    return access;
  }

  /** The owner, for events: `owner pid N`. */
  get owner(): string {
    return `owner pid ${this.#ownerPid}`;
  }

  /** Whether the connection has ended. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Keeps the process alive while `kept` (watches run, lock waiters wait)
   * or calls wait for their answers; otherwise the connection lets the
   * process end.
   */
  keepAlive(kept: boolean): void {
    this.#kept = kept;
    this.#refresh();
  }

  #refresh(): void {
    if (this.#ended) return;
    if (this.#kept || this.#calls > 0) this.#socket.ref();
    else this.#socket.unref();
  }

  /** Ends the connection. */
  close(): void {
    this.#socket.end();
    this.#socket.destroy();
  }

  #receive(message: Message): void {
    if (typeof message.sub === "number") {
      this.#reports.get(message.sub)?.(message);
      return;
    }
    const waiting = this.#waiting.get(message.id as number);
    if (!waiting) return;
    this.#waiting.delete(message.id as number);
    if (message.retry) waiting.reject(new Disconnected(false));
    else if (message.ok) waiting.resolve(message.result);
    else waiting.reject(fromWire(message.error as WireError));
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    const waiting = [...this.#waiting.values()];
    this.#waiting.clear();
    this.#reports.clear();
    this.#onEnd();
    // A call fails once its write has said whether its bytes left.
    for (const call of waiting) {
      if (call.delivered === undefined) call.ended = true;
      else call.reject(new Disconnected(call.delivered));
    }
  }

  #call(message: Message): Promise<unknown> {
    if (this.#ended || this.#socket.destroyed || !this.#socket.writable) {
      // A socket found dead here ends the connection now, so the shared
      // file looks for the next owner instead of sending again into it.
      this.#end();
      return Promise.reject(new Disconnected(false));
    }
    const id = this.#nextId++;
    let frame: Uint8Array;
    try {
      // Too large to send: this call fails, with nothing sent.
      frame = encode({ id, ...message }, `the ${message.op} call`);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#calls++ === 0) this.#refresh();
    return new Promise<unknown>((resolve, reject) => {
      const waiting: Waiting = { resolve, reject };
      this.#waiting.set(id, waiting);
      // A Unix socket refuses bytes at once when the owner is gone (EPIPE):
      // such a call was not carried out and may be sent again.
      this.#socket.write(frame, (error) => {
        waiting.delivered = !error;
        if (waiting.ended) reject(new Disconnected(waiting.delivered));
      });
    }).finally(() => {
      if (--this.#calls === 0) this.#refresh();
    });
  }

  get(key: string): Promise<Entry | null> {
    return this.#call({ op: "get", key }) as Promise<Entry | null>;
  }

  list(dir: string): Promise<Entry[]> {
    return this.#call({ op: "list", dir }) as Promise<Entry[]>;
  }

  page(
    dir: string,
    after: string | undefined,
    limit: number,
  ): Promise<Entry[]> {
    return this.#call({ op: "page", dir, after, limit }) as Promise<Entry[]>;
  }

  async put(key: string, value: Uint8Array, ttl?: number): Promise<bigint> {
    const revision = await this.#call({ op: "put", key, value, ttl });
    if (typeof revision !== "bigint") {
      throw new StoreError(
        "The process that owns the database file answered a put without its revision",
      );
    }
    return revision;
  }

  async delete(key: string): Promise<void> {
    await this.#call({ op: "delete", key });
  }

  async deleteTree(key: string | null, dir: string): Promise<void> {
    await this.#call({ op: "deleteTree", key, dir });
  }

  commit(
    steps: readonly AtomicStep[],
    fences: readonly LockFence[] = [],
  ): Promise<CommitOutcome> {
    return this.#call({ op: "commit", steps, fences }) as Promise<
      CommitOutcome
    >;
  }

  tryLock(
    key: string,
    token: string,
    value: Uint8Array,
    ttl: number,
  ): Promise<LockAttempt> {
    return this.#call({ op: "tryLock", key, token, value, ttl }) as Promise<
      LockAttempt
    >;
  }

  renewLock(key: string, token: string, ttl: number): Promise<boolean> {
    return this.#call({ op: "renewLock", key, token, ttl }) as Promise<boolean>;
  }

  async unlock(key: string, token: string, deleteKey: boolean): Promise<void> {
    await this.#call({ op: "unlock", key, token, deleteKey });
  }

  verify(): Promise<IntegrityReport> {
    return this.#call({ op: "verify" }) as Promise<IntegrityReport>;
  }

  watchKey(key: string, sink: KeySink, signal: AbortSignal): void {
    this.#watch({ op: "watchKey", key }, (report) => {
      if (report.t === "state") sink.state(report.entry as Entry | null);
      else if (report.t === "error") {
        sink.error(fromWire(report.error as WireError));
      }
    }, signal);
  }

  watchTree(dir: string, sink: TreeSink, signal: AbortSignal): void {
    this.#watch({ op: "watchTree", dir }, (report) => {
      if (report.t === "reset") sink.reset(report.entries as Entry[]);
      else if (report.t === "put") sink.put(report.entry as Entry);
      else if (report.t === "delete") sink.delete(report.key as string);
      else if (report.t === "error") {
        sink.error(fromWire(report.error as WireError));
      }
    }, signal);
  }

  // A watch ends with its signal or the connection; the shared file starts
  // it again on the next owner.
  #watch(
    message: Message,
    report: (message: Message) => void,
    signal: AbortSignal,
  ): void {
    if (this.#ended || signal.aborted) return;
    const sub = this.#nextId++;
    this.#reports.set(sub, report);
    this.#socket.write(encode({ id: sub, ...message }));
    signal.addEventListener("abort", () => {
      this.#reports.delete(sub);
      if (!this.#ended) this.#socket.write(encode({ op: "unwatch", sub }));
    }, { once: true });
  }
}
