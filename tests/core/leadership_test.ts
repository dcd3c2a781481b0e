// Leader election on every backend, each against its real server (Consul:
// its API double, or a real agent with CONSUL_HTTP_ADDR).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { openStore, type Store } from "../../mod.ts";
import { leadershipCases } from "./leadership_cases.ts";
import { type ConsulService, startConsul } from "../services/consul.ts";
import { type DynamoDBService, startDynamoDB } from "../services/dynamodb.ts";
import { type EtcdService, startEtcd } from "../services/etcd.ts";
import { type RedisService, startRedis } from "../services/redis.ts";
import {
  startZookeeper,
  type ZookeeperService,
} from "../services/zookeeper.ts";

const runner = { describe, test };

/** Runs the cases with a server started before them and stopped after. */
function onServer<S extends { stop(): Promise<void> }>(
  name: string,
  start: () => Promise<S>,
  open: (server: S) => Promise<Store>,
): void {
  describe(name, () => {
    let server: S | undefined;
    before(async () => {
      server = await start();
    });
    after(() => server?.stop());
    leadershipCases(runner, name, () => open(server!));
  });
}

leadershipCases(runner, "memory", () => openStore("memory:leadership"));
onServer(
  "file",
  () => {
    const dir = mkdtempSync(join(tmpdir(), "valkeyrie-leadership-"));
    return Promise.resolve({
      dir,
      stop: () =>
        Promise.resolve(rmSync(dir, { recursive: true, force: true })),
    });
  },
  (s) => openStore(`file:${join(s.dir, "leadership.db")}`),
);
onServer<RedisService>("redis", startRedis, (s) => openStore(s.url));
onServer<EtcdService>("etcd", startEtcd, (s) => openStore(s.url));
onServer<ZookeeperService>(
  "zookeeper",
  startZookeeper,
  (s) => openStore(`${s.url}/leadership?tickTime=200`),
);
onServer<ConsulService>(
  "consul",
  () => startConsul({ sessionTtlMinMs: 1_000 }),
  (s) => openStore(s.url, s.options),
);
onServer<DynamoDBService>(
  "dynamodb",
  startDynamoDB,
  (s) =>
    openStore(s.url("leadership"), {
      accessKeyId: "local",
      secretAccessKey: "local",
      createTable: true,
    }),
);
