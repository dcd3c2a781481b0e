/**
 * Sessions: what they hold, their TTL and what happens when they end.
 *
 * Behaviours and where they are documented
 * (https://developer.hashicorp.com/consul/api-docs/session):
 * - defaults: the agent's node, the `serfHealth` check, `LockDelay` 15s,
 *   `Behavior` `release`; `Checks`/`NodeChecks` `[]` removes the check;
 * - `TTL` between the agent's `session_ttl_min` (10s by default,
 *   https://developer.hashicorp.com/consul/docs/agent/config/config-files#session_ttl_min)
 *   and 86400s; "sessions may not be reaped for up to double this TTL":
 *   the leader invalidates a session twice its TTL after its last renewal;
 * - renew extends the expiration by the TTL; an unknown session is a 404;
 * - destroy is idempotent; invalidation releases (`release`) or deletes
 *   (`delete`) the keys the session holds and applies its lock delay to them.
 *
 * @module
 */

import { formatDuration, parseDuration } from "./duration.ts";
import { field } from "./json.ts";

/** The longest session TTL Consul accepts (its `SessionTTLMax`, 24h). */
export const SESSION_TTL_MAX_MS = 86_400_000;

/** Consul invalidates a TTL session this many TTLs after its last renewal. */
export const SESSION_TTL_MULTIPLIER = 2;

/** The lock delay of a session that sets none. */
export const DEFAULT_LOCK_DELAY_MS = 15_000;

/** Consul caps lock delays at 60s (its `MaxLockDelay`). */
export const MAX_LOCK_DELAY_MS = 60_000;

/** A session as Consul reports it. */
export interface Session {
  ID: string;
  Name: string;
  Node: string;
  /** Nanoseconds, as Consul reports a `time.Duration`. */
  LockDelay: bigint;
  Behavior: "release" | "delete";
  TTL: string;
  NodeChecks: string[];
  ServiceChecks: null;
  CreateIndex: bigint;
  ModifyIndex: bigint;
  /** The namespace it lives in (the double's own bookkeeping). */
  ns: string;
}

/** A bad request body: Consul answers 400 or 500 with this message. */
export class SessionError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

/** What a session create body may hold, already parsed. */
export interface SessionRequest {
  name: string;
  node: string;
  lockDelayMs: number;
  behavior: "release" | "delete";
  ttlMs: number;
  ttl: string;
  checks: string[];
}

/**
 * Parses a `PUT /v1/session/create` body, with Consul's quirks: a numeric
 * `LockDelay` below 1000 is seconds, a larger one nanoseconds, a string is a
 * duration (agent/session_endpoint.go, FixupLockDelay).
 */
export function parseSessionRequest(
  body: unknown,
  defaults: { node: string; ttlMinMs: number },
): SessionRequest {
  const request: SessionRequest = {
    name: "",
    node: defaults.node,
    lockDelayMs: DEFAULT_LOCK_DELAY_MS,
    behavior: "release",
    ttlMs: 0,
    ttl: "",
    checks: ["serfHealth"],
  };
  if (body === undefined) return request;
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new SessionError("Request decode failed: not an object", 400);
  }
  const name = field(body, "Name");
  if (typeof name === "string") request.name = name;
  const node = field(body, "Node");
  if (typeof node === "string" && node !== "") request.node = node;
  const lockDelay = field(body, "LockDelay");
  if (typeof lockDelay === "string") {
    const ms = parseDuration(lockDelay);
    if (ms === undefined) {
      throw new SessionError(
        `Request decode failed: time: invalid duration "${lockDelay}"`,
        400,
      );
    }
    // Under 1000ns it is taken as seconds (a user's "5" meant 5s).
    request.lockDelayMs = ms * 1e6 < 1000 ? ms * 1e9 : ms;
  } else if (typeof lockDelay === "number") {
    request.lockDelayMs = lockDelay < 1000 ? lockDelay * 1000 : lockDelay / 1e6;
  }
  const behavior = field(body, "Behavior");
  if (behavior !== undefined && behavior !== "") {
    if (behavior !== "release" && behavior !== "delete") {
      throw new SessionError(`Invalid Behavior setting '${behavior}'`, 500);
    }
    request.behavior = behavior;
  }
  for (const name of ["Checks", "NodeChecks"]) {
    const checks = field(body, name);
    if (Array.isArray(checks)) request.checks = checks.map(String);
  }
  const ttl = field(body, "TTL");
  if (typeof ttl === "string" && ttl !== "") {
    const ms = parseDuration(ttl);
    if (ms === undefined) {
      throw new SessionError(`Session TTL '${ttl}' invalid`, 500);
    }
    if (ms !== 0 && (ms < defaults.ttlMinMs || ms > SESSION_TTL_MAX_MS)) {
      throw new SessionError(
        `Invalid Session TTL '${
          BigInt(Math.round(ms * 1e6))
        }', must be between [${formatDuration(defaults.ttlMinMs)}=${
          formatDuration(SESSION_TTL_MAX_MS)
        }]`,
        500,
      );
    }
    request.ttlMs = ms;
    request.ttl = ttl;
  }
  return request;
}

