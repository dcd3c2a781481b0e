/**
 * The Consul HTTP API as the driver uses it, over the `consul` npm client:
 * typed calls, an `AbortSignal` on every request (the client cancels a
 * request when its `ctx` emits `cancel`), response headers for blocking
 * queries, a timeout on every request, and errors that say what Consul said.
 * The agent's first answer after requests it did not answer is a
 * `reconnect` event (core/events.ts).
 *
 * @module
 */

import { EventEmitter } from "node:events";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import Consul from "consul";
import { InvalidConfigurationError } from "../../core/errors.ts";
import type { DriverEvent } from "../../core/events.ts";
import type { TlsConnectionOptions } from "../../core/tls.ts";

/** A KV entry as Consul returns it (values decoded by the client). */
export interface ConsulEntry {
  Key: string;
  /** The bytes, or `null` for an empty value. */
  Value: Uint8Array | null;
  Flags: number;
  Session?: string;
  LockIndex: number;
  CreateIndex: number;
  ModifyIndex: number;
}

/** One KV operation of `/v1/txn`. */
export interface TxnOp {
  Verb: string;
  Key: string;
  /** Base64. */
  Value?: string;
  Flags?: number;
  Index?: number;
  Session?: string;
  Namespace?: string;
}

/** The outcome of `/v1/txn`. */
export type TxnOutcome =
  | { ok: true; results: ConsulEntry[] }
  | { ok: false; errors: Array<{ OpIndex: number; What: string }> };

/** A session to create (the fields of `PUT /v1/session/create`). */
export interface SessionSpec {
  name: string;
  /** A Go duration: `"10s"`, `"1.5s"`. */
  ttl: string;
  behavior: "release" | "delete";
  /** A Go duration. */
  lockDelay: string;
  /** Health checks tying the session to its node; `[]` for none. */
  checks?: string[];
}

/** How to reach the agent. */
export interface ConsulHttpOptions {
  /** `http://host:port` or `https://host:port`. */
  origin: string;
  username?: string;
  password?: string;
  token?: string;
  datacenter?: string;
  namespace?: string;
  /** TLS, checked (`ConfigReader.tls`); used with an `https:` origin. */
  tls?: TlsConnectionOptions;
  /** Deadline of a request that is not a blocking query, in ms. */
  requestTimeout: number;
}

/** Options of one call. */
export interface CallOptions {
  signal?: AbortSignal;
}

/** Options of reads. */
export interface ReadCallOptions extends CallOptions {
  /** `?consistent` (true) or `?stale` (false). */
  consistent?: boolean;
  /** Block until the index moves past this one (`?index`). */
  index?: bigint;
  /** The longest block, in ms (`?wait`). */
  waitMs?: number;
}

/**
 * An answer from Consul other than success, or a failure to get one. It is
 * wrapped in a `StoreError` by the store; watches and locks look at
 * `transient` to decide whether to retry.
 */
export class ConsulHttpError extends Error {
  /** The HTTP status, when Consul answered. */
  readonly status: number | undefined;
  /** Whether trying again may succeed (network errors, 5xx, 429). */
  readonly transient: boolean;

  constructor(
    message: string,
    status: number | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ConsulHttpError";
    this.status = status;
    this.transient = status === undefined || status >= 500 || status === 429;
  }
}

interface ResponseLike {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body?: unknown;
}

interface PapiError extends Error {
  isAbort?: boolean;
  isTimeout?: boolean;
  response?: ResponseLike;
}

// The parts of the `consul` client this module calls; its own typings
// leave out `ctx`, `timeout`, `buffer` and the TLS options.
interface ConsulClient {
  kv: {
    get(options: Record<string, unknown>): Promise<unknown>;
    keys(options: Record<string, unknown>): Promise<unknown>;
  };
  session: {
    create(options: Record<string, unknown>): Promise<unknown>;
    renew(options: Record<string, unknown>): Promise<unknown>;
    destroy(options: Record<string, unknown>): Promise<unknown>;
  };
  status: { leader(options: Record<string, unknown>): Promise<unknown> };
  transaction: {
    create(ops: unknown[], options: Record<string, unknown>): Promise<unknown>;
  };
  destroy(): void;
}

