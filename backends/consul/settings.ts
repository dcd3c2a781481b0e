/**
 * The Consul backend's own settings: the schema its options interface, its
 * checks, its defaults and its docs table come from.
 *
 * @module
 */

import type { SettingsSchema } from "../../core/config.ts";
import { DEFAULT_SESSION_TTL_MIN_MS, SESSION_TTL_MAX_MS } from "./sessions.ts";

/** Consul's HTTP port (`ports.http`). */
export const HTTP_PORT = 8500;
/** The port Consul's docs use for HTTPS (`ports.https`). */
export const HTTPS_PORT = 8501;

const isOneHost = (value: unknown): value is string[] =>
  Array.isArray(value) && value.length <= 1 &&
  value.every((host) => typeof host === "string");

/** The settings of a Consul store besides the common ones. */
export const CONSUL_SETTINGS = {
  endpoints: {
    kind: "value",
    type: "string[]",
    expected: 'a list of one "host:port": a store talks to one agent',
    check: isOneHost,
    defaultDoc: '`["127.0.0.1:8500"]` (`:8501` with TLS)',
    doc:
      "The agent's HTTP address, `host:port`, as a list of one (the servers of every backend are `endpoints`).",
  },
  token: {
    kind: "string",
    defaultDoc: "none",
    doc: "The ACL token, sent as `X-Consul-Token`.",
  },
  datacenter: {
    kind: "string",
    defaultDoc: "the agent's",
    doc:
      "The datacenter to use (`?dc=` on every request); an unknown one fails to open.",
  },
  namespace: {
    kind: "string",
    defaultDoc: "the token's",
    doc:
      "The Consul Enterprise namespace (`X-Consul-Namespace`, and `Namespace` in transactions).",
  },
  sessionTtlMin: {
    kind: "number",
    timer: true,
    max: SESSION_TTL_MAX_MS,
    default: DEFAULT_SESSION_TTL_MIN_MS,
    doc:
      "The agent's `session_ttl_min` in ms; it must match the agent. Keys with a TTL and locks use sessions, whose TTL cannot be shorter; it also bounds how late a dead holder's lock passes on, so `limits.ttlGranularityMs` is derived from it.",
  },
  watchWait: {
    kind: "number",
    timer: true,
    min: 1_000,
    max: 600_000,
    default: 60_000,
    doc:
      "How long one blocking query of a watch or a waiting lock waits, in ms (Consul caps it at 10 minutes; shorter than a second is polling in disguise).",
  },
  requestTimeout: {
    kind: "number",
    timer: true,
    default: 30_000,
    doc: "How long any request other than a blocking query may take, in ms.",
  },
  retryTimeout: {
    kind: "number",
    timer: true,
    default: 30_000,
    doc:
      "How long a watch or a waiting lock retries while Consul fails before it errors with a `StoreError`, in ms: long enough to ride out an agent restart or a leader election.",
  },
} as const satisfies SettingsSchema;
