/**
 * A real ZooKeeper 3.8 on loopback (Debian package `zookeeper`, Java 17):
 * one server, a TLS one, or an ensemble whose members can be killed, paused,
 * started again and cut off from each other.
 *
 * @module
 */

import type { TestCertificates } from "./certificates.ts";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { Socket } from "node:net";
import { join } from "node:path";
import {
  ensureCommand,
  freePort,
  portOpen,
  run,
  runAsync,
  type Service,
  startProcess,
  tempDir,
} from "./process.ts";
import { startTcpProxy, type TcpProxy } from "./tcp_proxy.ts";

/** A running ZooKeeper server. */
export interface ZookeeperService extends Service {
  /** `zk://127.0.0.1:PORT`. */
  readonly url: string;
  /** `zks://127.0.0.1:PORT` of the TLS client port, when started with TLS. */
  readonly secureUrl?: string;
}

/** Options of {@linkcode startZookeeper}. */
export interface ZookeeperOptions {
  /**
   * ZooKeeper's tick in milliseconds (default 200): sessions may time out
   * between 2 and 20 ticks, so a short tick makes session expiry testable.
   */
  tickTime?: number;
  /**
   * How often expired TTL nodes are removed (`znode.container.checkIntervalMs`,
   * ZooKeeper's default 60 000); the default here is 100 for tests.
   */
  containerCheckIntervalMs?: number;
  /** TTL nodes (`zookeeper.extendedTypesEnabled`); on by default here. */
  extendedTypes?: boolean;
  /** The largest request the server accepts (`jute.maxbuffer`). */
  maxBuffer?: number;
  /** A TLS client port too, with these certificates. */
  tls?: TestCertificates;
  /** More lines of zoo.cfg. */
  config?: string[];
  /** More JVM system properties (`-Dname=value`). */
  jvmArgs?: string[];
}

/** Sends a four-letter command and returns the reply. */
export function fourLetter(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let reply = "";
    socket.setTimeout(2_000, () => {
      socket.destroy();
      reject(new Error("timeout"));
    });
    socket.on("data", (data) => (reply += data.toString()));
    socket.on("close", () => resolve(reply));
    socket.on("error", reject);
    socket.connect(port, "127.0.0.1", () => socket.write(command));
  });
}

/**
 * Whether the server on `port` serves clients: `srvr` names a mode only
 * then (`ruok` says "imok" as soon as the process runs, before it serves).
 */
async function serves(port: number): Promise<boolean> {
  return /Mode: /.test(await fourLetter(port, "srvr").catch(() => ""));
}

function jvmArgs(options: ZookeeperOptions, configPath: string): string[] {
  return [
    "-Xmx256m",
    `-Dzookeeper.extendedTypesEnabled=${options.extendedTypes ?? true}`,
    `-Dznode.container.checkIntervalMs=${
      options.containerCheckIntervalMs ?? 100
    }`,
    "-Dzookeeper.admin.enableServer=false",
    ...(options.maxBuffer ? [`-Djute.maxbuffer=${options.maxBuffer}`] : []),
    ...(options.jvmArgs ?? []),
    "-cp",
    "/usr/share/java/*:/etc/zookeeper/conf",
    "org.apache.zookeeper.server.quorum.QuorumPeerMain",
    configPath,
  ];
}

function baseConfig(options: ZookeeperOptions, dir: string, port: number) {
  return [
    `tickTime=${options.tickTime ?? 200}`,
    `dataDir=${dir}/data`,
    `clientPort=${port}`,
    "clientPortAddress=127.0.0.1",
    "admin.enableServer=false",
    "4lw.commands.whitelist=*",
    "maxClientCnxns=0",
    // Every new session and write waits on an fsync of the log. On a loaded
    // CI machine, beside the suite's other fsyncs, a new session's handshake
    // once went unanswered for 10 s (fsync is the suspect, not proven).
    // Tests kill servers (SIGKILL) but never the machine, so the page cache
    // keeps what an fsync would.
    "forceSync=no",
  ];
}

function ensureZookeeper(): void {
  ensureCommand("java", ["openjdk-17-jre-headless"]);
  ensureCommand("/usr/share/zookeeper/bin/zkCli.sh", ["zookeeper"]);
}

