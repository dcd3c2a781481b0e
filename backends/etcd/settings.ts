/**
 * The etcd backend's own settings: the schema its options interface, its
 * checks, its defaults and its docs table come from.
 *
 * @module
 */

import type { SettingsSchema } from "../../core/config.ts";

/** etcd's client port (IANA). */
export const DEFAULT_PORT = 2379;

/**
 * How long one call may take, retries on other members included, when the
 * caller does not say: long enough to ride out an etcd leader election
 * (about a second with the default `--election-timeout` of 1 s).
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

const isHostList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.length > 0 &&
  value.every((host) => typeof host === "string" && host.trim() !== "");

/** The settings of an etcd store besides the common ones. */
export const ETCD_SETTINGS = {
  endpoints: {
    kind: "value",
    type: "string[]",
    expected: 'a non-empty array of "host:port" strings',
    check: isHostList,
    defaultDoc: '`["127.0.0.1:2379"]`',
    doc:
      "The members to talk to: `host:port` each, or `http://host:port` / `https://host:port`. Calls go to any of them and move to another when one fails.",
  },
  requestTimeout: {
    kind: "number",
    timer: true,
    default: DEFAULT_REQUEST_TIMEOUT_MS,
    doc:
      "How long one call may take, in ms, retries on other members included; past it the call fails with `NotReachableError`.",
  },
} as const satisfies SettingsSchema;
