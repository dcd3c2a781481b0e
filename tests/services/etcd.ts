/**
 * A real etcd (v3 API) on loopback (Debian packages `etcd-server`,
 * `etcd-client`): one member, a member with TLS, a cluster of several
 * members, certificates made with openssl, and `etcdctl`.
 *
 * @module
 */

import {
  makeCertificates as makeTestCertificates,
  type TestCertificates,
} from "./certificates.ts";
import { rmSync } from "node:fs";
import { join } from "node:path";
import {
  ensureCommand,
  freePort,
  run,
  runAsync,
  type Service,
  startProcess,
  tempDir,
  waitUntil,
} from "./process.ts";
import { startTcpProxy, type TcpProxy } from "./tcp_proxy.ts";

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

/**
 * etcd timings for tests of failures: a heartbeat every 50 ms and elections
 * after 500 ms (defaults 100 ms and 1 s), so a new leader comes within about
 * a second. The minimum lease TTL falls to 1 s with them.
 */
export const FAST_ELECTIONS = [
  "--heartbeat-interval",
  "50",
  "--election-timeout",
  "500",
];

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

/** Runs `etcdctl` (API v3) against `endpoints`; returns its output. */
export function etcdctl(
  endpoints: string | string[],
  args: string[],
  options: { tls?: EtcdCertificates; user?: string } = {},
): string {
  const flags = [
    `--endpoints=${[endpoints].flat().join(",")}`,
    "--command-timeout=5s",
  ];
  if (options.tls) {
    flags.push(
      `--cacert=${options.tls.files.ca}`,
      `--cert=${options.tls.files.clientCert}`,
      `--key=${options.tls.files.clientKey}`,
    );
  }
  if (options.user) flags.push(`--user=${options.user}`);
  return run("etcdctl", [...flags, ...args], {
    env: { ETCDCTL_API: "3" },
    timeoutMs: 20_000,
  });
}

/** The certificates of etcd's TLS tests. */
export type EtcdCertificates = TestCertificates;

/**
 * Makes a CA, a server certificate for 127.0.0.1 and localhost, and a client
 * certificate (CN `root`, which etcd maps to that user when auth is on).
 */
export function makeCertificates(): EtcdCertificates {
  return makeTestCertificates({ clientName: "root" });
}

/** Starts a member that speaks only TLS and requires client certificates. */
export function startEtcdTls(certs: EtcdCertificates): Promise<EtcdService> {
  return startEtcd({
    scheme: "https",
    args: [
      "--cert-file",
      certs.files.serverCert,
      "--key-file",
      certs.files.serverKey,
      "--trusted-ca-file",
      certs.files.ca,
      "--client-cert-auth",
    ],
  });
}

/** A member of a {@linkcode EtcdCluster}. */
export interface EtcdMember {
  /** Its name: `m0`, `m1`, ... */
  readonly name: string;
  /** Its client port. */
  readonly port: number;
  /** `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  /** Whether it runs (not killed). */
  readonly running: boolean;
  /** Kills it at once (SIGKILL), keeping its data. */
  kill(): Promise<void>;
  /** Starts it again on its data. */
  restart(): Promise<void>;
  /** Freezes it (SIGSTOP) until {@linkcode resume}. */
  pause(): void;
  /** Lets it run again (SIGCONT). */
  resume(): void;
}

/** A running etcd cluster on loopback. */
export interface EtcdCluster {
  readonly members: EtcdMember[];
  /** `etcd://127.0.0.1:P1,127.0.0.1:P2,...`. */
  readonly url: string;
  /** Every member's `http://` endpoint. */
  readonly endpoints: string[];
  /** The index of the member that leads now (asked of a running member). */
  leader(): Promise<number>;
  /**
   * Lets nothing reach member `i` from the other members (its advertised
   * peer address, a proxy, black-holes what the others send and the
   * connections they open) until {@linkcode heal}: a one-way partition, as
   * the links it dials itself still carry. Needs `peerLinks`.
   */
  cutOff(i: number): void;
  /** Undoes {@linkcode cutOff}. */
  heal(): Promise<void>;
  /** Stops every member and removes their data. */
  stop(): Promise<void>;
}

