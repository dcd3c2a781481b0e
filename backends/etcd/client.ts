/**
 * The connection to etcd: an `etcd3` client set up for this library (TLS,
 * auth, gRPC keepalives, a circuit breaker per member), unary calls with a
 * deadline and retries that never repeat a write that may have been applied,
 * streams that follow the leader, and etcd's errors turned into ours.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import {
  circuitBreaker,
  ConsecutiveBreaker,
  handleWhen,
  isBrokenCircuitError,
  noop,
} from "cockatiel";
import {
  castGrpcError,
  Etcd3,
  type IDuplexStream,
  isRecoverableError,
} from "etcd3";
import { delay } from "../../core/abort.ts";
import { StoreError } from "../../core/errors.ts";
import { Backoff, type BackoffOptions } from "../../core/backoff.ts";
import type { TlsConnectionOptions } from "../../core/tls.ts";
import type { ErrorContext } from "../../core/translate.ts";
import type { DriverEvent } from "../../core/events.ts";
import { failureKind, isInvalidToken, translateError } from "./errors.ts";
import { memberTls } from "./tls.ts";

/** What {@linkcode EtcdClient} needs to connect. */
export interface ClientSettings {
  /** `host:port` of each member. */
  hosts: string[];
  /** TLS, when on, checked (`ConfigReader.tls`). */
  tls?: TlsConnectionOptions;
  /** etcd user name and password, when auth is on. */
  username?: string;
  password?: string;
  /** How long one call may take, retries included, in milliseconds. */
  requestTimeout: number;
}

/**
 * A member that failed this many calls in a row is skipped (the next call goes
 * to another member) for {@linkcode MEMBER_PAUSE_MS}: etcd3's default breaker.
 */
const MEMBER_FAILURES_TO_SKIP = 3;

/**
 * How long a failing member is skipped. etcd3 waits 5 s; 1 s brings a
 * restarted member of a one-member cluster back quickly.
 */
const MEMBER_PAUSE_MS = 1_000;

/**
 * How long one attempt of a call that may be repeated waits for a member.
 * etcd answers a healthy call in milliseconds, but a member whose leader just
 * died answers a call it forwarded only after etcd's own request timeout
 * (5 s + 2 election timeouts): giving up on it sooner lets the retry reach
 * the new leader through another member. Calls that may not be repeated
 * wait for etcd's own answer, within `requestTimeout`.
 */
const ATTEMPT_TIMEOUT_MS = 2_000;

/**
 * Pauses between retries of a call: from 25 ms, doubling up to 500 ms (the
 * retry goes to another member, so it need not wait long), with equal
 * jitter.
 */
const RETRY_BACKOFF: BackoffOptions = {
  baseMs: 25,
  capMs: 500,
  jitter: "equal",
};

/**
 * gRPC keepalive pings find a dead connection that sends no reset (a frozen
 * member, a dropped network). etcd's `--grpc-keepalive-min-time` (5 s by
 * default) sends GOAWAY to clients that ping more often than that.
 */
const KEEPALIVE_TIME_MS = 10_000;
const KEEPALIVE_TIMEOUT_MS = 5_000;

/**
 * etcd's metadata asking a member to end a stream when it has no leader
 * (`rpctypes.MetadataRequireLeaderKey`), so a watch on a member cut off from
 * the cluster fails over instead of going quiet.
 */
const REQUIRE_LEADER = ["hasleader", "true"] as const;

/** How a call may be repeated after a failure. */
export type Retry =
  /** Repeating it cannot change the outcome: reads, lease calls. */
  | "idempotent"
  /**
   * Repeat only what surely did not reach etcd: writes, whose second landing
   * would get a later revision than the first, over any write between.
   */
  | "unsent";

// The parts of etcd3's client this module reaches past its typings: the pool
// that picks members and holds the auth token.
interface Pool {
  withConnection<R>(
    service: string,
    fn: (
      args: { resource: unknown; client: grpc.Client; metadata: grpc.Metadata },
    ) => R,
  ): Promise<R>;
  markFailed(resource: unknown, error: Error): void;
  hosts: Array<{
    host: string;
    channelCredentials: grpc.ChannelCredentials;
    channelOptions: grpc.ChannelOptions | undefined;
    getServiceClient(name: string): grpc.Client;
  }>;
  authenticator: {
    invalidateMetadata(): void;
    getCredentialsFromHost(
      address: string,
      name: string,
      password: string,
      options: grpc.CallOptions | undefined,
    ): Promise<string>;
  };
}

