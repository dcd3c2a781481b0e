/**
 * A real ZooKeeper 3.8 on loopback (Debian package `zookeeper`, Java 17).
 *
 * @module
 */

import { writeFileSync } from "node:fs";
import { Socket } from "node:net";
import {
  ensureCommand,
  freePort,
  type Service,
  startProcess,
  tempDir,
} from "./process.ts";

/** A running ZooKeeper server. */
export interface ZookeeperService extends Service {
  /** `zk://127.0.0.1:PORT`. */
  readonly url: string;
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

/** Starts a standalone ZooKeeper with TTL nodes enabled on 127.0.0.1. */
export async function startZookeeper(
  options: ZookeeperOptions = {},
): Promise<ZookeeperService> {
  ensureCommand("java", ["openjdk-17-jre-headless"]);
  ensureCommand("/usr/share/zookeeper/bin/zkCli.sh", ["zookeeper"]);
  const port = await freePort();
  const dir = tempDir("zookeeper");
  writeFileSync(
    `${dir}/zoo.cfg`,
    [
      `tickTime=${options.tickTime ?? 200}`,
      `dataDir=${dir}/data`,
      `clientPort=${port}`,
      "clientPortAddress=127.0.0.1",
      "admin.enableServer=false",
      "4lw.commands.whitelist=*",
      "maxClientCnxns=0",
      ...(options.config ?? []),
    ].join("\n") + "\n",
  );
  const service = await startProcess({
    name: "zookeeper",
    command: "java",
    args: [
      "-Xmx256m",
      "-Dzookeeper.extendedTypesEnabled=true",
      `-Dznode.container.checkIntervalMs=${
        options.containerCheckIntervalMs ?? 100
      }`,
      "-Dzookeeper.admin.enableServer=false",
      ...(options.jvmArgs ?? []),
      "-cp",
      "/usr/share/java/*:/etc/zookeeper/conf",
      "org.apache.zookeeper.server.quorum.QuorumPeerMain",
      `${dir}/zoo.cfg`,
    ],
    dir,
    port,
    ready: async () => (await fourLetter(port, "ruok")) === "imok",
    readyTimeoutMs: 60_000,
  });
  return { ...service, url: `zk://127.0.0.1:${port}` };
}
