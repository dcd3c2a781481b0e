/**
 * Consul for the tests: the real agent named by `CONSUL_HTTP_ADDR` when it
 * is set, otherwise the Consul API double (`tests/consul_double/`) on a
 * free loopback port, in this process, or in a child process for TLS.
 *
 * With a real agent the usual Consul CLI variables apply:
 * `CONSUL_HTTP_ADDR` (`host:port`, or `https://host:port`),
 * `CONSUL_HTTP_TOKEN`, `CONSUL_CACERT`, `CONSUL_CLIENT_CERT`,
 * `CONSUL_CLIENT_KEY`, and `CONSUL_SESSION_TTL_MIN` for the agent's
 * `session_ttl_min` when it is not the default 10s (`"1s"`, `"500ms"`).
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import {
  type ConsulDouble,
  type DoubleOptions,
  startConsulDouble,
} from "../consul_double/mod.ts";
import { freePort, startProcess, tempDir } from "./process.ts";

/** A Consul agent for a test. */
export interface ConsulService {
  /** `consul://127.0.0.1:PORT` or `consuls://...`. */
  readonly url: string;
  /** `host:port`. */
  readonly address: string;
  /** What a store needs to use it: token, TLS, the agent's session TTL minimum. */
  readonly options: Record<string, unknown>;
  /** Whether this is a real Consul (from `CONSUL_HTTP_ADDR`). */
  readonly real: boolean;
  /** The in-process double, for tests that restart it or break it. */
  readonly double?: ConsulDouble;
  /** Stops the double (a real agent is left alone). Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startConsul}. */
export interface ConsulServiceOptions extends DoubleOptions {
  /** Always start a double, even when `CONSUL_HTTP_ADDR` is set. */
  double?: boolean;
}

/**
 * The agent of `CONSUL_HTTP_ADDR`, or a fresh double started with
 * `options`.
 */
export async function startConsul(
  options: ConsulServiceOptions = {},
): Promise<ConsulService> {
  const real = process.env.CONSUL_HTTP_ADDR;
  if (real && !options.double) return realConsul(real);
  const { double: _double, ...doubleOptions } = options;
  if (doubleOptions.tls) return await childDouble(doubleOptions);
  const consul = await startConsulDouble(doubleOptions);
  return {
    url: `consul://${consul.address}`,
    address: consul.address,
    options: {
      sessionTtlMin: doubleOptions.sessionTtlMinMs ?? 10_000,
      ...(doubleOptions.aclToken ? { token: doubleOptions.aclToken } : {}),
    },
    real: false,
    double: consul,
    stop: () => consul.close(),
  };
}

function realConsul(addr: string): ConsulService {
  const env = process.env;
  const secure = addr.startsWith("https://") || env.CONSUL_HTTP_SSL === "true";
  const address = addr.replace(/^https?:\/\//, "");
  const options: Record<string, unknown> = {};
  if (env.CONSUL_HTTP_TOKEN) options.token = env.CONSUL_HTTP_TOKEN;
  if (env.CONSUL_SESSION_TTL_MIN) {
    options.sessionTtlMin = durationMs(env.CONSUL_SESSION_TTL_MIN);
  }
  if (secure) {
    const file = (name: string) =>
      env[name] ? readFileSync(env[name]!, "utf8") : undefined;
    options.tls = {
      ca: file("CONSUL_CACERT"),
      cert: file("CONSUL_CLIENT_CERT"),
      key: file("CONSUL_CLIENT_KEY"),
    };
  }
  return {
    url: `${secure ? "consuls" : "consul"}://${address}`,
    address,
    options,
    real: true,
    stop: () => Promise.resolve(),
  };
}

// Deno's `node:https` server does not verify client certificates, so a TLS
// double runs in Bun (a devDependency), whatever runtime runs the tests.
async function childDouble(options: DoubleOptions): Promise<ConsulService> {
  const port = await freePort();
  const bun = process.versions.bun
    ? process.execPath
    : join(process.cwd(), "node_modules", ".bin", "bun");
  const service = await startProcess({
    name: "consul-double",
    command: bun,
    args: [
      join(process.cwd(), "tests", "consul_double", "main.ts"),
      JSON.stringify({ ...options, port }),
    ],
    dir: tempDir("consul"),
    port,
  });
  return {
    url: `consuls://127.0.0.1:${port}`,
    address: `127.0.0.1:${port}`,
    options: {
      sessionTtlMin: options.sessionTtlMinMs ?? 10_000,
      ...(options.aclToken ? { token: options.aclToken } : {}),
    },
    real: false,
    stop: () => service.stop(),
  };
}

function durationMs(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!match) {
    throw new Error(`CONSUL_SESSION_TTL_MIN ${text} is not a duration`);
  }
  const unit = { ms: 1, s: 1_000, m: 60_000 }[match[2] ?? "ms"]!;
  return Number(match[1]) * unit;
}
