/**
 * A ZooKeeper session over an ensemble: one connection at a time (TCP or
 * TLS), moved to another server when it drops, with the session id and
 * password kept so the session, its ephemeral nodes and its watches survive
 * the move. Requests are pipelined; replies come back in order.
 *
 * What the session promises the layers above:
 * - a request sent on a connection that drops fails with `CONNECTIONLOSS`
 *   (the server may or may not have applied it); a request not yet sent
 *   waits for the next connection, at most `connectTimeout`, then fails
 *   with `NotReachableError`;
 * - `expired` is told when the server says the session is gone, or when the
 *   connection has been down for the whole session timeout (ZooKeeper then
 *   expires it, and a partitioned client would never hear of it), and a new
 *   session is then started on the next connection;
 * - watches are registered again on every new connection (`SetWatches2`),
 *   and `connected` is told after it, so watchers re-read what they missed;
 * - what it handles on its own is told to `emit` (core/events.ts): a
 *   connection made again after a loss (`reconnect`), each failed attempt
 *   at it (`retry` of `connect`), an expired session, a connection that
 *   failed or was given up, and a watch request nobody waits for that
 *   failed (`error`).
 *
 * @module
 */

import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import {
  InvalidArgumentError,
  NotReachableError,
  StoreError,
} from "../../core/errors.ts";
import { unrefTimer } from "../../core/abort.ts";
import { Backoff, type BackoffOptions } from "../../core/backoff.ts";
import type { DriverEvent } from "../../core/events.ts";
import { formatHostPort } from "../../core/host_port.ts";
import type { TlsConnectionOptions } from "../../core/tls.ts";
import { isCode, isDisconnected, ZkError } from "./errors.ts";
import { FrameSplitter } from "./frames.ts";
import { JuteReader, type JuteWriter } from "./jute.ts";
import {
  Code,
  connectFrame,
  Op,
  readConnectReply,
  readWatcherEvent,
  requestFrame,
  WATCHER_TYPE_ANY,
  Xid,
} from "./protocol.ts";
import { WatchRegistry } from "./watches.ts";

/** A server of the ensemble. */
export interface Server {
  host: string;
  port: number;
}

/** Credentials sent with `addauth` on every connection. */
export interface Credential {
  scheme: string;
  auth: Uint8Array;
}

/** How to run a session. */
export interface SessionOptions {
  /** The ensemble, tried in a shuffled order. */
  servers: readonly Server[];
  /** The session timeout to ask for, in milliseconds. */
  sessionTimeout: number;
  /** How long a request waits for a connection, in milliseconds. */
  connectTimeout: number;
  /** TLS settings, or `undefined` for plain TCP. */
  tls?: TlsConnectionOptions;
  /** Sent on every connection, before any request. */
  credentials: readonly Credential[];
  /** The largest frame the server accepts (its `jute.maxbuffer`). */
  maxBufferSize: number;
  /** The largest reply taken; a larger one fails its call. */
  maxReplyBytes: number;
  /** The ensemble for messages: `"zookeeper at 127.0.0.1:2181"`. */
  name: string;
}

/** A reply: its zxid, error code and decoded body. */
export interface Reply<T> {
  zxid: bigint;
  err: number;
  value: T;
}

/** Options of {@linkcode Session.request}. */
export interface RequestOptions {
  /** Drops the request while it waits for a connection. */
  signal?: AbortSignal;
  /** Resolve with the error code instead of rejecting (a `multi`'s results). */
  allowError?: boolean;
}

/** What the session tells the layers above. */
export interface SessionListener {
  /** Connected; `newSession` when the previous session was lost. */
  connected?(newSession: boolean): void;
  /** The session (its ephemeral nodes, its watches) is gone. */
  expired?(): void;
  /** The session ended for good: closed, or a fatal error. */
  closed?(error?: unknown): void;
}

interface Pending {
  xid: number;
  op: number;
  body: ((w: JuteWriter) => void) | undefined;
  read: ((r: JuteReader) => unknown) | undefined;
  allowError: boolean;
  sentAt: number;
  resolve(reply: Reply<unknown>): void;
  reject(error: unknown): void;
  detach?: () => void;
}