/** What a session's end does to the keys it holds; given by the state. */
export type Invalidate = (session: Session) => void;

/** Every session, with the timers of those that have a TTL. */
export class SessionTable {
  #sessions = new Map<string, Session>();
  #timers = new Map<string, ReturnType<typeof setTimeout>>();
  #ttls = new Map<string, number>();
  #expire: (id: string) => void;

  /** `expire` runs when a session's TTL runs out. */
  constructor(expire: (id: string) => void) {
    this.#expire = expire;
  }

  get(id: string): Session | undefined {
    return this.#sessions.get(id);
  }

  list(ns: string): Session[] {
    return [...this.#sessions.values()].filter((s) => s.ns === ns);
  }

  create(idx: bigint, ns: string, request: SessionRequest): Session {
    const session: Session = {
      ID: crypto.randomUUID(),
      Name: request.name,
      Node: request.node,
      LockDelay: BigInt(Math.round(request.lockDelayMs * 1e6)),
      Behavior: request.behavior,
      TTL: request.ttl,
      NodeChecks: request.checks,
      ServiceChecks: null,
      CreateIndex: idx,
      ModifyIndex: idx,
      ns,
    };
    this.#sessions.set(session.ID, session);
    if (request.ttlMs > 0) {
      this.#ttls.set(session.ID, request.ttlMs);
      this.#arm(session.ID);
    }
    return session;
  }

  /** Extends a TTL session; `undefined` when it does not exist. */
  renew(id: string): Session | undefined {
    const session = this.#sessions.get(id);
    if (session && this.#ttls.has(id)) this.#arm(id);
    return session;
  }

  /** Forgets a session (the caller applies its behaviour). */
  remove(id: string): Session | undefined {
    const session = this.#sessions.get(id);
    if (!session) return undefined;
    this.#sessions.delete(id);
    clearTimeout(this.#timers.get(id));
    this.#timers.delete(id);
    this.#ttls.delete(id);
    return session;
  }

  /** Every session (for snapshots). */
  dump(): Session[] {
    return [...this.#sessions.values()];
  }

  /**
   * Replaces the sessions with a snapshot's. As after a leader change, every
   * TTL starts again (https://github.com/hashicorp/consul/pull/524).
   */
  load(sessions: Session[]): void {
    this.close();
    for (const session of sessions) {
      this.#sessions.set(session.ID, session);
      const ttl = session.TTL ? parseDuration(session.TTL) ?? 0 : 0;
      if (ttl > 0) {
        this.#ttls.set(session.ID, ttl);
        this.#arm(session.ID);
      }
    }
  }

  /** Stops every timer. */
  close(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#ttls.clear();
    this.#sessions.clear();
  }

  #arm(id: string): void {
    clearTimeout(this.#timers.get(id));
    const ttl = this.#ttls.get(id)!;
    const timer = setTimeout(
      () => this.#expire(id),
      ttl * SESSION_TTL_MULTIPLIER,
    );
    (timer as { unref?(): void }).unref?.();
    this.#timers.set(id, timer);
  }
}
