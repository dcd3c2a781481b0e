/**
 * The settings of a ZooKeeper store, checked and with their defaults.
 *
 * @module
 */

import { ConfigReader } from "../../core/config.ts";
import { DEFAULT_LOCK_TTL_MS } from "../../core/lock.ts";
import { InvalidConfigurationError } from "../../core/errors.ts";
import { formatHostPort, parseHostPort } from "../../core/host_port.ts";
import type { TlsConnectionOptions } from "../../core/tls.ts";
import { type Acl, Perms } from "./protocol.ts";
import { forbidden } from "./paths.ts";
import type { Credential, Server } from "./session.ts";

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

/** ZooKeeper's default `tickTime`, in milliseconds. */
export const DEFAULT_TICK_TIME_MS = 2_000;

/** An ACL preset, or the entries themselves. */
export type AclSetting = "open" | "creator" | "creator-read" | Acl[];

/** The settings a store runs with. */
export interface ZookeeperConfig {
  servers: Server[];
  /** The root znode: `"/"` or the chroot path of the URL. */
  root: string;
  sessionTimeout: number;
  connectTimeout: number;
  tls: TlsConnectionOptions | undefined;
  credentials: Credential[];
  acl: Acl[];
  maxBufferSize: number;
  tickTime: number;
  /** For messages: `"zookeeper at h1:2181,h2:2181"`. */
  name: string;
}

/** The backend's own settings and their kinds. */
export const SETTINGS = {
  chroot: "string",
  sessionTimeout: "number",
  acl: "object",
  maxBufferSize: "number",
  tickTime: "number",
  endpoints: "object",
  hosts: "object",
} as const;

const OPEN_ACL: Acl[] = [{ perms: Perms.all, scheme: "world", id: "anyone" }];
const CREATOR_ACL: Acl[] = [{ perms: Perms.all, scheme: "auth", id: "" }];
const READ_ACL: Acl[] = [{ perms: Perms.read, scheme: "world", id: "anyone" }];

/**
 * Reads a store's settings.
 *
 * @param hosts `host:port` of each server (`[]`: 127.0.0.1:2181).
 * @param config The settings, URL parameters already merged in.
 */
export function readConfig(
  hosts: readonly string[],
  config: Record<string, unknown>,
): ZookeeperConfig {
  const reader = new ConfigReader("zookeeper", config, {
    ...SETTINGS,
    // A string from a URL parameter is accepted as a preset name.
    acl: typeof config.acl === "string" ? "string" : "object",
  });
  const servers = (hosts.length ? hosts : [`127.0.0.1:${DEFAULT_PORT}`])
    .map((host) => parseHostPort("zookeeper", host, DEFAULT_PORT));
  const sessionTimeout = reader.positive(
    "sessionTimeout",
    DEFAULT_SESSION_TIMEOUT_MS,
    { timer: true },
  );
  const maxBufferSize = reader.positive(
    "maxBufferSize",
    DEFAULT_MAX_BUFFER_SIZE,
    { integer: true },
  );
  const tickTime = reader.positive("tickTime", DEFAULT_TICK_TIME_MS, {
    timer: true,
  });
  const credentials: Credential[] = [];
  const { username, password } = reader;
  if (username !== undefined) {
    if (username.includes(":")) {
      throw new InvalidConfigurationError(
        "A ZooKeeper digest user name cannot contain ':'",
      );
    }
    credentials.push({
      scheme: "digest",
      auth: new TextEncoder().encode(`${username}:${password ?? ""}`),
    });
  } else if (password !== undefined) {
    throw new InvalidConfigurationError(
      "A ZooKeeper password needs a user name",
    );
  }
  return {
    servers,
    root: chroot(reader.string("chroot") ?? ""),
    sessionTimeout,
    connectTimeout: reader.connectTimeout,
    tls: reader.tls,
    credentials,
    acl: acl(config.acl as AclSetting | undefined, credentials.length > 0),
    maxBufferSize,
    tickTime,
    name: `zookeeper at ${servers.map(formatHostPort).join(",")}`,
  };
}

/**
 * Checks a chroot path: a ZooKeeper path (`/a/b`), as ZooKeeper would take
 * it; `""` and `"/"` are the root of the tree.
 */
function chroot(path: string): string {
  if (path === "" || path === "/") return "/";
  const trimmed = path.endsWith("/") ? path.slice(0, -1) : path;
  const valid = trimmed.startsWith("/") &&
    trimmed.slice(1).split("/").every((segment) =>
      segment !== "" && segment !== "." && segment !== ".." &&
      ![...segment].some((c) => c === "\0" || forbidden(c.charCodeAt(0)))
    );
  if (!valid) {
    throw new InvalidConfigurationError(
      `Invalid ZooKeeper chroot path ${JSON.stringify(path)}`,
    );
  }
  return trimmed;
}

function acl(setting: AclSetting | undefined, authenticated: boolean): Acl[] {
  const preset = setting ?? (authenticated ? "creator" : "open");
  if (Array.isArray(preset)) {
    if (
      preset.length === 0 ||
      !preset.every((entry) =>
        typeof entry === "object" && entry !== null &&
        Number.isInteger(entry.perms) && typeof entry.scheme === "string" &&
        typeof entry.id === "string"
      )
    ) {
      throw new InvalidConfigurationError(
        'The zookeeper setting "acl" must be a preset or a non-empty list of { perms, scheme, id }',
      );
    }
    return preset.map((entry) => ({ ...entry }));
  }
  switch (preset) {
    case "open":
      return OPEN_ACL;
    case "creator":
    case "creator-read":
      if (!authenticated) {
        throw new InvalidConfigurationError(
          `The zookeeper ACL "${preset}" needs a user name and password`,
        );
      }
      return preset === "creator" ? CREATOR_ACL : [...CREATOR_ACL, ...READ_ACL];
    default:
      throw new InvalidConfigurationError(
        `Unknown zookeeper ACL preset ${
          JSON.stringify(preset)
        } (known: open, creator, creator-read)`,
      );
  }
}