/**
 * A connection attempt gets this share of the session timeout per server (as
 * ZooKeeper's Java client does), but never less than this.
 */
const MIN_ATTEMPT_MS = 500;
/**
 * After every server failed once, wait anywhere up to 1 s (full jitter, a
 * ceiling that does not grow) before the next round: clients of an ensemble
 * that restarts do not all reconnect at once, and none waits long.
 */
const ROUND_BACKOFF: BackoffOptions = { baseMs: 1_000, capMs: 1_000 };
/** A closed connection the server does not close in turn is dropped then. */
const CLOSE_TIMEOUT_MS = 2_000;
/** `SetWatches2` requests are cut to this size (the Java client's 128 KiB). */
const SET_WATCHES_MAX_BYTES = 128 * 1024;
/** Frame bytes besides a reply body: its length, xid, zxid and error. */
const REPLY_OVERHEAD_BYTES = 20;

/** One ZooKeeper session. */
export class Session {
  readonly options: SessionOptions;
  readonly watches: WatchRegistry;
  /** Hears what the session handles on its own; the driver's `observe`. */
  emit: (event: DriverEvent) => void = () => {};
  #servers: Server[];
  #next = 0;
  #socket: Socket | undefined;
  /** Frames waiting for the end of the current run, and their socket. */
  #batch: Uint8Array[] = [];
  #batchSocket: Socket | undefined;
  #connected = false;
  /** A connection was lost and none is up again yet. */
  #lost = false;
  #closed = false;
  #sessionId = 0n;
  #password: Uint8Array = new Uint8Array(16);
  #timeout: number;
  #lastZxid = 0n;
  #xid = 1;
  #queue: Pending[] = [];
  #inflight: Pending[] = [];
  #listeners = new Set<SessionListener>();
  #lastSent = 0;
  #lastReceived = 0;
  /** When the last request the server answered was sent. */
  #lastAckSentAt = 0;
  #pingSentAt = 0;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #expiry: ReturnType<typeof setTimeout> | undefined;
  #outage: ReturnType<typeof setTimeout> | undefined;
  #unreachable = false;
  #wake: (() => void) | undefined;
  #lastFailure: unknown;
  /** Where the attempt under way stands, for a caller that stops waiting. */
  #attempting: string | undefined;