const ConsulClass = Consul as unknown as new (
  options: Record<string, unknown>,
) => ConsulClient;

/**
 * A blocking query asks Consul to hold the answer for `wait`, plus up to
 * `wait / 16` of jitter; the request gets this much more before it is
 * declared lost (https://developer.hashicorp.com/consul/api-docs/features/blocking).
 */
const BLOCKING_GRACE_MS = 5_000;

/**
 * The Consul agent, through two `consul` clients of its own: one keeping
 * connections alive, one for blocking queries.
 */
export class ConsulHttp {
  /** Hears what the store handles on its own; the driver's `observe`. */
  emit: (event: DriverEvent) => void = () => {};
  readonly #client: ConsulClient;
  readonly #blocking: ConsulClient;
  readonly #options: ConsulHttpOptions;
  /** The last request that ended got no answer from the agent. */
  #unreachable = false;

  constructor(options: ConsulHttpOptions) {
    this.#options = options;
    const secure = options.origin.startsWith("https:");
    // The client takes credentials (for an agent behind a proxy that wants
    // them) from its base URL.
    const base = new URL(options.origin);
    if (options.username !== undefined) base.username = options.username;
    if (options.password !== undefined) base.password = options.password;
    base.pathname = "/v1";
    const client = (keepAlive: boolean) =>
      new ConsulClass({
        baseUrl: base.href,
        // A pool per client, so destroy() ends its connections.
        agent: secure
          ? new HttpsAgent({ keepAlive })
          : new HttpAgent({ keepAlive }),
        headers: options.namespace
          ? { "X-Consul-Namespace": options.namespace }
          : {},
        defaults: {
          ...(options.token ? { token: options.token } : {}),
          ...(options.datacenter ? { dc: options.datacenter } : {}),
        },
        // The client hands these to `https.request`.
        ...(secure ? options.tls ?? { rejectUnauthorized: true } : {}),
      });
    this.#client = client(true);
    // Blocking queries hold a connection for minutes and are cancelled
    // often; they get connections of their own, not reused, which also
    // keeps Deno's `node:http` from piling listeners on reused sockets.
    this.#blocking = client(false);
  }

  /** The agent, for messages: `consul at http://127.0.0.1:8500`. */
  get where(): string {
    return `consul at ${this.#options.origin}`;
  }

