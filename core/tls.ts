/**
 * The `tls` setting of network backends, checked once for all of them and
 * turned into the options every Node TLS client takes (`node:tls`'s
 * `ConnectionOptions`, an `https.Agent`, ioredis, the `consul` client,
 * grpc-js after a conversion to bytes).
 *
 * A field the library does not know is an error, naming the known ones: a
 * typo like `rejectUnauthorised` must not be silently ignored, least of all
 * where it was meant to loosen or tighten certificate checks. This module
 * does not import `node:tls` (the core stays runtime-agnostic): it returns a
 * plain object that each backend hands to its client.
 *
 * @module
 */

import { InvalidConfigurationError } from "./errors.ts";
import type { TlsOptions } from "./types.ts";
import { describe } from "./values.ts";

/**
 * TLS options in the shape of `node:tls`'s `ConnectionOptions`: PEM as text,
 * the CAs as a list, and certificate checking always said.
 */
export interface TlsConnectionOptions {
  /** Certificate authorities to trust, PEM each; absent: the system's. */
  ca?: string[];
  /** The client certificate chain, PEM. */
  cert?: string;
  /** The client private key, PEM. */
  key?: string;
  /** The server name to send and verify; absent: the backend's default. */
  servername?: string;
  /** Whether the server's certificate must verify (`true` unless turned off). */
  rejectUnauthorized: boolean;
}

/** The fields of {@linkcode TlsOptions}, in the order messages list them. */
export const TLS_SETTINGS: readonly (keyof TlsOptions)[] = [
  "ca",
  "cert",
  "key",
  "servername",
  "rejectUnauthorized",
];

const decoder = new TextDecoder();

/**
 * Checks a backend's `tls` object and turns it into connection options.
 *
 * @param backend The backend's name, for messages.
 * @param tls The `tls` setting as given (an object; `true` is `{}`).
 * @returns The options to hand to the backend's TLS client.
 * @throws {InvalidConfigurationError} For an unknown field, or a field of the
 * wrong type.
 *
 * @example
 * ```ts
 * import { tlsConnectionOptions } from "./tls.ts";
 *
 * const options = tlsConnectionOptions("redis", { servername: "db.internal" });
 * console.log(options); // { rejectUnauthorized: true, servername: "db.internal" }
 * ```
 */
export function tlsConnectionOptions(
  backend: string,
  tls: TlsOptions | Record<string, unknown>,
): TlsConnectionOptions {
  if (typeof tls !== "object" || tls === null || Array.isArray(tls)) {
    throw new InvalidConfigurationError(
      `The ${backend} setting "tls" must be a boolean or an object, not ${
        describe(tls)
      }`,
    );
  }
  const given = tls as Record<string, unknown>;
  for (const name of Object.keys(given)) {
    if (!(TLS_SETTINGS as readonly string[]).includes(name)) {
      throw new InvalidConfigurationError(
        `Unknown ${backend} TLS setting ${JSON.stringify(name)} (known: ${
          TLS_SETTINGS.join(", ")
        })`,
      );
    }
  }
  const wrong = (name: string, wanted: string) =>
    new InvalidConfigurationError(
      `The ${backend} setting "tls.${name}" must be ${wanted}, not ${
        describe(given[name])
      }`,
    );
  const pem = (name: string, value: unknown, wanted: string): string => {
    if (typeof value === "string") return value;
    if (value instanceof Uint8Array) return decoder.decode(value);
    throw wrong(name, wanted);
  };
  const options: TlsConnectionOptions = {
    rejectUnauthorized: true,
  };
  const { ca, cert, key, servername, rejectUnauthorized } = given;
  if (ca !== undefined) {
    const wanted = "PEM text or bytes, or a list of them";
    options.ca = Array.isArray(ca)
      ? ca.map((item) => pem("ca", item, wanted))
      : [pem("ca", ca, wanted)];
  }
  if (cert !== undefined) options.cert = pem("cert", cert, "PEM text or bytes");
  if (key !== undefined) options.key = pem("key", key, "PEM text or bytes");
  if (servername !== undefined) {
    if (typeof servername !== "string" || servername === "") {
      throw wrong("servername", "a non-empty string");
    }
    options.servername = servername;
  }
  if (rejectUnauthorized !== undefined) {
    if (typeof rejectUnauthorized !== "boolean") {
      throw wrong("rejectUnauthorized", "a boolean");
    }
    options.rejectUnauthorized = rejectUnauthorized;
  }
  return options;
}
