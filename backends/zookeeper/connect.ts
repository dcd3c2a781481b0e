/**
 * Opening a session within `connectTimeout`, saying why when no server
 * could be reached.
 *
 * @module
 */

import { connectWithin } from "../../core/connect.ts";
import { NotReachableError } from "../../core/errors.ts";
import type { ZookeeperConfig } from "./config.ts";
import { Session } from "./session.ts";

/** Opens a session whose timeout is `timeout`, as `config` says. */
export async function openSession(
  config: ZookeeperConfig,
  timeout: number,
  signal: AbortSignal | undefined,
): Promise<Session> {
  const attempts: { failure?: unknown } = {};
  try {
    return await connectWithin(
      config.name,
      config.connectTimeout,
      signal,
      (stop) =>
        Session.open(
          {
            servers: config.servers,
            sessionTimeout: timeout,
            connectTimeout: config.connectTimeout,
            tls: config.tls,
            credentials: config.credentials,
            maxBufferSize: config.maxBufferSize,
            maxReplyBytes: config.maxReplyBytes,
            name: config.name,
          },
          stop,
          attempts,
        ),
    );
  } catch (error) {
    // Say why the servers could not be reached (refused, TLS, ...).
    const failure = attempts.failure;
    if (error instanceof NotReachableError && failure instanceof Error) {
      throw new NotReachableError(
        `${error.message}; the last attempt failed with: ${failure.message}`,
        { cause: failure },
      );
    }
    throw error;
  }
}
