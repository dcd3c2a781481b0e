/**
 * What a DynamoDB store reports on its own (see `core/events.ts`): each
 * request tried again, by the SDK or by this backend; DynamoDB answering
 * again after it could not be reached; watches that picked the stream up
 * again; errors of the stream reader that no caller hears.
 *
 * The SDK retries throttling, 5xx answers and network errors inside its own
 * middleware, where the call that sent the request never sees them: each
 * request of a store call carries a middleware of its own, inside the SDK's
 * retry loop, that sees every attempt (see {@linkcode Reporter.track}).
 *
 * @module
 */

import type { DriverEvent } from "../../core/events.ts";
import { isNetworkError } from "./errors.ts";

/** One attempt of a request, as the SDK's middleware hands it on. */
type Attempt = (args: { request?: unknown }) => Promise<unknown>;

/** The part of a command's middleware stack that {@linkcode Reporter.track} uses. */
interface Stack {
  add(
    middleware: (next: Attempt) => Attempt,
    options: { step: "finalizeRequest"; priority: "low" },
  ): void;
}

/** What a DynamoDB answer carries, even an error's. */
interface Answered {
  $metadata?: { httpStatusCode?: number };
}

/** Where one store's events go. */
export class Reporter {
  /** The store's events: a no-op until the store observes the driver. */
  emit: (event: DriverEvent) => void = () => {};
  /** `host:port` of each server a request could not reach, until it answers. */
  readonly #unreachable = new Set<string>();

  /** Reports that `op` is tried again after its try `attempt` failed. */
  retry(op: string, attempt: number, error: unknown): void {
    this.emit({ type: "retry", operation: op, attempt, error });
  }

  /**
   * Sets `command` to report the SDK's retries of it as `op`'s, and the
   * first answer of a server that could not be reached as a reconnection.
   * The middleware is the command's own (added once, the command is sent
   * once), so a client the caller handed in is left as it was.
   *
   * @param command A command about to be sent.
   * @param op The store call it is part of.
   * @returns `command`.
   */
  track<C extends { middlewareStack: object }>(command: C, op: string): C {
    (command.middlewareStack as Stack).add((next) => {
      let attempts = 0;
      let failure: unknown;
      // Inside the SDK's retry loop (the lowest priority of its step): one
      // call per attempt, so a second call is a retry of the first.
      return async (args) => {
        if (attempts > 0) this.retry(op, attempts, failure);
        attempts++;
        const server = serverOf(args.request);
        try {
          const result = await next(args);
          this.#answered(server);
          return result;
        } catch (error) {
          failure = error;
          if (isNetworkError(error)) this.#unreachable.add(server);
          else if ((error as Answered)?.$metadata?.httpStatusCode) {
            this.#answered(server);
          }
          throw error;
        }
      };
    }, { step: "finalizeRequest", priority: "low" });
    return command;
  }

  #answered(server: string): void {
    if (this.#unreachable.size > 0 && this.#unreachable.delete(server)) {
      this.emit({ type: "reconnect", server });
    }
  }
}

/** `host:port` of the HTTP request an attempt sends. */
function serverOf(request: unknown): string {
  const { hostname, port, protocol } = request as {
    hostname?: string;
    port?: number;
    protocol?: string;
  };
  return `${hostname}:${port ?? (protocol === "http:" ? 80 : 443)}`;
}