/** Starts a standalone ZooKeeper (TTL nodes enabled) on 127.0.0.1. */
export async function startZookeeper(
  options: ZookeeperOptions = {},
): Promise<ZookeeperService> {
  ensureZookeeper();
  const port = await freePort();
  const dir = tempDir("zookeeper");
  const lines = baseConfig(options, dir, port);
  let securePort: number | undefined;
  if (options.tls) {
    securePort = await freePort();
    lines.push(
      `secureClientPort=${securePort}`,
      "secureClientPortAddress=127.0.0.1",
      "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
      `ssl.keyStore.location=${keystoreOf(options.tls)}`,
      "ssl.keyStore.type=PEM",
      `ssl.trustStore.location=${options.tls.files.ca}`,
      "ssl.trustStore.type=PEM",
    );
  }
  writeFileSync(
    `${dir}/zoo.cfg`,
    [...lines, ...(options.config ?? [])].join("\n") + "\n",
  );
  const service = await startProcess({
    name: "zookeeper",
    command: "java",
    args: jvmArgs(options, `${dir}/zoo.cfg`),
    dir,
    port,
    ready: async () =>
      await serves(port) &&
      (securePort === undefined || await portOpen(securePort)),
    readyTimeoutMs: 60_000,
  });
  return {
    ...service,
    url: `zk://127.0.0.1:${port}`,
    ...(securePort === undefined
      ? {}
      : { secureUrl: `zks://127.0.0.1:${securePort}` }),
  };
}

/** Where ZooKeeper's PEM keystore is: the server's key and certificate. */
function keystoreOf(certs: TestCertificates): string {
  const path = join(certs.dir, "server-keystore.pem");
  writeFileSync(path, certs.serverKey + certs.serverCert);
  return path;
}

/** A ZooKeeper ensemble on loopback. */
export interface ZookeeperEnsemble {
  /** `zk://` with every member. */
  readonly url: string;
  /** The members' client ports, by member index. */
  readonly ports: readonly number[];
  /** Kills member `i` at once (SIGKILL), as a crash would. */
  kill(i: number): Promise<void>;
  /** Starts member `i` again with its data, after a kill. */
  restart(i: number): Promise<void>;
  /** Freezes member `i` (SIGSTOP) until {@linkcode resume}. */
  pause(i: number): void;
  /** Lets a paused member `i` run again (SIGCONT). */
  resume(i: number): void;
  /** The member that leads the ensemble now, if one does. */
  leader(): Promise<number | undefined>;
  /** The ids (hex) of the client sessions connected to member `i`. */
  sessions(i: number): Promise<string[]>;
  /** The members serving clients now. */
  serving(): Promise<number[]>;
  /**
   * Cuts member `i` off from the other members (its quorum and election
   * links: nothing passes, the connections stay open), while clients still
   * reach every member, until {@linkcode heal}. Needs `peerLinks`.
   */
  isolate(i: number): void;
  /** Undoes {@linkcode isolate}: the links carry traffic again. */
  heal(): Promise<void>;
  /** Stops every member and removes their directories. */
  stop(): Promise<void>;
}

/**
 * Starts an ensemble of `size` servers (default 3) on 127.0.0.1. With
 * `peerLinks`, every link from one member to another goes through a proxy of
 * its own (each member's zoo.cfg names the others by their proxies' ports),
 * so {@linkcode ZookeeperEnsemble.isolate} can partition a member from the
 * rest without touching its clients.
 */