/**
 * etcd3's pool, after checking that it has the shape this module relies on:
 * a release of etcd3 that renamed one of these fails here, at open, with a
 * message that says so, rather than later as a TypeError in a call.
 *
 * @param etcd The client whose pool to take.
 * @returns The pool.
 */
export function privatePool(etcd: Etcd3): Pool {
  const pool = (etcd as unknown as { pool?: Partial<Pool> }).pool;
  const missing = [
    typeof pool?.withConnection === "function" ? "" : "pool.withConnection()",
    typeof pool?.markFailed === "function" ? "" : "pool.markFailed()",
    Array.isArray(pool?.hosts) &&
      pool.hosts.every((host) => typeof host.getServiceClient === "function")
      ? ""
      : "pool.hosts[].getServiceClient()",
    typeof pool?.authenticator?.invalidateMetadata === "function"
      ? ""
      : "pool.authenticator.invalidateMetadata()",
    typeof pool?.authenticator?.getCredentialsFromHost === "function"
      ? ""
      : "pool.authenticator.getCredentialsFromHost()",
  ].filter((name) => name !== "");
  if (missing.length > 0) {
    throw new StoreError(
      `This version of the etcd3 client lacks what the etcd backend uses of its internals (${
        missing.join(", ")
      }); install the etcd3 version this library declares (^1.1.2)`,
    );
  }
  return pool as Pool;
}

/** An open connection to an etcd cluster. */
export class EtcdClient {
  /** The etcd3 client. */
  readonly etcd: Etcd3;
  /** `etcd at h1:2379,h2:2379`, for messages. */
  readonly where: string;
  readonly #requestTimeout: number;
  readonly #pool: Pool;
  #closed = false;
  #revision = 0n;
  /** Where retries and reconnections are reported (the store's events). */
  emit: (event: DriverEvent) => void = () => {};

  constructor(settings: ClientSettings) {
    this.where = `etcd at ${settings.hosts.join(",")}`;
    this.#requestTimeout = settings.requestTimeout;
    const scheme = settings.tls ? "https" : "http";
    const auth = settings.username === undefined ? undefined : {
      username: settings.username,
      password: settings.password ?? "",
    };
    this.etcd = new Etcd3({
      hosts: settings.hosts.map((host) => `${scheme}://${host}`),
      auth,
      grpcOptions: {
        "grpc.keepalive_time_ms": KEEPALIVE_TIME_MS,
        "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
        // Lists and watch batches may be large: a page of big values.
        "grpc.max_receive_message_length": -1,
      },
      faultHandling: {
        // Retries are ours (`call`): only we know whether a call is safe to
        // repeat.
        global: noop,
        host: () =>
          circuitBreaker(handleWhen(isRecoverableError), {
            halfOpenAfter: MEMBER_PAUSE_MS,
            breaker: new ConsecutiveBreaker(MEMBER_FAILURES_TO_SKIP),
          }),
      },
    });
    this.#pool = privatePool(this.etcd);
    if (settings.tls) {
      // etcd3 makes one set of TLS credentials for every member; ours are
      // per member (see tls.ts). Channels are made lazily, so setting them
      // before the first call is enough.
      for (const host of this.#pool.hosts) {
        const tls = memberTls(settings.tls, host.host);
        host.channelCredentials = tls.credentials;
        host.channelOptions = { ...host.channelOptions, ...tls.options };
      }
    }
    if (auth) {
      // etcd3 asks for a token on a channel of its own, made with neither
      // the member's channel options nor a close(): it would miss the TLS
      // settings above and leave the channel open. The member's cached Auth
      // client has both right and is closed with the pool.
      this.#pool.authenticator.getCredentialsFromHost = (
        address,
        name,
        password,
        options,
      ) => authenticate(this.#pool, address, name, password, options);
    }
  }

