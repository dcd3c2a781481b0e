/**
 * Opening and closing ioredis connections: within the connect timeout, with
 * errors that say what is wrong (refused credentials and untrusted
 * certificates fail at once; an absent server is retried until the timeout
 * and then gives `NotReachableError`).
 *
 * @module
 */

import { Redis, type RedisOptions } from "ioredis";
import { connectWithin } from "../../core/connect.ts";
import {
  InvalidConfigurationError,
  NotReachableError,
} from "../../core/errors.ts";

/** How to reach the server: the ioredis options and a name for messages. */
export interface Endpoint {
  /** For messages: `"redis at 127.0.0.1:6379"`. */
  readonly what: string;
  /** The ioredis options (host or sentinels, credentials, TLS, db). */
  readonly options: RedisOptions;
  /** The database number, also in keyspace notification channels. */
  readonly db: number;
  /** How long connecting may take, in milliseconds. */
  readonly connectTimeout: number;
}

/**
 * How long ioredis lets a socket it ended finish closing before destroying
 * it. Its default, 2 s, keeps a process alive that long after a failed
 * connection (ioredis ends the socket twice, and the second wait is never
 * cut short).
 */
const DISCONNECT_TIMEOUT_MS = 100;

/**
 * Opens one connection and waits until it is ready. Reconnection after that
 * is ioredis's: commands wait for the connection to come back (or fail after
 * its `maxRetriesPerRequest`), and `ready` is emitted again.
 *
 * @param endpoint Where to connect.
 * @param extra Options of this connection (its role, its retry strategy).
 * @param signal Aborts connecting.
 */
export function openConnection(
  endpoint: Endpoint,
  extra: RedisOptions,
  signal: AbortSignal | undefined,
): Promise<Redis> {
  return connectWithin(
    endpoint.what,
    endpoint.connectTimeout,
    signal,
    (stop) =>
      new Promise<Redis>((resolve, reject) => {
        const client = new Redis({
          disconnectTimeout: DISCONNECT_TIMEOUT_MS,
          ...endpoint.options,
          ...extra,
          lazyConnect: true,
        });
        // ioredis prints errors nobody listens to; the store reports them.
        client.on("error", () => {});
        const fail = (error: unknown) => {
          client.off("error", onError);
          client.off("ready", onReady);
          stop.removeEventListener("abort", onAbort);
          client.disconnect();
          reject(error);
        };
        const onError = (error: Error) => {
          const fatal = fatalError(endpoint, error);
          if (fatal) fail(fatal);
        };
        const onReady = () => {
          client.off("error", onError);
          stop.removeEventListener("abort", onAbort);
          resolve(client);
        };
        const onAbort = () => fail(stop.reason);
        stop.addEventListener("abort", onAbort, { once: true });
        client.on("error", onError);
        client.once("ready", onReady);
        client.connect().catch(() => {
          // Failed attempts are retried until the deadline; errors that no
          // retry can mend are reported through onError.
        });
      }),
  );
}

// Errors no reconnection can mend: refused credentials and certificates that
// do not verify. Returns the error to report, or undefined to keep trying.
function fatalError(endpoint: Endpoint, error: Error): Error | undefined {
  const message = error.message ?? "";
  if (/^(WRONGPASS|NOAUTH)\b/.test(message)) {
    const user = endpoint.options.username;
    return new InvalidConfigurationError(
      `${endpoint.what} refused ${
        user ? `the credentials of user ${JSON.stringify(user)}` : "to log in"
      }: ${message}`,
      { cause: error },
    );
  }
  // The database could not be selected: going on would use database 0.
  if (/DB index is out of range|NOPERM.*'select'/i.test(message)) {
    return new InvalidConfigurationError(
      `${endpoint.what} would not select database ${endpoint.db}: ${message}`,
      { cause: error },
    );
  }
  const code = String((error as { code?: unknown }).code ?? "");
  if (
    /CERT|TLS|SSL/i.test(code) ||
    /certificate|self[- ]signed|handshake/i.test(message)
  ) {
    return new NotReachableError(
      `${endpoint.what} is not reachable over TLS: ${message}`,
      { cause: error },
    );
  }
  return undefined;
}