export async function startZookeeperEnsemble(
  options: ZookeeperOptions & { size?: number; peerLinks?: boolean } = {},
): Promise<ZookeeperEnsemble> {
  ensureZookeeper();
  const size = options.size ?? 3;
  const root = tempDir("zookeeper-ensemble");
  const ports: number[] = [];
  const quorum: { peer: number; election: number }[] = [];
  for (let i = 0; i < size; i++) {
    ports.push(await freePort());
    quorum.push({ peer: await freePort(), election: await freePort() });
  }
  // links[i][j]: the proxies member i reaches member j through.
  const links: ({ peer: TcpProxy; election: TcpProxy } | undefined)[][] = [];
  const proxies = () =>
    links.flat().flatMap((link) => link ? [link.peer, link.election] : []);
  if (options.peerLinks) {
    for (let i = 0; i < size; i++) {
      links.push([]);
      for (let j = 0; j < size; j++) {
        links[i].push(
          i === j ? undefined : {
            peer: await startTcpProxy(quorum[j].peer),
            election: await startTcpProxy(quorum[j].election),
          },
        );
      }
    }
  }
  // Member i's view of the ensemble: itself as it listens, the others as
  // it reaches them.
  const peersOf = (i: number) =>
    quorum.map(({ peer, election }, j) => {
      const link = links[i]?.[j];
      return link
        ? `server.${j + 1}=127.0.0.1:${link.peer.port}:${link.election.port}`
        : `server.${j + 1}=127.0.0.1:${peer}:${election}`;
    });
  const members: (Service | undefined)[] = [];
  const start = async (i: number) => {
    const dir = join(root, `member-${i + 1}`);
    mkdirSync(join(dir, "data"), { recursive: true });
    writeFileSync(join(dir, "data", "myid"), `${i + 1}\n`);
    writeFileSync(
      join(dir, "zoo.cfg"),
      [
        ...baseConfig(options, dir, ports[i]),
        "initLimit=20",
        "syncLimit=10",
        ...peersOf(i),
        ...(options.config ?? []),
      ].join("\n") + "\n",
    );
    members[i] = await startProcess({
      name: "zookeeper",
      command: "java",
      args: jvmArgs(
        options.peerLinks
          ? {
            ...options,
            // A cut-off member's proxy takes connections and answers
            // nothing; ZooKeeper waits cnxTimeout (5 s) on each before it
            // tries the next, which made an election of the others take
            // about 15 s.
            jvmArgs: ["-Dzookeeper.cnxTimeout=500", ...(options.jvmArgs ?? [])],
          }
          : options,
        join(dir, "zoo.cfg"),
      ),
      dir,
      port: ports[i],
      keepDir: true,
      // Serving once it has joined a quorum, as a leader or a follower.
      ready: () => serves(ports[i]),
      readyTimeoutMs: 90_000,
    });
  };
  try {
    await Promise.all(ports.map((_, i) => start(i)));
  } catch (error) {
    await Promise.allSettled(members.map((member) => member?.stop()));
    await Promise.allSettled(proxies().map((proxy) => proxy.close()));
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `zk://${ports.map((port) => `127.0.0.1:${port}`).join(",")}`,
    ports,
    kill: async (i) => {
      await members[i]?.kill();
      members[i] = undefined;
    },
    restart: (i) => start(i),
    pause: (i) => members[i]?.pause(),
    resume: (i) => members[i]?.resume(),
    leader: async () => {
      for (let i = 0; i < size; i++) {
        const reply = await fourLetter(ports[i], "srvr").catch(() => "");
        if (/Mode: leader/.test(reply)) return i;
      }
      return undefined;
    },
    sessions: async (i) => {
      if (!members[i]) return [];
      const reply = await fourLetter(ports[i], "cons").catch(() => "");
      return [...reply.matchAll(/sid=0x([0-9a-f]+)/g)]
        .map((match) => match[1])
        .filter((sid) => sid !== "0");
    },
    serving: async () => {
      const up: number[] = [];
      for (let i = 0; i < size; i++) {
        if (await serves(ports[i])) up.push(i);
      }
      return up;
    },
    isolate: (i) => {
      if (!options.peerLinks) {
        throw new Error("isolate needs an ensemble started with peerLinks");
      }
      for (let j = 0; j < size; j++) {
        if (j === i) continue;
        for (const link of [links[i][j]!, links[j][i]!]) {
          link.peer.partition();
          link.election.partition();
        }
      }
    },
    heal: async () => {
      await Promise.all(proxies().map((proxy) => proxy.resume()));
    },
    stop: async () => {
      await Promise.allSettled(members.map((member) => member?.stop()));
      await Promise.allSettled(proxies().map((proxy) => proxy.close()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * Runs one `zkCli.sh` command against a server and returns what it printed,
 * without the client's connection chatter. With `auth` (`"user:password"`),
 * it authenticates first (`addauth digest`).
 */
export function zkCli(port: number, ...command: string[]): string {
  return cli(port, command, undefined);
}

/** {@linkcode zkCli}, authenticated as `auth` (`"user:password"`). */
export function zkCliAs(
  port: number,
  auth: string,
  ...command: string[]
): string {
  return cli(port, command, auth);
}

// -waitforconnection: zkCli prints its connection event (the "WATCHER::"
// chatter) from another thread, and without waiting for it that text can
// land in the middle of the command's output ("[" ... "x, z]" in a CI run).
// Waiting, the event is printed whole before the command runs.
function cli(port: number, command: string[], auth: string | undefined) {
  const args = ["-waitforconnection", "-server", `127.0.0.1:${port}`];
  const output = auth === undefined
    ? run("/usr/share/zookeeper/bin/zkCli.sh", [...args, ...command])
    // Commands read from stdin run once connected.
    : run(
      "/usr/share/zookeeper/bin/zkCli.sh",
      args,
      {
        input: `addauth digest ${auth}\n${command.join(" ")}\nquit\n`,
      },
    );
  return withoutChatter(output);
}

/**
 * {@linkcode zkCli} without blocking the event loop while its JVM starts:
 * for commands run while a store of this process holds a session (a lock, an
 * ephemeral node) that must not expire meanwhile.
 */
export async function zkCliAsync(
  port: number,
  ...command: string[]
): Promise<string> {
  return withoutChatter(
    await runAsync("/usr/share/zookeeper/bin/zkCli.sh", [
      "-waitforconnection",
      "-server",
      `127.0.0.1:${port}`,
      ...command,
    ]),
  );
}

function withoutChatter(output: string): string {
  return output.split("\n").filter((line) =>
    line !== "" && !line.startsWith("Connecting to ") &&
    !line.startsWith("WATCHER::") && !line.startsWith("WatchedEvent ") &&
    line !== "Welcome to ZooKeeper!" && line !== "JLine support is disabled"
  ).join("\n");
}
