/**
 * A real `redis-server` on loopback (Debian package `redis-server`), and
 * what the Redis tests build around it: `redis-cli`, Sentinel, Redis
 * Cluster, and TLS certificates made with openssl.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  ensureCommand,
  freePort,
  run,
  type Service,
  startProcess,
  tempDir,
  waitUntil,
} from "./process.ts";
import { startTcpProxy, type TcpProxy } from "./tcp_proxy.ts";

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

/** A master, its replica and three sentinels on loopback. */
export interface SentinelGroup {
  readonly master: RedisService;
  readonly replica: RedisService;
  readonly sentinels: readonly SentinelService[];
  /**
   * With `replicationProxy`, the proxy the replica replicates through: its
   * `partition()` keeps what the master sends from the replica (a stopped
   * replica would still find it in its socket buffer when it runs again).
   */
  readonly link?: TcpProxy;
  /** `redis://s1,s2,s3?master=NAME`: the sentinels, as a store opens them. */
  readonly url: string;
  /** Stops every server. */
  stop(): Promise<void>;
}

/**
 * A Redis server replicating the one on `masterPort`, once its link to it is
 * up.
 */
export async function startReplica(masterPort: number): Promise<RedisService> {
  const replica = await startRedis({
    args: ["--replicaof", "127.0.0.1", String(masterPort)],
  });
  try {
    await waitUntil(
      "replication",
      20_000,
      () =>
        redisCli(replica.port, ["INFO", "replication"]).includes(
          "master_link_status:up",
        ),
    );
    return replica;
  } catch (error) {
    await replica.stop();
    throw error;
  }
}

/**
 * Starts a master, a replica of it and three sentinels (quorum 2) watching
 * it, with Sentinel's timings given; resolves once the replica is in sync
 * and every sentinel knows the replica and the two other sentinels, so a
 * failover can happen.
 */
