/**
 * Server addresses as every network backend takes them: `host:port`,
 * `[v6]:port`, or a bare `host` (or `[v6]`) that gets the backend's port.
 *
 * @module
 */

import { InvalidConfigurationError } from "./errors.ts";

/** A server's host and port. */
export interface HostPort {
  /** A name or an address; an IPv6 address without its brackets. */
  readonly host: string;
  /** From 1 to 65535. */
  readonly port: number;
}

/** The largest TCP port. */
const MAX_PORT = 65_535;

// `[v6]` or a host without `:`, then an optional `:digits`. A host holds no
// space, `/`, `?`, `#` or `@` (those would be a URL's other parts).
const HOST_PORT = /^(?:\[([0-9A-Za-z:.%]+)\]|([^\s:[\]/?#@]+))(?::(\d*))?$/;

/**
 * Parses a server's address.
 *
 * @param backend The backend's name, for messages.
 * @param text `host:port`, `[v6]:port`, `host` or `[v6]`.
 * @param defaultPort The port when `text` names none.
 * @returns The host (without brackets) and port.
 * @throws {InvalidConfigurationError} When it is none of those forms, or the
 * port is not from 1 to 65535.
 *
 * @example
 * ```ts
 * import { parseHostPort } from "./host_port.ts";
 *
 * console.log(parseHostPort("redis", "[::1]:6380", 6379)); // { host: "::1", port: 6380 }
 * console.log(parseHostPort("redis", "cache.internal", 6379)); // { host: "cache.internal", port: 6379 }
 * ```
 */
export function parseHostPort(
  backend: string,
  text: string,
  defaultPort: number,
): HostPort {
  const match = typeof text === "string" ? HOST_PORT.exec(text.trim()) : null;
  if (!match || match[3] === "") {
    const hint = typeof text === "string" && /^[^[]*:.*:/.test(text)
      ? " (an IPv6 address goes in brackets: [::1]:port)"
      : "";
    throw new InvalidConfigurationError(
      `The ${backend} endpoint ${
        JSON.stringify(text)
      } is not host, host:port or [ipv6]:port${hint}`,
    );
  }
  const port = match[3] === undefined ? defaultPort : Number(match[3]);
  if (!(Number.isInteger(port) && port >= 1 && port <= MAX_PORT)) {
    throw new InvalidConfigurationError(
      `The ${backend} endpoint ${
        JSON.stringify(text)
      } has port ${port}: a port is from 1 to ${MAX_PORT}`,
    );
  }
  return { host: match[1] ?? match[2], port };
}

/**
 * Writes an address back as `host:port`, with an IPv6 host in brackets.
 *
 * @param address The host and port.
 * @returns `host:port` or `[v6]:port`.
 *
 * @example
 * ```ts
 * import { formatHostPort } from "./host_port.ts";
 *
 * console.log(formatHostPort({ host: "::1", port: 2379 })); // "[::1]:2379"
 * ```
 */
export function formatHostPort(address: HostPort): string {
  return address.host.includes(":")
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}
