/**
 * The settings of a ZooKeeper store, checked and with their defaults.
 *
 * @module
 */

import { ConfigReader } from "../../core/config.ts";
import { InvalidConfigurationError } from "../../core/errors.ts";
import { formatHostPort, parseHostPort } from "../../core/host_port.ts";
import type { TlsConnectionOptions } from "../../core/tls.ts";
import { type Acl, Perms } from "./protocol.ts";
import { forbidden } from "./paths.ts";
import type { Credential, Server } from "./session.ts";
import { DEFAULT_PORT, ZOOKEEPER_SETTINGS } from "./settings.ts";

export {
  DEFAULT_MAX_BUFFER_SIZE,
  DEFAULT_PORT,
  DEFAULT_SESSION_TIMEOUT_MS,
  DEFAULT_TICK_TIME_MS,
} from "./settings.ts";

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
  maxReplyBytes: number;
  tickTime: number;
  /** For messages: `"zookeeper at h1:2181,h2:2181"`. */
  name: string;
}

const OPEN_ACL: Acl[] = [{ perms: Perms.all, scheme: "world", id: "anyone" }];
const CREATOR_ACL: Acl[] = [{ perms: Perms.all, scheme: "auth", id: "" }];
const READ_ACL: Acl[] = [{ perms: Perms.read, scheme: "world", id: "anyone" }];

/**
 * Reads a store's settings.
 *
 * @param hosts `host:port` of each server, unless `config.endpoints` gives
 * them (`[]`: 127.0.0.1:2181).
 * @param config The settings, URL parameters already merged in.
 */
export function readConfig(
  hosts: readonly string[],
  config: Record<string, unknown>,
): ZookeeperConfig {
  const reader = new ConfigReader("zookeeper", config, ZOOKEEPER_SETTINGS);
  const given = reader.get("endpoints") ?? hosts;
  const servers = (given.length ? given : [`127.0.0.1:${DEFAULT_PORT}`])
    .map((host) => parseHostPort("zookeeper", host, DEFAULT_PORT));
  const sessionTimeout = reader.get("sessionTimeout");
  const maxBufferSize = reader.get("maxBufferSize");
  const maxReplyBytes = reader.get("maxReplyBytes");
  if (maxReplyBytes < maxBufferSize) {
    throw new InvalidConfigurationError(
      `zookeeper: maxReplyBytes (${maxReplyBytes}) must be at least maxBufferSize (${maxBufferSize}): a value the servers accept must come back`,
    );
  }
  const tickTime = reader.get("tickTime");
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
    root: chroot(reader.get("chroot") ?? ""),
    sessionTimeout,
    connectTimeout: reader.connectTimeout,
    tls: reader.tls,
    credentials,
    acl: acl(
      reader.get("acl") as AclSetting | undefined,
      credentials.length > 0,
    ),
    maxBufferSize,
    maxReplyBytes,
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