  private constructor(options: SessionOptions) {
    this.options = options;
    this.#timeout = options.sessionTimeout;
    this.#servers = shuffle([...options.servers]);
    this.watches = new WatchRegistry({
      add: async (path, mode) => {
        await this.request(Op.addWatch, (w) => w.string(path).int(mode));
      },
      change: (path, mode) => {
        this.#unawaited(
          this.request(Op.addWatch, (w) => w.string(path).int(mode)),
        );
      },
      remove: (path) => {
        this.#unawaited(
          this.request(
            Op.removeWatches,
            (w) => w.string(path).int(WATCHER_TYPE_ANY),
          ),
        );
      },
    });
  }

  /**
   * Opens a session: resolves once connected, rejects with the reason when
   * `signal` aborts first (the session is then dropped).
   */
  static open(
    options: SessionOptions,
    signal: AbortSignal,
    attempts?: { failure?: unknown },
  ): Promise<Session> {
    const session = new Session(options);
    return new Promise((resolve, reject) => {
      const listener: SessionListener = {
        connected: () => {
          session.#listeners.delete(listener);
          signal.removeEventListener("abort", onAbort);
          resolve(session);
        },
        closed: (error) => {
          session.#listeners.delete(listener);
          reject(error ?? new StoreError("The ZooKeeper session closed"));
        },
      };
      const onAbort = () => {
        session.#listeners.delete(listener);
        if (attempts) {
          attempts.failure = session.#attempting === undefined
            ? session.#lastFailure
            : new Error(session.#attempting);
        }
        session.abandon();
        reject(signal.reason);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      session.#listeners.add(listener);
      session.#run();
    });
  }

  /** The session id, `0n` between a lost session and the next one. */
  get sessionId(): bigint {
    return this.#sessionId;
  }

  /** The negotiated session timeout in milliseconds. */
  get timeout(): number {
    return this.#timeout;
  }

  /** Whether a connection is up now. */
  get connected(): boolean {
    return this.#connected;
  }

  /** Whether the session ended for good: closed, abandoned or failed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Starts hearing the session's state; returns what stops it. */
  listen(listener: SessionListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Sends a request; resolves its reply, rejects with a `ZkError` for an
   * error code (unless `allowError`), `CONNECTIONLOSS` when the connection
   * dropped before the reply.
   */
  request<T = undefined>(
    op: number,
    body?: (w: JuteWriter) => void,
    read?: (r: JuteReader) => T,
    options: RequestOptions = {},
  ): Promise<Reply<T>> {
    return new Promise((resolve, reject) => {
      if (this.#closed) {
        reject(new StoreError("The ZooKeeper session is closed"));
        return;
      }
      const pending: Pending = {
        xid: 0,
        op,
        body,
        read,
        allowError: options.allowError ?? false,
        sentAt: 0,
        resolve: resolve as (reply: Reply<unknown>) => void,
        reject,
      };
      const signal = options.signal;
      if (signal) {
        if (signal.aborted) {
          reject(signal.reason);
          return;
        }
        // Only a request still waiting for a connection can be taken back.
        const onAbort = () => {
          const at = this.#queue.indexOf(pending);
          if (at >= 0) {
            this.#queue.splice(at, 1);
            reject(signal.reason);
          }
        };
        signal.addEventListener("abort", onAbort, { once: true });
        pending.detach = () => signal.removeEventListener("abort", onAbort);
      }
      if (this.#connected) this.#send(pending);
      else if (this.#unreachable) this.#fail(pending, this.#notReachable());
      else this.#queue.push(pending);
    });
  }

  /**
   * Ends the session: the server deletes its ephemeral nodes as soon as it
   * reads the request. Nothing waits for its answer (a slow or dead server
   * must not hold `close()` up): the request goes out, then the connection
   * is closed once it is flushed.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    const socket = this.#socket;
    if (this.#connected && socket) {
      this.#flush();
      this.#socket = undefined;
      socket.end(requestFrame(this.#xid, Op.closeSession));
      const timer = setTimeout(() => socket.destroy(), CLOSE_TIMEOUT_MS);
      unrefTimer(timer);
      socket.once("close", () => clearTimeout(timer));
    }
    this.#shutdown(new StoreError("The ZooKeeper session is closed"));
    return Promise.resolve();
  }

  /**
   * Drops the connection without ending the session, as a crashed process
   * would: ZooKeeper expires the session after its timeout.
   */
  abandon(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#shutdown(new StoreError("The ZooKeeper session was abandoned"));
  }

  // A watch request nobody waits for. Its failure is an event unless it
  // leaves nothing wrong behind: the server's watches go with a connection
  // that dropped (the next one registers the registry's), one that ended
  // needs none, and NOWATCHER says the path was not watched any more.
  #unawaited(request: Promise<unknown>): void {
    request.catch((error) => {
      if (
        this.#closed || isDisconnected(error) || isCode(error, Code.noWatcher)
      ) return;
      this.emit({ type: "error", source: "watch", error });
    });
  }

  #shutdown(reason: unknown, fatal?: unknown): void {
    this.#stopTimers();
    clearTimeout(this.#expiry);
    clearTimeout(this.#outage);
    this.#connected = false;
    this.#socket?.destroy();
    this.#socket = undefined;
    this.#wake?.();
    for (const pending of this.#inflight.splice(0)) this.#fail(pending, reason);
    for (const pending of this.#queue.splice(0)) this.#fail(pending, reason);
    for (const listener of [...this.#listeners]) listener.closed?.(fatal);
  }

  // The connection loop: connect, serve until the connection drops, move on.
  async #run(): Promise<void> {
    let failures = 0;
    const rounds = new Backoff(ROUND_BACKOFF);
    while (!this.#closed) {
      const server = this.#servers[this.#next];
      this.#next = (this.#next + 1) % this.#servers.length;
      let closed: Promise<void>;
      try {
        ({ closed } = await this.#attempt(server));
      } catch (error) {
        this.#lastFailure = error;
        failures++;
        if (this.#lost && !this.#closed) {
          this.emit({
            type: "retry",
            operation: "connect",
            attempt: failures,
            error,
          });
        }
        if (failures % this.#servers.length === 0 && !this.#closed) {
          await this.#pause(rounds.next());
        }
        continue;
      }
      failures = 0;
      rounds.reset();
      await closed;
      this.#onDisconnected();
    }
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  // Connects to one server and completes the handshake. Once the session is
  // established on it, resolves what resolves when the connection closes.
  #attempt(server: Server): Promise<{ closed: Promise<void> }> {
    const attemptMs = Math.max(
      MIN_ATTEMPT_MS,
      this.options.sessionTimeout / this.#servers.length,
    );
    return new Promise((resolve, reject) => {
      const tls = this.options.tls;
      const socket = tls
        ? tlsConnect({
          host: server.host,
          port: server.port,
          ...tls,
          servername: tls.servername ?? tlsServername(server.host),
        })
        : netConnect({ host: server.host, port: server.port });
      socket.setNoDelay(true);
      const closed = new Promise<void>((done) => socket.once("close", done));
      const where = `${server.host}:${server.port}`;
      this.#attempting = `no connection to ${where} yet`;
      let settled = false;
      const fail = (error: unknown) => {
        if (settled) return;
        settled = true;
        this.#attempting = undefined;
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      const timer = setTimeout(
        () => fail(new Error(`No handshake within ${attemptMs} ms`)),
        attemptMs,
      );
      unrefTimer(timer);
      this.#wake = () => fail(new Error("Closed"));
      socket.once(tls ? "secureConnect" : "connect", () => {
        if (!settled) {
          this.#attempting =
            `${where} took the connection but has not answered the handshake`;
        }
        socket.write(
          connectFrame(
            this.#lastZxid,
            this.options.sessionTimeout,
            this.#sessionId,
            this.#password,
          ),
        );
      });
      // Once the session is up on it, a connection's failure is a loss the
      // session rides out by itself, so no caller hears of it: it is an
      // event.
      let established = false;
      socket.on("error", (error: Error) => {
        if (!established) return fail(error);
        if (!this.#closed) {
          this.emit({ type: "error", source: "connection", error });
        }
      });
      socket.once("close", () => fail(new Error("Connection closed")));
      let handshaken = false;
      const splitter = new FrameSplitter(
        this.options.maxReplyBytes + REPLY_OVERHEAD_BYTES,
        {
          frame: (body) => {
            if (handshaken) return this.#onFrame(body);
            handshaken = true;
            if (settled) return;
            const reply = readConnectReply(new JuteReader(body));
            if (reply.timeout <= 0) {
              // The session expired while we were away: start a new one.
              this.#expire();
              fail(new Error("Session expired"));
              return;
            }
            settled = true;
            this.#attempting = undefined;
            established = true;
            clearTimeout(timer);
            this.#onConnected(
              server,
              socket,
              reply.sessionId,
              reply.password,
              reply.timeout,
            );
            resolve({ closed });
          },
          oversized: (head, length) => this.#onOversized(head, length),
        },
      );
      socket.on("data", (data: Uint8Array) => {
        try {
          splitter.push(data);
        } catch (error) {
          socket.destroy(error as Error);
        }
      });
    });
  }

  #onConnected(
    server: Server,
    socket: Socket,
    sessionId: bigint,
    password: Uint8Array,
    timeout: number,
  ): void {
    const newSession = sessionId !== this.#sessionId;
    this.#socket = socket;
    this.#sessionId = sessionId;
    this.#password = password;
    this.#timeout = timeout;
    this.#connected = true;
    this.#unreachable = false;
    const reconnected = this.#lost;
    this.#lost = false;
    clearTimeout(this.#expiry);
    clearTimeout(this.#outage);
    const now = Date.now();
    this.#lastReceived = now;
    this.#lastAckSentAt = now;
    // Credentials and watches first: the server handles a connection's
    // requests in order, so every request after them is authenticated and
    // no change after them goes unheard.
    for (const credential of this.options.credentials) {
      this.#write(
        requestFrame(
          Xid.auth,
          Op.auth,
          (w) => w.int(0).string(credential.scheme).buffer(credential.auth),
        ),
      );
    }
    for (const frame of this.#setWatchesFrames()) this.#write(frame);
    for (const pending of this.#queue.splice(0)) this.#send(pending);
    this.#startTimers();
    if (reconnected) {
      this.emit({ type: "reconnect", server: formatHostPort(server) });
    }
    for (const listener of [...this.#listeners]) {
      listener.connected?.(newSession);
    }
  }

  #onDisconnected(): void {
    if (!this.#connected) return;
    this.#connected = false;
    this.#lost = true;
    this.#socket = undefined;
    this.#stopTimers();
    for (const pending of this.#inflight.splice(0)) {
      this.#fail(pending, new ZkError(Code.connectionLoss));
    }
    if (this.#closed) return;
    // ZooKeeper expires the session once it has heard nothing for the whole
    // timeout; the earliest it can is the timeout after the last request it
    // answered was sent.
    const expiresIn = this.#lastAckSentAt + this.#timeout - Date.now();
    this.#expiry = setTimeout(() => {
      if (!this.#connected) this.#expire();
    }, Math.max(0, expiresIn));
    unrefTimer(this.#expiry);
    this.#outage = setTimeout(() => {
      if (this.#connected || this.#closed) return;
      this.#unreachable = true;
      const error = this.#notReachable();
      for (const pending of this.#queue.splice(0)) this.#fail(pending, error);
    }, this.options.connectTimeout);
    unrefTimer(this.#outage);
  }

  #expire(): void {
    if (this.#sessionId === 0n) return;
    // Its ephemeral nodes went with it: nobody asked, so it is an event (the
    // locks held in it report `lost` besides).
    this.emit({
      type: "error",
      source: "session",
      error: new StoreError(
        `The ZooKeeper session 0x${
          this.#sessionId.toString(16)
        } with ${this.options.name} expired; a new session is started`,
      ),
    });
    this.#sessionId = 0n;
    this.#password = new Uint8Array(16);
    for (const listener of [...this.#listeners]) listener.expired?.();
  }

  #fatal(error: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#shutdown(error, error);
  }

  #notReachable(): NotReachableError {
    return new NotReachableError(
      `${this.options.name} is not reachable: no server answered within ${this.options.connectTimeout} ms`,
    );
  }

  #send(pending: Pending): void {
    pending.detach?.();
    pending.xid = this.#xid;
    this.#xid = this.#xid >= 0x7fff_ffff ? 1 : this.#xid + 1;
    const frame = requestFrame(pending.xid, pending.op, pending.body);
    if (frame.length - 4 > this.options.maxBufferSize) {
      // Only an atomic() can build one (each value and bulk chunk is sized
      // to fit): the caller asked for too much at once.
      this.#fail(
        pending,
        new InvalidArgumentError(
          `A request of ${
            frame.length - 4
          } bytes exceeds ZooKeeper's maxBufferSize of ${this.options.maxBufferSize} bytes`,
        ),
      );
      return;
    }
    pending.sentAt = Date.now();
    this.#inflight.push(pending);
    this.#write(frame);
  }

  // Frames written in one synchronous run (a get's sync and reads, the
  // requests of many callers answered by one reply batch) leave in one
  // socket write at the end of the run: one syscall instead of one each.
  #write(frame: Uint8Array): void {
    this.#lastSent = Date.now();
    const socket = this.#socket;
    if (!socket) return;
    if (this.#batchSocket !== socket) {
      this.#flush();
      this.#batchSocket = socket;
      queueMicrotask(() => this.#flush());
    }
    this.#batch.push(frame);
  }

  #flush(): void {
    const socket = this.#batchSocket;
    const frames = this.#batch;
    this.#batchSocket = undefined;
    this.#batch = [];
    // Frames of a connection that dropped meanwhile go with it, as they
    // would had they been written to it.
    if (!socket || socket !== this.#socket || frames.length === 0) return;
    socket.write(frames.length === 1 ? frames[0] : concat(frames));
  }

  #fail(pending: Pending, error: unknown): void {
    pending.detach?.();
    pending.reject(error);
  }

  #onFrame(body: Uint8Array): void {
    const r = new JuteReader(body);
    const xid = r.int();
    const zxid = r.long();
    const err = r.int();
    this.#lastReceived = Date.now();
    if (zxid > this.#lastZxid) this.#lastZxid = zxid;
    switch (xid) {
      case Xid.notification:
        this.watches.dispatch(readWatcherEvent(r));
        return;
      case Xid.ping:
        this.#lastAckSentAt = this.#pingSentAt;
        return;
      case Xid.auth:
        if (err === Code.authFailed) {
          this.#fatal(
            new StoreError(
              `${this.options.name} refused the credentials (AUTHFAILED)`,
            ),
          );
        }
        return;
      case Xid.setWatches:
        return;
    }
    const pending = this.#inflight.shift();
    if (!pending || pending.xid !== xid) {
      // Replies come in request order; anything else is a broken stream.
      this.#socket?.destroy(this.#outOfOrder(xid));
      return;
    }
    this.#lastAckSentAt = pending.sentAt;
    try {
      if (err !== Code.ok && !pending.allowError) {
        pending.reject(new ZkError(err));
        return;
      }
      const value = pending.read && (err === Code.ok || r.remaining > 0)
        ? pending.read(r)
        : undefined;
      pending.resolve({ zxid, err, value });
    } catch (error) {
      pending.reject(error);
    }
  }

  #onOversized(head: Uint8Array, length: number): void {
    const xid = new DataView(head.buffer, head.byteOffset).getInt32(0);
    const pending = this.#inflight.shift();
    if (!pending || pending.xid !== xid) {
      this.#socket?.destroy(this.#outOfOrder(xid));
      return;
    }
    pending.reject(
      new StoreError(
        `ZooKeeper's reply of ${length} bytes exceeds maxReplyBytes (${this.options.maxReplyBytes} bytes): raise it to read this`,
      ),
    );
  }

  #outOfOrder(xid: number): StoreError {
    return new StoreError(
      `${this.options.name} answered request ${xid} out of order; the connection was dropped`,
    );
  }

  // Pings keep the session alive when idle; a connection silent for two
  // thirds of the timeout is presumed dead, leaving a third to move on
  // before the session expires (as the Java client does).
  #startTimers(): void {
    const every = Math.max(10, Math.floor(this.#timeout / 6));
    this.#heartbeat = setInterval(() => {
      const now = Date.now();
      const silence = now - this.#lastReceived;
      if (silence > (this.#timeout * 2) / 3) {
        this.#socket?.destroy(
          new StoreError(
            `${this.options.name} sent nothing for ${silence} ms; the connection was dropped`,
          ),
        );
        return;
      }
      if (now - this.#lastSent >= this.#timeout / 3) {
        this.#pingSentAt = now;
        this.#write(requestFrame(Xid.ping, Op.ping));
      }
    }, every);
    unrefTimer(this.#heartbeat);
  }

  #stopTimers(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  *#setWatchesFrames(): Generator<Uint8Array> {
    const { persistent, recursive } = this.watches.modes();
    const entries: Array<[string, boolean]> = [
      ...persistent.map((path): [string, boolean] => [path, false]),
      ...recursive.map((path): [string, boolean] => [path, true]),
    ];
    let batch: Array<[string, boolean]> = [];
    let bytes = 0;
    const flush = () => {
      const frame = requestFrame(Xid.setWatches, Op.setWatches2, (w) => {
        w.long(this.#lastZxid).strings([]).strings([]).strings([]);
        w.strings(batch.filter(([, tree]) => !tree).map(([path]) => path));
        w.strings(batch.filter(([, tree]) => tree).map(([path]) => path));
      });
      batch = [];
      bytes = 0;
      return frame;
    };
    for (const entry of entries) {
      batch.push(entry);
      bytes += entry[0].length * 3 + 4;
      if (bytes >= SET_WATCHES_MAX_BYTES) yield flush();
    }
    if (batch.length > 0) yield flush();
  }
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

// TLS server names must be host names, not IP addresses.
function tlsServername(host: string): string | undefined {
  return /^[\d.]+$/.test(host) || host.includes(":") ? undefined : host;
}

function concat(frames: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const frame of frames) length += frame.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const frame of frames) {
    out.set(frame, offset);
    offset += frame.length;
  }
  return out;
}
