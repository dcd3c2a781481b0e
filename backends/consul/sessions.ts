/**
 * Session TTLs: what Consul allows and how it enforces them
 * (https://developer.hashicorp.com/consul/api-docs/session#create-session).
 *
 * A session's TTL lies between the agent's `session_ttl_min` (10 s unless
 * configured) and 86400 s. Consul does not invalidate a session before its
 * TTL has passed since the last renewal, but "sessions may not be reaped
 * for up to double this TTL".
 *
 * @module
 */

import { InvalidArgumentError } from "../../core/errors.ts";

/** The longest session TTL Consul accepts (86400 s). */
export const SESSION_TTL_MAX_MS = 86_400_000;

/** The agent's `session_ttl_min` unless configured otherwise. */
export const DEFAULT_SESSION_TTL_MIN_MS = 10_000;

/** Consul may take up to this many TTLs to invalidate a session. */
export const SESSION_REAP_FACTOR = 2;

/**
 * Beyond the session TTLs, how long invalidating a session and telling the
 * waiters takes (a Raft write and a blocking query's answer).
 */
export const SESSION_REAP_MARGIN_MS = 500;

/** A duration in Consul's (Go's) notation, in seconds: `"10s"`, `"0.75s"`. */
export function goDuration(ms: number): string {
  return `${Math.ceil(ms) / 1000}s`;
}

/**
 * The session TTL behind a key put with `ttl`: never below what the agent
 * accepts, and never below `ttl`, so Consul cannot delete the key early.
 * Consul deletes it at the latest twice that after the put.
 */
export function keySessionTtl(ttl: number, ttlMin: number): number {
  // At most SESSION_TTL_MAX_MS: the store's limits.maxTtlMs.
  return Math.max(ttl, ttlMin);
}

/**
 * The session TTL behind a lock of `ttl`: half of it, so that Consul
 * invalidates a dead holder's session (up to twice its TTL after the last
 * renewal) within `ttl`, or within twice the agent's minimum for short
 * locks. The holder renews every third of `ttl`, before half of it passes.
 */
export function lockSessionTtl(ttl: number, ttlMin: number): number {
  if (ttl / 2 > SESSION_TTL_MAX_MS) {
    throw new InvalidArgumentError(
      `A Consul lock cannot outlive its holder by more than twice the longest session TTL, ${
        2 * SESSION_TTL_MAX_MS
      } ms; ttl ${ttl} is longer`,
    );
  }
  return Math.max(Math.ceil(ttl / 2), ttlMin);
}