/**
 * Starts `size` members that form one cluster, with fast elections. With
 * `peerLinks`, each member advertises a proxy in front of its peer port, so
 * {@linkcode EtcdCluster.cutOff} can stop what the others send it.
 */
export async function startEtcdCluster(
  size = 3,
  options: { peerLinks?: boolean } = {},
): Promise<EtcdCluster> {
  ensureCommand("etcd", ["etcd-server", "etcd-client"]);
  const root = tempDir("etcd-cluster");
  const ports = await Promise.all(
    Array.from({ length: size }, async () => ({
      client: await freePort(),
      peer: await freePort(),
    })),
  );
  const names = ports.map((_, i) => `m${i}`);
  const proxies: TcpProxy[] = options.peerLinks
    ? await Promise.all(ports.map((p) => startTcpProxy(p.peer)))
    : [];
  // The peer address the others reach member i at.
  const advertised = (i: number) =>
    `http://127.0.0.1:${proxies[i]?.port ?? ports[i].peer}`;
  const initialCluster = names.map((name, i) => `${name}=${advertised(i)}`)
    .join(",");
  const services: Array<Service | undefined> = [];
  const spawnMember = (i: number) => {
    const endpoint = `http://127.0.0.1:${ports[i].client}`;
    const peer = `http://127.0.0.1:${ports[i].peer}`;
    return startProcess({
      name: `etcd-${names[i]}`,
      command: "etcd",
      args: [
        "--name",
        names[i],
        "--data-dir",
        join(root, names[i]),
        "--listen-client-urls",
        endpoint,
        "--advertise-client-urls",
        endpoint,
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        advertised(i),
        "--initial-cluster",
        initialCluster,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        root,
        ...FAST_ELECTIONS,
      ],
      dir: root,
      port: ports[i].client,
      keepDir: true,
    });
  };
  // Members wait for each other to form a quorum: start them together.
  const started = await Promise.allSettled(names.map((_, i) => spawnMember(i)));
  started.forEach((result, i) => {
    if (result.status === "fulfilled") services[i] = result.value;
  });
  const failed = started.find((result) => result.status === "rejected");
  const endpoints = ports.map((p) => `http://127.0.0.1:${p.client}`);
  const stop = async () => {
    await Promise.all(services.map((service) => service?.stop()));
    await Promise.allSettled(proxies.map((proxy) => proxy.close()));
    rmSync(root, { recursive: true, force: true });
  };
  if (failed) {
    await stop();
    throw (failed as PromiseRejectedResult).reason;
  }
  const members: EtcdMember[] = names.map((name, i) => ({
    name,
    port: ports[i].client,
    endpoint: endpoints[i],
    get running() {
      return services[i] !== undefined;
    },
    kill: async () => {
      await services[i]?.kill();
      services[i] = undefined;
    },
    restart: async () => {
      if (services[i]) return;
      services[i] = await spawnMember(i);
    },
    pause: () => services[i]?.pause(),
    resume: () => services[i]?.resume(),
  }));
  // Asked by a child process that this one does not wait for: with
  // peerLinks the proxies between members run in this process.
  const leader = async () => {
    const alive = members.filter((m) => m.running).map((m) => m.endpoint);
    // The table form: member ids overflow JSON numbers.
    const status = await runAsync("etcdctl", [
      `--endpoints=${alive.join(",")}`,
      "--command-timeout=5s",
      "endpoint",
      "status",
      "-w",
      "simple",
    ], { timeoutMs: 20_000 });
    const rows = status.trim().split("\n").map((line) => line.split(", "));
    // Columns: endpoint, id, version, db size, is leader, ...
    const leading = rows.find((row) => row[4] === "true");
    if (!leading) throw new Error("no member leads");
    return endpoints.indexOf(leading[0]);
  };
  await waitUntil("a leader", 10_000, async () => {
    await leader();
    return true;
  });
  return {
    members,
    url: `etcd://${ports.map((p) => `127.0.0.1:${p.client}`).join(",")}`,
    endpoints,
    leader,
    cutOff: (i) => {
      if (!proxies[i]) {
        throw new Error("cutOff needs a cluster started with peerLinks");
      }
      proxies[i].partition();
    },
    heal: async () => {
      await Promise.all(proxies.map((proxy) => proxy.resume()));
    },
    stop,
  };
}