  /**
   * Runs a unary call with a deadline, retrying what `retry` allows on
   * another member, until `requestTimeout` has passed.
   *
   * @param retry Whether the call may be repeated after an unclear failure.
   * @param fn Makes the call with the given gRPC options.
   * @param signal Stops retrying.
   * @param context What the call does, for the message of its error.
   * @param unclear For a write (`unsent`): the call that, repeated safely,
   * finds out whether it landed and applies it if not, made instead of `fn`
   * once an attempt may or may not have been applied.
   */
  async call<T>(
    retry: Retry,
    fn: (options: grpc.CallOptions) => Promise<T>,
    signal?: AbortSignal,
    context: ErrorContext = { op: "request" },
    unclear?: (options: grpc.CallOptions) => Promise<T>,
  ): Promise<T> {
    const deadline = Date.now() + this.#requestTimeout;
    const backoff = new Backoff(RETRY_BACKOFF);
    // A skipped member says only "circuit breaker open"; the failure that
    // made it skipped says why.
    let cause: unknown;
    for (let attempt = 1;; attempt++) {
      try {
        // A write with a way to find out what became of it need not wait
        // out etcd's own timeout either.
        const result = await fn({
          deadline: retry === "idempotent" || unclear
            ? Math.min(deadline, Date.now() + ATTEMPT_TIMEOUT_MS)
            : deadline,
        });
        this.#saw(result);
        return result;
      } catch (error) {
        if (!isBrokenCircuitError(error) || cause === undefined) cause = error;
        const kind = failureKind(error);
        // A write that may have landed goes on as the call that finds out
        // (safe to repeat), where the caller has one.
        if (kind === "unclear" && retry === "unsent" && unclear) {
          fn = unclear;
          retry = "idempotent";
        }
        const repeat = kind === "unsent" ||
          (kind === "unclear" && retry === "idempotent");
        const pause = backoff.next();
        if (!repeat || this.#closed || Date.now() + pause >= deadline) {
          throw translateError(cause, { ...context, server: this.where }) ??
            cause;
        }
        this.emit({ type: "retry", operation: context.op, attempt, error });
        await delay(pause, signal);
      }
    }
  }

  /**
   * The highest revision a reply has shown this client: every key's
   * `mod_revision` was at most this when the reply was sent.
   */
  get revision(): bigint {
    return this.#revision;
  }

  #saw(reply: unknown): void {
    const revision = (reply as { header?: { revision?: string } } | undefined)
      ?.header?.revision;
    if (revision === undefined) return;
    const seen = BigInt(revision);
    if (seen > this.#revision) this.#revision = seen;
  }

  /**
   * Opens a bidirectional stream of `service` on a member of etcd3's
   * choosing, asking the member to end it when it loses its leader.
   *
   * @param service `"Watch"` or `"Lease"`.
   * @param method `"watch"` or `"leaseKeepAlive"`.
   */
  async stream<Req, Res>(
    service: "Watch" | "Lease",
    method: "watch" | "leaseKeepAlive",
  ): Promise<IDuplexStream<Req, Res>> {
    return await this.#pool.withConnection(
      service,
      ({ resource, client, metadata }) => {
        const withLeader = metadata.clone();
        withLeader.set(...REQUIRE_LEADER);
        const open = (client as unknown as Record<
          string,
          (m: grpc.Metadata, o: grpc.CallOptions) => IDuplexStream<Req, Res>
        >)[method];
        const stream = open.call(client, withLeader, {});
        stream.on("error", (error: Error) => {
          // A member that dropped the stream is skipped for a while, as
          // etcd3 does for its own streams; our own cancel is no failure.
          if ((error as { code?: number }).code === grpc.status.UNAVAILABLE) {
            this.#pool.markFailed(resource, error);
          }
          if (isInvalidToken(error)) {
            this.#pool.authenticator.invalidateMetadata();
          }
        });
        return stream;
      },
    );
  }

  /** Closes every channel; calls in flight fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.etcd.close();
  }
}

// One Authenticate call on the member's own Auth client.
function authenticate(
  pool: Pool,
  address: string,
  name: string,
  password: string,
  options: grpc.CallOptions | undefined,
): Promise<string> {
  const host = pool.hosts.find((h) => h.host === address);
  if (!host) return Promise.reject(new Error(`No etcd member ${address}`));
  const client = host.getServiceClient("Auth") as unknown as {
    authenticate(
      request: { name: string; password: string },
      metadata: grpc.Metadata,
      options: grpc.CallOptions,
      done: (error: Error | null, response?: { token: string }) => void,
    ): void;
  };
  return new Promise((resolve, reject) => {
    client.authenticate(
      { name, password },
      new grpc.Metadata(),
      options ?? {},
      (error, response) =>
        error ? reject(castGrpcError(error)) : resolve(response!.token),
    );
  });
}
