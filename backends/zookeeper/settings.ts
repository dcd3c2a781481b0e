/**
 * The ZooKeeper backend's own settings: the schema its options interface,
 * its checks, its defaults and its docs table come from.
 *
 * @module
 */

import type { SettingsSchema } from "../../core/config.ts";
import { DEFAULT_LOCK_TTL_MS } from "../../core/lock.ts";
import type { ZookeeperAcl } from "./mod.ts";

/** ZooKeeper's client port when a host names none. */
export const DEFAULT_PORT = 2181;

/**
 * The session timeout asked for when none is given: the contract's default
 * lock ttl, so locks taken with the default ttl live in the store's own
 * session. The server bounds it to 2–20 of its ticks by default.
 */
export const DEFAULT_SESSION_TIMEOUT_MS = DEFAULT_LOCK_TTL_MS;

/**
 * The largest request ZooKeeper accepts, `jute.maxbuffer`: 0xfffff bytes
 * unless the server sets the system property otherwise.
 */
export const DEFAULT_MAX_BUFFER_SIZE = 0xfffff;

/**
 * The largest reply taken when none is given: 64 MiB. ZooKeeper sends a
 * node's children in one reply whatever its `jute.maxbuffer` (100,000
 * eight-character names are 1.2 MB), so replies get their own bound, a guard
 * against a runaway reply rather than the server's request limit.
 */
export const DEFAULT_MAX_REPLY_BYTES = 64 * 1024 * 1024;

/** ZooKeeper's default `tickTime`, in milliseconds. */
export const DEFAULT_TICK_TIME_MS = 2_000;

const isHostList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((host) => typeof host === "string");

// A preset's name (a URL gives a string), or the entries (checked later).
const isAcl = (value: unknown): value is string | ZookeeperAcl[] =>
  typeof value === "string" || Array.isArray(value);

/** The settings of a ZooKeeper store besides the common ones. */
export const ZOOKEEPER_SETTINGS = {
  endpoints: {
    kind: "value",
    type: "string[]",
    expected: 'an array of "host:port" strings',
    check: isHostList,
    defaultDoc: '`["127.0.0.1:2181"]`',
    doc: "The ensemble's servers, `host:port` each.",
  },
  chroot: {
    kind: "string",
    defaultDoc: '`"/"`, the whole tree',
    doc:
      'The znode every key lives under, a ZooKeeper path such as `"/myapp"` (a URL\'s path); created when first needed.',
  },
  sessionTimeout: {
    kind: "number",
    timer: true,
    default: DEFAULT_SESSION_TIMEOUT_MS,
    doc:
      "The session timeout to ask for, in ms. The server bounds it (2 to 20 ticks by default). Locks taken with this ttl live in the store's session.",
  },
  acl: {
    kind: "value",
    type: '"open" | "creator" | "creator-read" | ZookeeperAcl[]',
    expected: "a preset or a non-empty list of { perms, scheme, id }",
    check: isAcl,
    defaultDoc: '`"open"`, `"creator"` with credentials',
    doc:
      'The ACL of the nodes the store creates: `"open"` (anyone may do anything), `"creator"` (only the authenticated user), `"creator-read"` (the user may do anything, anyone may read), or the entries themselves.',
  },
  maxBufferSize: {
    kind: "number",
    integer: true,
    default: DEFAULT_MAX_BUFFER_SIZE,
    doc:
      "The servers' `jute.maxbuffer`: the largest request they accept, in bytes. Requests are checked against it before sending.",
  },
  maxReplyBytes: {
    kind: "number",
    integer: true,
    default: DEFAULT_MAX_REPLY_BYTES,
    doc:
      "The largest reply the store takes, in bytes, at least `maxBufferSize`. ZooKeeper sends all of a node's children in one reply, whatever its `jute.maxbuffer`; a larger reply fails its call with a `StoreError` (the connection stays up).",
  },
  tickTime: {
    kind: "number",
    timer: true,
    default: DEFAULT_TICK_TIME_MS,
    doc:
      "The servers' `tickTime` in ms. ZooKeeper expires sessions on tick boundaries, so a dead holder's lock passes on up to a tick after its ttl: it sets `limits.ttlGranularityMs`.",
  },
} as const satisfies SettingsSchema;
