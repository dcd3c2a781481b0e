/**
 * The owner's side of the socket: serves other processes' calls on the
 * file this process owns, each connection in the order its messages came,
 * and pushes each of their watches' reports on the same connection.
 *
 * Closing drains: calls not yet started are answered "retry" (the client
 * sends them again to the next owner), calls under way finish and are
 * answered, and only then does the database close. So a handover by a
 * clean close leaves no call whose outcome is unknown.
 *
 * @module
 */

import type { Socket } from "node:net";
import process from "node:process";
import { StoreError } from "../../core/errors.ts";
import type { AtomicStep } from "../../core/driver.ts";
import type { LockFence } from "./access.ts";
import type { LocalAccess } from "./local.ts";
import {
  encode,
  type Message,
  readMessages,
  toWireError,
  WIRE_VERSION,
} from "./wire.ts";

/** Serves the clients of one owned file. */
export class OwnerServer {
  readonly #access: LocalAccess;
  readonly #onError: (error: unknown) => void;
  readonly #connections = new Set<Socket>();
  #pending = 0;
  #idle: (() => void) | undefined;
  #draining = false;

  /**
   * Serves calls on `access`.
   *
   * @param access The owned database.
   * @param onError Hears what a client sent that could not be read.
   */
  constructor(access: LocalAccess, onError: (error: unknown) => void) {
    this.#access = access;
    this.#onError = onError;
  }

  /** Takes a new client connection (the socket server's listener). */
  accept(socket: Socket): void {
    // Clients never keep the owner's process alive: when it ends, one of
    // them takes the file over.
    socket.unref();
    socket.setNoDelay?.(true);
    this.#connections.add(socket);
    const watches = new Map<number, AbortController>();
    const send = (message: Message, what?: string) => {
      if (socket.destroyed) return;
      let frame: Uint8Array;
      try {
        frame = encode(message, what);
      } catch (error) {
        // Too large to send: the call, or the watch, fails with the reason
        // instead of the connection.
        frame = encode(
          typeof message.sub === "number"
            ? { sub: message.sub, t: "error", error: toWireError(error) }
            : { id: message.id, ok: false, error: toWireError(error) },
        );
      }
      socket.write(frame);
    };
    socket.on("error", (error) => {
      // A malformed message (see readMessages) is a broken client, worth
      // telling; any other error is the connection's end, the client's to
      // handle (it finds this owner, or the next, again).
      if (error instanceof StoreError) this.#onError(error);
      socket.destroy();
    });
    socket.on("close", () => {
      this.#connections.delete(socket);
      for (const watch of watches.values()) watch.abort();
      watches.clear();
    });
    readMessages(socket, (message) => {
      const id = message.id as number;
      if (this.#draining) {
        send({ id, retry: true });
        return;
      }
      if (message.op === "unwatch") {
        watches.get(message.sub as number)?.abort();
        watches.delete(message.sub as number);
        return;
      }
      if (message.op === "watchKey" || message.op === "watchTree") {
        const controller = new AbortController();
        watches.set(id, controller);
        this.#watch(
          message,
          (report) => send({ sub: id, ...report }, `a report of ${message.op}`),
          controller.signal,
        );
        return;
      }
      this.#pending++;
      this.#call(message).then(
        (result) =>
          send({ id, ok: true, result }, `the answer to ${message.op}`),
        (error) => send({ id, ok: false, error: toWireError(error) }),
      ).finally(() => {
        if (--this.#pending === 0) this.#idle?.();
      });
    });
  }

  #watch(
    message: Message,
    report: (message: Message) => void,
    signal: AbortSignal,
  ): void {
    const error = (e: unknown) => report({ t: "error", error: toWireError(e) });
    if (message.op === "watchKey") {
      this.#access.watchKey(message.key as string, {
        state: (entry) => report({ t: "state", entry }),
        error,
      }, signal);
    } else {
      this.#access.watchTree(message.dir as string, {
        reset: (entries) => report({ t: "reset", entries }),
        put: (entry) => report({ t: "put", entry }),
        delete: (key) => report({ t: "delete", key }),
        error,
      }, signal);
    }
  }

  #call(m: Message): Promise<unknown> {
    const a = this.#access;
    switch (m.op) {
      case "hello":
        if (m.version !== WIRE_VERSION) {
          return Promise.reject(
            new Error(
              `the owning process speaks version ${WIRE_VERSION} of the protocol, this one ${m.version}: use one version of the library for one file`,
            ),
          );
        }
        return Promise.resolve({ pid: process.pid });
      case "get":
        return a.get(m.key as string);
      case "list":
        return a.list(m.dir as string);
      case "page":
        return a.page(
          m.dir as string,
          m.after as string | undefined,
          m.limit as number,
        );
      case "put":
        return a.put(
          m.key as string,
          m.value as Uint8Array,
          m.ttl as number | undefined,
        );
      case "delete":
        return a.delete(m.key as string);
      case "deleteTree":
        return a.deleteTree(m.key as string | null, m.dir as string);
      case "commit":
        return a.commit(
          m.steps as AtomicStep[],
          (m.fences ?? []) as LockFence[],
        );
      case "tryLock":
        return a.tryLock(
          m.key as string,
          m.token as string,
          m.value as Uint8Array,
          m.ttl as number,
        );
      case "renewLock":
        return a.renewLock(m.key as string, m.token as string, m.ttl as number);
      case "unlock":
        return a.unlock(
          m.key as string,
          m.token as string,
          m.deleteKey as boolean,
        );
      case "verify":
        return a.verify();
      default:
        return Promise.reject(new Error(`Unknown call ${String(m.op)}`));
    }
  }

  /**
   * Stops taking calls, waits for those under way to be answered, and
   * closes every connection.
   */
  async drain(): Promise<void> {
    this.#draining = true;
    if (this.#pending > 0) {
      await new Promise<void>((resolve) => (this.#idle = resolve));
    }
    // Each connection is destroyed once its answers are flushed: the
    // server's close waits for every connection to be gone.
    for (const socket of this.#connections) socket.end(() => socket.destroy());
    this.#connections.clear();
  }
}
