/**
 * A real `redis-server` on loopback (Debian package `redis-server`), and
 * what the Redis tests build around it: `redis-cli`, Sentinel, and TLS
 * certificates made with openssl.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  ensureCommand,
  freePort,
  run,
  type Service,
  startProcess,
  tempDir,
} from "./process.ts";

/** A running Redis. */
export interface RedisService extends Service {
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
}

/** Options of {@linkcode startRedis}. */
export interface RedisOptions {
  /** More `redis-server` arguments (TLS, ACL files, `--replicaof`...). */
  args?: string[];
  /** Listen on this port (default: a free one). */
  port?: number;
  /** Use this directory (default: a fresh temp dir). */
  dir?: string;
  /** Readiness check beyond an open port. */
  ready?: () => Promise<boolean>;
  /** Keep the directory on stop, so a new server can start on its data. */
  keepDir?: boolean;
}

/** Starts `redis-server` without persistence on 127.0.0.1. */
export async function startRedis(
  options: RedisOptions = {},
): Promise<RedisService> {
  ensureCommand("redis-server", ["redis-server"]);
  const port = options.port ?? await freePort();
  const dir = options.dir ?? tempDir("redis");
  const service = await startProcess({
    name: "redis",
    command: "redis-server",
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--daemonize",
      "no",
      "--dir",
      dir,
      ...(options.args ?? []),
    ],
    dir,
    port,
    ready: options.ready,
    keepDir: options.keepDir,
  });
  return { ...service, url: `redis://127.0.0.1:${port}` };
}

/** Options of {@linkcode redisCli}. */
export interface RedisCliOptions {
  /** Log in as this user (with `password`). */
  user?: string;
  /** The password. */
  password?: string;
  /** The database number. */
  db?: number;
  /** Commands for redis-cli to read from its input, one a line. */
  input?: string;
}

/**
 * Runs `redis-cli --raw` against the server on `port` and returns what it
 * printed, as bytes (`--raw` prints a value's bytes as they are, then a
 * newline).
 */
export function redisCliBytes(
  port: number,
  args: string[],
  options: RedisCliOptions = {},
): Uint8Array {
  const auth = options.user === undefined
    ? []
    : ["--user", options.user, "--pass", options.password ?? ""];
  const db = options.db === undefined ? [] : ["-n", String(options.db)];
  const result = spawnSync("redis-cli", [
    "-h",
    "127.0.0.1",
    "-p",
    String(port),
    "--no-auth-warning",
    ...auth,
    ...db,
    "--raw",
    ...args,
  ], { timeout: 30_000, input: options.input });
  if (result.status !== 0) {
    throw new Error(
      `redis-cli ${args.join(" ")} failed: ${result.stderr}${result.stdout}`,
    );
  }
  return new Uint8Array(result.stdout);
}

/** Runs `redis-cli --raw` and returns its output as text, trimmed. */
export function redisCli(
  port: number,
  args: string[],
  options: RedisCliOptions = {},
): string {
  return new TextDecoder().decode(redisCliBytes(port, args, options)).trim();
}

/** A running Sentinel. */
export type SentinelService = Service;

/** Options of {@linkcode startSentinel}. */
export interface SentinelOptions {
  /** The name of the monitored master. */
  master: string;
  /** The master's port on 127.0.0.1. */
  masterPort: number;
  /** How many sentinels must agree that the master is down. */
  quorum: number;
  /** After how long without an answer a server is down. */
  downAfterMs: number;
  /** How long a failover may take before another is tried. */
  failoverTimeoutMs: number;
}

/** Starts a Sentinel (`redis-server --sentinel`) on 127.0.0.1. */
export async function startSentinel(
  options: SentinelOptions,
): Promise<SentinelService> {
  ensureCommand("redis-server", ["redis-server"]);
  const port = await freePort();
  const dir = tempDir("sentinel");
  const { master } = options;
  // Sentinel rewrites its configuration file, so each gets its own.
  const config = join(dir, "sentinel.conf");
  writeFileSync(
    config,
    [
      `port ${port}`,
      "bind 127.0.0.1",
      `dir ${dir}`,
      `sentinel monitor ${master} 127.0.0.1 ${options.masterPort} ${options.quorum}`,
      `sentinel down-after-milliseconds ${master} ${options.downAfterMs}`,
      `sentinel failover-timeout ${master} ${options.failoverTimeoutMs}`,
      `sentinel parallel-syncs ${master} 1`,
      "",
    ].join("\n"),
  );
  return await startProcess({
    name: "sentinel",
    command: "redis-server",
    args: [config, "--sentinel"],
    dir,
    port,
  });
}

/** PEM files of a test certificate authority, a server and a client. */
export interface Certificates {
  /** Their directory. */
  dir: string;
  /** Paths of the PEM files. */
  files: Record<
    "ca" | "serverCert" | "serverKey" | "clientCert" | "clientKey",
    string
  >;
  /** The CA certificate. */
  ca: string;
  /** The client certificate. */
  clientCert: string;
  /** The client's private key. */
  clientKey: string;
}

/**
 * Makes a CA, a server certificate for 127.0.0.1 and a client certificate,
 * all signed by that CA, with openssl, in a fresh directory.
 *
 * @param name Distinguishes the CA's subject (two calls make two CAs that
 * do not trust each other).
 */
export function makeCertificates(name = "valkeyrie test"): Certificates {
  ensureCommand("openssl", ["openssl"]);
  const dir = tempDir("certs");
  const path = (file: string) => join(dir, file);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
  const openssl = (...args: string[]) => run("openssl", args, { cwd: dir });
  openssl(
    "req",
    "-x509",
    "-new",
    "-nodes",
    ...ec,
    "-keyout",
    path("ca.key"),
    "-out",
    path("ca.crt"),
    "-days",
    "2",
    "-subj",
    `/CN=${name} CA`,
  );
  writeFileSync(
    path("server.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
  );
  writeFileSync(path("client.ext"), "extendedKeyUsage=clientAuth\n");
  for (const who of ["server", "client"]) {
    openssl(
      "req",
      "-new",
      "-nodes",
      ...ec,
      "-keyout",
      path(`${who}.key`),
      "-out",
      path(`${who}.csr`),
      "-subj",
      `/CN=${name} ${who}`,
    );
    openssl(
      "x509",
      "-req",
      "-in",
      path(`${who}.csr`),
      "-CA",
      path("ca.crt"),
      "-CAkey",
      path("ca.key"),
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      path(`${who}.ext`),
      "-out",
      path(`${who}.crt`),
    );
  }
  const files = {
    ca: path("ca.crt"),
    serverCert: path("server.crt"),
    serverKey: path("server.key"),
    clientCert: path("client.crt"),
    clientKey: path("client.key"),
  };
  return {
    dir,
    files,
    ca: readFileSync(files.ca, "utf8"),
    clientCert: readFileSync(files.clientCert, "utf8"),
    clientKey: readFileSync(files.clientKey, "utf8"),
  };
}