  /** The Raft leader's address, `""` when the cluster has none. */
  async leader(options: CallOptions = {}): Promise<string> {
    const [, body] = await this.#call(
      (extra) => this.#client.status.leader(extra),
      {},
      options.signal,
    );
    return typeof body === "string" ? body : "";
  }

  /** The entry at `key` (or `null`) and the index to block on next. */
  async get(
    key: string,
    options: ReadCallOptions = {},
  ): Promise<{ entry: ConsulEntry | null; index: bigint }> {
    const client = options.index === undefined ? this.#client : this.#blocking;
    const [res, body] = await this.#call(
      (extra) => client.kv.get(extra),
      { key, buffer: true, ...readParams(options) },
      options.signal,
      options.waitMs,
    );
    return {
      entry: (body as ConsulEntry | undefined) ?? null,
      index: index(res),
    };
  }

  /** Every entry whose key starts with `dir`, and the index to block on. */
  async list(
    dir: string,
    options: ReadCallOptions = {},
  ): Promise<{ entries: ConsulEntry[]; index: bigint }> {
    const client = options.index === undefined ? this.#client : this.#blocking;
    const [res, body] = await this.#call(
      (extra) => client.kv.get(extra),
      { key: dir, recurse: true, buffer: true, ...readParams(options) },
      options.signal,
      options.waitMs,
    );
    return {
      entries: (body as ConsulEntry[] | undefined) ?? [],
      index: index(res),
    };
  }

  /**
   * One level of the tree under `prefix` (`?keys&separator=/`): the keys
   * right under it and, once each, the sub-prefixes (up to and with their
   * next `/`) that hold deeper keys; `[]` for an empty tree, which Consul
   * answers with a 404 (https://developer.hashicorp.com/consul/api-docs/kv#read-key).
   */
  async keys(prefix: string, options: ReadCallOptions = {}): Promise<string[]> {
    try {
      const [, body] = await this.#call(
        (extra) => this.#client.kv.keys(extra),
        { key: prefix, separator: "/", ...readParams(options) },
        options.signal,
      );
      return Array.isArray(body) ? body as string[] : [];
    } catch (error) {
      if (error instanceof ConsulHttpError && error.status === 404) return [];
      throw error;
    }
  }

  /**
   * Applies KV operations all together (`PUT /v1/txn`). A transaction of
   * reads and checks only is served as a read, with a consistency mode:
   * `consistent` asks `?consistent`, `stale` asks `?stale`
   * (https://developer.hashicorp.com/consul/api-docs/txn#query-parameters).
   */
  async txn(
    ops: TxnOp[],
    options: CallOptions & { consistent?: boolean; stale?: boolean } = {},
  ): Promise<TxnOutcome> {
    const namespace = this.#options.namespace;
    const body = ops.map((op) => ({
      KV: namespace ? { ...op, Namespace: namespace } : op,
    }));
    try {
      const [, result] = await this.#call(
        (extra) => this.#client.transaction.create(body, extra),
        options.consistent
          ? { consistent: true }
          : options.stale
          ? { stale: true }
          : {},
        options.signal,
      );
      const results = (result as { Results?: Array<{ KV?: RawEntry }> })
        ?.Results ?? [];
      return {
        ok: true,
        results: results.flatMap((r) => r.KV ? [decodeEntry(r.KV)] : []),
      };
    } catch (error) {
      const response = (error as ConsulHttpError).cause as
        | ResponseLike
        | undefined;
      if (error instanceof ConsulHttpError && error.status === 409) {
        const errors = (response?.body as { Errors?: unknown })?.Errors;
        if (Array.isArray(errors)) return { ok: false, errors };
      }
      throw error;
    }
  }

  /** Creates a session; resolves its ID. */
  async createSession(
    spec: SessionSpec,
    options: CallOptions = {},
  ): Promise<string> {
    const [, body] = await this.#call(
      (extra) => this.#client.session.create(extra),
      {
        name: spec.name,
        ttl: spec.ttl,
        behavior: spec.behavior,
        lockdelay: spec.lockDelay,
        ...(spec.checks ? { checks: spec.checks } : {}),
      },
      options.signal,
    );
    const id = (body as { ID?: unknown })?.ID;
    if (typeof id !== "string") {
      throw new ConsulHttpError("consul created a session without an ID", 200);
    }
    return id;
  }

  /** Renews a session; `false` when it no longer exists. */
  async renewSession(id: string, options: CallOptions = {}): Promise<boolean> {
    try {
      await this.#call(
        (extra) => this.#client.session.renew(extra),
        { id },
        options.signal,
      );
      return true;
    } catch (error) {
      if (error instanceof ConsulHttpError && error.status === 404) {
        return false;
      }
      throw error;
    }
  }

  /** Destroys a session (idempotent on Consul's side). */
  async destroySession(id: string, options: CallOptions = {}): Promise<void> {
    await this.#call(
      (extra) => this.#client.session.destroy(extra),
      { id },
      options.signal,
    );
  }

  /** Ends every connection of this client. */
  destroy(): void {
    this.#client.destroy();
    this.#blocking.destroy();
  }

  // Runs one client call with a cancellable context that also returns the
  // response (for its headers), and turns what went wrong into an error
  // that says so.
  async #call(
    run: (extra: Record<string, unknown>) => Promise<unknown>,
    params: Record<string, unknown>,
    signal: AbortSignal | undefined,
    waitMs?: number,
  ): Promise<[ResponseLike, unknown]> {
    signal?.throwIfAborted();
    const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
    const cancel = () => ctx.emit("cancel");
    signal?.addEventListener("abort", cancel, { once: true });
    const timeout = waitMs === undefined
      ? this.#options.requestTimeout
      : waitMs + waitMs / 16 + BLOCKING_GRACE_MS;
    try {
      const result = await run({ ...params, ctx, timeout });
      this.#answered();
      if (Array.isArray(result)) {
        return [result[0] as ResponseLike, result[1]];
      }
      return [{ statusCode: 200, headers: {} }, result];
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      // An error status is an answer too: the agent is reachable.
      if ((error as PapiError).response) this.#answered();
      else this.#unreachable = true;
      throw this.#error(error as PapiError);
    } finally {
      signal?.removeEventListener("abort", cancel);
    }
  }

  #answered(): void {
    if (!this.#unreachable) return;
    this.#unreachable = false;
    this.emit({
      type: "reconnect",
      server: this.#options.origin.replace(/^https?:\/\//, ""),
    });
  }

  #error(error: PapiError): Error {
    const response = error.response;
    if (!response) {
      const what = error.isTimeout
        ? `no answer within ${this.#options.requestTimeout} ms`
        : error.message.replace(/^consul: [\w.]+: /, "");
      return new ConsulHttpError(
        `consul at ${this.#options.origin} did not answer: ${what}`,
        undefined,
        { cause: error },
      );
    }
    const status = response.statusCode;
    const body = bodyText(response.body);
    if (status === 403 && /ACL not found/i.test(body)) {
      return new InvalidConfigurationError(
        "Consul does not know the ACL token (ACL not found)",
        { cause: error },
      );
    }
    if (/No path to datacenter/i.test(body)) {
      return new InvalidConfigurationError(
        `Consul has no datacenter ${JSON.stringify(this.#options.datacenter)}`,
        { cause: error },
      );
    }
    if (/Invalid Session TTL/i.test(body)) {
      return new InvalidConfigurationError(
        `Consul refused a session TTL (${body.trim()}): set sessionTtlMin to the agent's session_ttl_min`,
        { cause: error },
      );
    }
    if (/Namespaces? (is|are) a Consul Enterprise feature/i.test(body)) {
      return new InvalidConfigurationError(
        "Namespaces need Consul Enterprise; this agent refuses them",
        { cause: error },
      );
    }
    return new ConsulHttpError(
      `consul answered ${status}${body ? `: ${body.trim()}` : ""}`,
      status,
      { cause: response },
    );
  }
}