export async function startSentinelGroup(
  options: Omit<SentinelOptions, "masterPort" | "quorum"> & {
    replicationProxy?: boolean;
  },
): Promise<SentinelGroup> {
  const started: Service[] = [];
  let link: TcpProxy | undefined;
  const stop = async () => {
    await Promise.all(started.map((service) => service.stop()));
    await link?.close();
  };
  try {
    const master = await startRedis();
    started.push(master);
    if (options.replicationProxy) link = await startTcpProxy(master.port);
    const replica = await startReplica(link?.port ?? master.port);
    started.push(replica);
    const sentinels: SentinelService[] = [];
    for (let i = 0; i < 3; i++) {
      const sentinel = await startSentinel({
        master: options.master,
        downAfterMs: options.downAfterMs,
        failoverTimeoutMs: options.failoverTimeoutMs,
        masterPort: master.port,
        quorum: 2,
      });
      started.push(sentinel);
      sentinels.push(sentinel);
    }
    await waitUntil(
      "sentinel discovery",
      30_000,
      () =>
        sentinels.every((sentinel) =>
          redisCli(sentinel.port, ["SENTINEL", "REPLICAS", options.master])
            .includes(String(replica.port)) &&
          redisCli(sentinel.port, ["SENTINEL", "SENTINELS", options.master])
              .split("\n").filter((line) => line === "runid").length === 2
        ),
      200,
    );
    const url = `redis://${
      sentinels.map((s) => `127.0.0.1:${s.port}`).join(",")
    }?master=${options.master}`;
    return { master, replica, sentinels, url, link, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** One node of a {@linkcode RedisClusterService}. */
export interface RedisClusterNode extends RedisService {
  /** Its cluster node id. */
  readonly id: string;
}

/** A Redis Cluster on loopback. */
export interface RedisClusterService {
  /** Every node, masters first (in the order the cluster was made). */
  readonly nodes: readonly RedisClusterNode[];
  /** `redis://127.0.0.1:P1,127.0.0.1:P2,...` of every node. */
  readonly url: string;
  /** The node that serves `slot` now, as the first node still up says. */
  ownerOf(slot: number): RedisClusterNode;
  /** The current masters, as the first node still up says. */
  masters(): RedisClusterNode[];
  /** The hash slot of `name`, as the first node still up says. */
  slotOf(name: string): number;
  /**
   * Moves `slot` and its keys to the master `to`, as `redis-cli --cluster
   * reshard` does: importing and migrating states, `MIGRATE`, then the new
   * owner told to every master.
   */
  moveSlot(slot: number, to: RedisClusterNode): void;
  /** Stops every node and removes their directories. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startRedisCluster}. */
export interface RedisClusterOptions {
  /** How many masters (default 3, the fewest Redis Cluster accepts). */
  masters?: number;
  /** How many replicas each master gets (default 0). */
  replicas?: number;
  /**
   * `cluster-node-timeout`: how long a node may not answer before it is
   * failing and its replica takes over (default 1 000 ms; Redis's own
   * default is 15 s).
   */
  nodeTimeoutMs?: number;
}

/**
 * Starts a Redis Cluster on 127.0.0.1: `masters` masters sharing the 16 384
 * slots evenly, each with `replicas` replicas, made with
 * `redis-cli --cluster create`; resolves once every node agrees the cluster
 * is ok and every replica is in sync.
 */
export async function startRedisCluster(
  options: RedisClusterOptions = {},
): Promise<RedisClusterService> {
  const masters = options.masters ?? 3;
  const replicas = options.replicas ?? 0;
  const started: RedisService[] = [];
  const stop = () => Promise.all(started.map((node) => node.stop()));
  try {
    const args = [
      "--cluster-enabled",
      "yes",
      "--cluster-config-file",
      "nodes.conf",
      "--cluster-node-timeout",
      String(options.nodeTimeoutMs ?? 1_000),
    ];
    started.push(
      ...await Promise.all(
        Array.from(
          { length: masters * (1 + replicas) },
          () => startRedis({ args }),
        ),
      ),
    );
    run("redis-cli", [
      "--cluster",
      "create",
      ...started.map((node) => `127.0.0.1:${node.port}`),
      "--cluster-replicas",
      String(replicas),
      "--cluster-yes",
    ]);
    const nodes = started.map((node) => ({
      ...node,
      id: redisCli(node.port, ["CLUSTER", "MYID"]),
    }));
    const cluster = clusterOf(nodes, stop);
    await waitUntil(
      "the redis cluster",
      30_000,
      () =>
        nodes.every((node) =>
          redisCli(node.port, ["CLUSTER", "INFO"]).includes("cluster_state:ok")
        ) &&
        nodes.filter((node) => !cluster.masters().includes(node)).every((
          node,
        ) =>
          redisCli(node.port, ["INFO", "replication"]).includes(
            "master_link_status:up",
          )
        ),
    );
    // Masters first: redis-cli picks which nodes lead.
    const leaders = cluster.masters();
    nodes.sort((a, b) =>
      Number(!leaders.includes(a)) - Number(!leaders.includes(b))
    );
    return cluster;
  } catch (error) {
    await stop();
    throw error;
  }
}

function clusterOf(
  nodes: RedisClusterNode[],
  stop: () => Promise<unknown>,
): RedisClusterService {
  const byId = new Map(nodes.map((node) => [node.id, node]));
  // `CLUSTER NODES` lines: id addr flags master ping pong epoch link slots...
  const table = () =>
    ask(["CLUSTER", "NODES"]).split("\n").map((line) => line.split(" "));
  const ask = (args: string[]) => {
    for (const node of nodes) {
      try {
        return redisCli(node.port, args);
      } catch {
        // Down: ask the next one.
      }
    }
    throw new Error("no node of the redis cluster answers");
  };
  const masters = () =>
    table().filter((fields) =>
      fields[2].split(",").includes("master") && !fields[2].includes("fail") &&
      fields.length > 8
    ).map((fields) => byId.get(fields[0])!);
  return {
    nodes,
    url: `redis://${nodes.map((node) => `127.0.0.1:${node.port}`).join(",")}`,
    masters,
    ownerOf(slot) {
      for (const fields of table()) {
        if (!fields[2].split(",").includes("master")) continue;
        for (const range of fields.slice(8)) {
          if (range.startsWith("[")) continue; // a slot being migrated
          const [first, last = first] = range.split("-").map(Number);
          if (slot >= first && slot <= last) return byId.get(fields[0])!;
        }
      }
      throw new Error(`no node serves slot ${slot}`);
    },
    slotOf: (name) => Number(ask(["CLUSTER", "KEYSLOT", name])),
    moveSlot(slot, to) {
      const from = this.ownerOf(slot);
      if (from === to) return;
      const slotArg = String(slot);
      redisCli(to.port, ["CLUSTER", "SETSLOT", slotArg, "IMPORTING", from.id]);
      redisCli(from.port, ["CLUSTER", "SETSLOT", slotArg, "MIGRATING", to.id]);
      while (true) {
        const out = redisCli(from.port, [
          "CLUSTER",
          "GETKEYSINSLOT",
          slotArg,
          "100",
        ]);
        if (out === "") break;
        redisCli(from.port, [
          "MIGRATE",
          "127.0.0.1",
          String(to.port),
          "",
          "0",
          "5000",
          "KEYS",
          ...out.split("\n"),
        ]);
      }
      for (const node of [to, from, ...masters()]) {
        redisCli(node.port, ["CLUSTER", "SETSLOT", slotArg, "NODE", to.id]);
      }
    },
    async stop() {
      await stop();
    },
  };
}

/**
 * `ACL SETUSER` arguments for a user that may use the store under `prefix`
 * and nothing else: the rules docs/backends/redis.md gives (the prefix's
 * keys and their bookkeeping, the version counters, the notification probe,
 * every channel, no dangerous commands but INFO).
 */
export function confinedUserAcl(
  user: string,
  password: string,
  prefix: string,
): string[] {
  return [
    "ACL",
    "SETUSER",
    user,
    "on",
    `>${password}`,
    "resetkeys",
    `~${prefix}/*`,
    `~/v/{???}${prefix}/*`,
    `~/lock/{???}${prefix}/*`,
    "~/counter/*",
    "~/probe/*",
    "resetchannels",
    "&*",
    "+@all",
    "-@dangerous",
    "+info",
  ];
}
