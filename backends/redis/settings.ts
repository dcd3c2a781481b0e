/**
 * The Redis backend's own settings: the schema its options interface, its
 * checks, its defaults and its docs table come from.
 *
 * @module
 */

import type { SettingsSchema } from "../../core/config.ts";

/** How long a write waits for its replicas by default (`waitTimeout`). */
export const DEFAULT_WAIT_TIMEOUT_MS = 1_000;

const isHostList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((host) => typeof host === "string");

/** The settings of a Redis store besides the common ones. */
export const REDIS_SETTINGS = {
  url: {
    kind: "value",
    type: "string | URL",
    expected: "a redis:// or rediss:// URL",
    check: (value): value is string | URL =>
      typeof value === "string" || value instanceof URL,
    defaultDoc: "none",
    doc:
      "`RedisStore.connect()` only: the server as a URL, `redis://[user:password@]host[:port][/db]`, `rediss://...` for TLS, `redis://s1:26379,s2:26379/db?master=NAME` for Sentinel, or `redis://n1:7000,n2:7001` for the nodes of a Redis Cluster. Options given beside it win over its parts.",
  },
  endpoints: {
    kind: "value",
    type: "string[]",
    expected: 'an array of "host:port" strings',
    check: isHostList,
    defaultDoc: '`["127.0.0.1:6379"]`',
    doc:
      "`host:port` of the server, of the sentinels when `master` is set, or of nodes of a Redis Cluster (one node is enough: a server that is a cluster node is found to be one).",
  },
  db: {
    kind: "number",
    integer: true,
    min: 0,
    default: 0,
    doc: "The database number (a URL's path; a cluster has only 0).",
  },
  master: {
    kind: "string",
    defaultDoc: "none",
    doc:
      "The Sentinel master name: the endpoints are then sentinels. Several endpoints without it are nodes of a Redis Cluster.",
  },
  sentinelUsername: {
    kind: "string",
    defaultDoc: "none",
    doc: "The user name for the sentinels, when they require one.",
  },
  sentinelPassword: {
    kind: "string",
    defaultDoc: "none",
    doc: "The password for the sentinels, when they require one.",
  },
  waitReplicas: {
    kind: "number",
    integer: true,
    defaultDoc: "off",
    doc:
      "Acknowledge a write only once this many replicas have it (Redis's `WAIT`, sent after each write): Redis replicates asynchronously, and a failover loses the writes a master acknowledged but had not passed on. A write the replicas do not confirm within `waitTimeout` fails with a `StoreError` saying so. Not on Redis Cluster.",
  },
  waitTimeout: {
    kind: "number",
    integer: true,
    timer: true,
    default: DEFAULT_WAIT_TIMEOUT_MS,
    doc: "How long a write waits for `waitReplicas`, in ms.",
  },
} as const satisfies SettingsSchema;