interface RawEntry {
  Key: string;
  Value: string | null;
  Flags: number;
  Session?: string;
  LockIndex: number;
  CreateIndex: number;
  ModifyIndex: number;
}

function decodeEntry(raw: RawEntry): ConsulEntry {
  return {
    ...raw,
    Value: raw.Value
      ? Uint8Array.from(atob(raw.Value), (c) => c.charCodeAt(0))
      : null,
  };
}

function readParams(options: ReadCallOptions): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  if (options.index !== undefined) {
    params.index = String(options.index);
    if (options.waitMs !== undefined) {
      params.wait = `${Math.ceil(options.waitMs / 1000)}s`;
    }
  } else if (options.consistent === true) params.consistent = true;
  else if (options.consistent === false) params.stale = true;
  return params;
}

function index(res: ResponseLike): bigint {
  const header = res.headers["x-consul-index"];
  const text = Array.isArray(header) ? header[0] : header;
  return text && /^\d+$/.test(text) ? BigInt(text) : 0n;
}

function bodyText(body: unknown): string {
  if (body === undefined || body === null) return "";
  if (typeof body === "string") return body;
  if (body instanceof Uint8Array) return new TextDecoder().decode(body);
  try {
    return JSON.stringify(body);
  } catch {
    return String(body);
  }
}
