/**
 * A real `redis-server` on loopback (Debian package `redis-server`).
 *
 * @module
 */

import {
  ensureCommand,
  freePort,
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
  });
  return { ...service, url: `redis://127.0.0.1:${port}` };
}
