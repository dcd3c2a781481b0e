/**
 * A real etcd (v3 API) on loopback (Debian packages `etcd-server`,
 * `etcd-client`).
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

/** A running etcd member. */
export interface EtcdService extends Service {
  /** `etcd://127.0.0.1:PORT`. */
  readonly url: string;
  /** `http://127.0.0.1:PORT`, for etcdctl. */
  readonly endpoint: string;
}

/** Options of {@linkcode startEtcd}. */
export interface EtcdOptions {
  /** More `etcd` arguments (TLS, auth...). */
  args?: string[];
  /** The client URL scheme (`https` with TLS arguments). */
  scheme?: "http" | "https";
  /** Readiness check beyond an open port. */
  ready?: () => Promise<boolean>;
}

/** Starts a single-member etcd on 127.0.0.1. */
export async function startEtcd(
  options: EtcdOptions = {},
): Promise<EtcdService> {
  ensureCommand("etcd", ["etcd-server", "etcd-client"]);
  const port = await freePort();
  const peerPort = await freePort();
  const dir = tempDir("etcd");
  const scheme = options.scheme ?? "http";
  const endpoint = `${scheme}://127.0.0.1:${port}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const service = await startProcess({
    name: "etcd",
    command: "etcd",
    args: [
      "--name",
      "default",
      "--data-dir",
      `${dir}/data`,
      "--listen-client-urls",
      endpoint,
      "--advertise-client-urls",
      endpoint,
      "--listen-peer-urls",
      peer,
      "--initial-advertise-peer-urls",
      peer,
      "--initial-cluster",
      `default=${peer}`,
      ...(options.args ?? []),
    ],
    dir,
    port,
    ready: options.ready ?? (async () => {
      if (scheme !== "http") return true;
      const response = await fetch(`${endpoint}/health`);
      return response.ok && (await response.json()).health === "true";
    }),
  });
  return { ...service, url: `etcd://127.0.0.1:${port}`, endpoint };
}
