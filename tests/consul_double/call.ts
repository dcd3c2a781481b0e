/**
 * One HTTP request to the double, parsed the way Consul's HTTP layer parses
 * every request: token, datacenter, namespace, consistency mode and
 * blocking-query parameters.
 *
 * Where each comes from:
 * - token in `X-Consul-Token`, `Authorization: Bearer` or (deprecated)
 *   `?token=`: https://developer.hashicorp.com/consul/api-docs/api-structure#authentication
 * - `?stale` / `?consistent` (not both), `X-Consul-KnownLeader`,
 *   `X-Consul-LastContact`, `X-Consul-Effective-Consistency`:
 *   https://developer.hashicorp.com/consul/api-docs/features/consistency
 * - `?index`, `?wait` (default 5m, at most 10m, plus up to wait/16):
 *   https://developer.hashicorp.com/consul/api-docs/features/blocking
 * - `?dc`: "No path to datacenter" for an unknown one:
 *   https://developer.hashicorp.com/consul/api-docs/kv#delete-key
 * - `?ns` / `X-Consul-Namespace`: Enterprise only
 *   (https://developer.hashicorp.com/consul/api-docs/kv#ns); Consul CE
 *   refuses them with a 400.
 *
 * @module
 */

import { parseDuration } from "./duration.ts";
import { stringify } from "./json.ts";

/** An error answer: a status and Consul's plain-text message. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** The double's answer to a request. */
export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string | Uint8Array;
}

/** Blocking-query parameters. */
export interface Blocking {
  /** `?index`: wait for a state past this index. */
  index: bigint;
  /** How long to wait at most, jitter included, in ms. */
  waitMs: number;
}

/** Consul's default blocking wait when `?wait` is not given. */
export const DEFAULT_WAIT_MS = 5 * 60_000;
/** Consul's longest blocking wait. */
export const MAX_WAIT_MS = 10 * 60_000;

/** A parsed request. */
export class Call {
  readonly method: string;
  /** The path after `/v1`, percent-decoded like Go's `URL.Path`. */
  readonly path: string;
  /** The path as sent, still encoded. */
  readonly rawPath: string;
  readonly query: URLSearchParams;
  readonly body: Uint8Array;
  readonly headers: Record<string, string | string[] | undefined>;
  /** The reply's headers, filled as the request is handled. */
  readonly replyHeaders: Record<string, string> = {};

  constructor(
    method: string,
    url: string,
    headers: Record<string, string | string[] | undefined>,
    body: Uint8Array,
  ) {
    this.method = method;
    const queryAt = url.indexOf("?");
    this.rawPath = queryAt < 0 ? url : url.slice(0, queryAt);
    this.query = new URLSearchParams(queryAt < 0 ? "" : url.slice(queryAt + 1));
    let path: string;
    try {
      path = decodeURIComponent(this.rawPath);
    } catch {
      throw new HttpError(400, `invalid URL escape "${this.rawPath}"`);
    }
    this.path = path.startsWith("/v1") ? path.slice(3) : path;
    this.headers = headers;
    this.body = body;
  }

  /** Whether a flag parameter is present (Consul checks presence only). */
  has(name: string): boolean {
    return this.query.has(name);
  }

  /** The ACL token of the request, if any. */
  get token(): string | undefined {
    const header = this.header("x-consul-token");
    if (header) return header;
    const auth = this.header("authorization");
    const bearer = auth && /^Bearer\s+(.+)$/i.exec(auth);
    if (bearer) return bearer[1].trim();
    return this.query.get("token") || undefined;
  }

  /** The namespace asked for by header or `?ns`, if any. */
  get namespace(): string | undefined {
    return this.header("x-consul-namespace") || this.query.get("ns") ||
      undefined;
  }

  header(name: string): string | undefined {
    const value = this.headers[name];
    return Array.isArray(value) ? value[0] : value;
  }

  /** The consistency mode; sets the reply's consistency headers. */
  consistency(): "stale" | "consistent" | "leader" {
    const stale = this.has("stale");
    const consistent = this.has("consistent");
    if (stale && consistent) {
      throw new HttpError(
        400,
        "Cannot specify ?stale with ?consistent, conflicting semantics.",
      );
    }
    const mode = stale ? "stale" : consistent ? "consistent" : "leader";
    this.replyHeaders["X-Consul-Effective-Consistency"] = mode;
    this.replyHeaders["X-Consul-KnownLeader"] = "true";
    this.replyHeaders["X-Consul-LastContact"] = "0";
    return mode;
  }

  /** The blocking parameters, or `undefined` without `?index`. */
  blocking(): Blocking | undefined {
    const index = this.query.get("index");
    if (index === null) return undefined;
    if (!/^\d+$/.test(index)) throw new HttpError(400, "Invalid index");
    let waitMs = DEFAULT_WAIT_MS;
    const wait = this.query.get("wait");
    if (wait !== null) {
      const ms = parseDuration(wait);
      if (ms === undefined || ms < 0) {
        throw new HttpError(400, "Invalid wait time");
      }
      waitMs = Math.min(ms, MAX_WAIT_MS);
    }
    // "A small random amount of additional wait time is added ... up to
    // wait / 16."
    waitMs += Math.random() * (waitMs / 16);
    return { index: BigInt(index), waitMs };
  }

  /** A JSON reply. */
  json(value: unknown, status = 200): Reply {
    return {
      status,
      headers: { ...this.replyHeaders, "Content-Type": "application/json" },
      body: stringify(value),
    };
  }

  /** A plain-text reply. */
  text(body: string | Uint8Array, status = 200): Reply {
    return {
      status,
      headers: { ...this.replyHeaders, "Content-Type": "text/plain" },
      body,
    };
  }

  /** A reply with an index, for blocking endpoints. */
  indexed(index: bigint): this {
    this.replyHeaders["X-Consul-Index"] = String(index);
    return this;
  }
}
