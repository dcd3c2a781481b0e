/**
 * Store URLs: `scheme://user:pass@host1:port,host2:port/path?param=value`,
 * or an opaque form such as `file:./data.vkr` and `memory:name`.
 *
 * The WHATWG `URL` parser cannot read several hosts in one authority, which
 * etcd, ZooKeeper and Consul URLs need, so this module parses them itself.
 *
 * @module
 */

import { InvalidConfigurationError } from "./errors.ts";

/** A parsed store URL, handed to a backend's factory as `config.url`. */
export interface StoreUrl {
  /** The scheme without `:`, lower case: `"redis"`, `"zk"`, `"file"`. */
  scheme: string;
  /** The hosts of the authority (`host:port` each), or `[]`. */
  hosts: string[];
  /** The user name of the authority, decoded. */
  username?: string;
  /** The password of the authority, decoded. */
  password?: string;
  /**
   * The path, decoded: after the authority, or all of an opaque URL
   * (`./data.vkr`).
   */
  path: string;
  /** The query parameters, decoded. */
  params: Record<string, string>;
}

/**
 * Parses a store URL.
 *
 * @param url The URL.
 * @returns Its parts.
 *
 * @example
 * ```ts
 * import { parseStoreUrl } from "./url.ts";
 *
 * const url = parseStoreUrl("etcd://h1:2379,h2:2379");
 * console.log(url.hosts); // ["h1:2379", "h2:2379"]
 * ```
 */
export function parseStoreUrl(url: string | URL): StoreUrl {
  const text = url instanceof URL ? url.href : url;
  if (typeof text !== "string") {
    throw new InvalidConfigurationError(
      "A store URL must be a string or a URL",
    );
  }
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(text);
  if (!match) {
    throw new InvalidConfigurationError(
      `Store URL ${JSON.stringify(text)} has no scheme (like "redis://")`,
    );
  }
  const scheme = match[1].toLowerCase();
  let rest = match[2];
  const hashAt = rest.indexOf("#");
  if (hashAt >= 0) rest = rest.slice(0, hashAt);
  const params: Record<string, string> = {};
  const queryAt = rest.indexOf("?");
  if (queryAt >= 0) {
    for (const [name, value] of new URLSearchParams(rest.slice(queryAt + 1))) {
      params[name] = value;
    }
    rest = rest.slice(0, queryAt);
  }
  const result: StoreUrl = { scheme, hosts: [], path: rest, params };
  if (rest.startsWith("//")) {
    const pathAt = rest.indexOf("/", 2);
    let authority = pathAt < 0 ? rest.slice(2) : rest.slice(2, pathAt);
    result.path = pathAt < 0 ? "" : decode(rest.slice(pathAt));
    const userAt = authority.lastIndexOf("@");
    if (userAt >= 0) {
      const userInfo = authority.slice(0, userAt);
      authority = authority.slice(userAt + 1);
      const colon = userInfo.indexOf(":");
      result.username = decode(colon < 0 ? userInfo : userInfo.slice(0, colon));
      if (colon >= 0) result.password = decode(userInfo.slice(colon + 1));
    }
    result.hosts = authority === ""
      ? []
      : authority.split(",").map((host) => host.trim());
    if (result.hosts.some((host) => host === "")) {
      throw new InvalidConfigurationError(
        `Store URL ${JSON.stringify(text)} has an empty host`,
      );
    }
  } else {
    result.path = decode(rest);
  }
  return result;
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new InvalidConfigurationError(
      `Store URL part ${JSON.stringify(part)} is not valid percent-encoding`,
    );
  }
}

/**
 * A URL's path as a setting (a key prefix, a chroot, a database number):
 * without its leading and trailing `/`, and `undefined` when that leaves
 * nothing.
 *
 * @param path The URL's decoded path.
 * @returns The setting, or `undefined`.
 *
 * @example
 * ```ts
 * import { pathSetting } from "./url.ts";
 *
 * console.log(pathSetting("/app/")); // "app"
 * console.log(pathSetting("/")); // undefined
 * ```
 */
export function pathSetting(path: string): string | undefined {
  const trimmed = path.replace(/^\/+|\/+$/g, "");
  return trimmed === "" ? undefined : trimmed;
}

/**
 * The one endpoint of a backend that takes at most one (a database name, a
 * file's path, a table), or `undefined` for none.
 *
 * @param backend The backend's name, for the message.
 * @param endpoints The endpoints, from a URL's hosts or `newStore`.
 * @returns The endpoint.
 *
 * @example
 * ```ts
 * import { oneEndpoint } from "./url.ts";
 *
 * console.log(oneEndpoint("file", ["./data.db"])); // "./data.db"
 * ```
 */
export function oneEndpoint(
  backend: string,
  endpoints: readonly string[],
): string | undefined {
  if (endpoints.length > 1) {
    throw new InvalidConfigurationError(
      `The ${backend} backend takes one endpoint, not ${endpoints.length}`,
    );
  }
  return endpoints[0];
}
