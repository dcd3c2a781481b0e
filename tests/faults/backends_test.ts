// Random get/put/CAS/delete/atomic workloads of many clients on a few keys,
// recorded and checked for linearizability (tests/faults/), on the backends
// of the library: memory:, file: shared by several processes, etcd, Redis,
// ZooKeeper, the Consul double and DynamoDB Local; and under faults: etcd
// through a TCP proxy cut in the middle of the run, a 3-member etcd cluster
// whose leader is SIGKILLed mid-run, a 3-server ZooKeeper ensemble one of
// whose servers is SIGKILLed mid-run (ops that time out, or fail in a way
// that may have taken effect, are recorded as unknown). Each run is a fixed
// count of operations; see docs/reliability.md.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { openStore } from "../../mod.ts";
import type { Store } from "../../core/types.ts";
import { agentClient, startFileAgent } from "./file_agents.ts";
import type { KvOperation } from "./history.ts";
import { checkLinearizable, describeResult } from "./linearizability.ts";
import { type KvClient, runWorkload, storeClient, tally } from "./workload.ts";
import { startEtcd, startEtcdCluster } from "../services/etcd.ts";
import { startRedis } from "../services/redis.ts";
import { startConsul } from "../services/consul.ts";
import { LOCAL_CREDENTIALS, startDynamoDB } from "../services/dynamodb.ts";
import { startZookeeperEnsemble } from "../services/zookeeper.ts";
import { startTcpProxy } from "../services/tcp_proxy.ts";

const CLIENTS = 8;
const KEYS = ["lin/a", "lin/b", "lin/c", "lin/d"];
const ATOMIC_KEYS: [string, string] = ["lin/a", "lin/b"];

/** Checks `history`, prints the figures docs/reliability.md reports. */
function verify(name: string, history: KvOperation[], operations: number) {
  const result = checkLinearizable(history);
  const count = tally(history);
  console.log(
    `${name}: ${history.length} ops (ok ${count.ok}, failed ${count.failed}, ` +
      `unknown ${count.unknown}), partitions ${
        result.partitions.map((p) => `${p.keys.join("+")}:${p.operations}`)
          .join(" ")
      }, steps ${
        result.partitions.reduce((sum, p) => sum + p.steps, 0)
      }, checked in ${result.ms.toFixed(1)} ms`,
  );
  assert.equal(history.length, operations);
  assert.equal(result.linearizable, true, describeResult(result));
  // Some writes took effect and some CAS lost: the run exercised the model.
  assert.ok(count.ok > operations / 2, `only ${count.ok} ok`);
  return { result, count };
}

async function openClients(
  url: string,
  count: number,
  options: Record<string, unknown> = {},
): Promise<Store[]> {
  const stores: Store[] = [];
  for (let i = 0; i < count; i++) stores.push(await openStore(url, options));
  return stores;
}

/**
 * A nemesis for `runWorkload`'s `beforeOperation`: at operation `at` it
 * runs `fault`, and `heal` a while later (the run itself is bounded by its
 * count of operations, not by time). `healed` settles once healed.
 */
function faultAt(
  at: number,
  fault: () => Promise<void>,
  heal: () => Promise<void>,
  healAfterMs = 2_000,
) {
  let struck = false;
  let healed: Promise<void> = Promise.resolve();
  return {
    beforeOperation: async (invoked: number) => {
      if (invoked < at || struck) return;
      struck = true;
      await fault();
      healed = new Promise((resolve) => setTimeout(resolve, healAfterMs))
        .then(heal);
    },
    get healed() {
      return healed;
    },
  };
}

async function closeAll(stores: Store[]) {
  await Promise.all(stores.map((store) => store.close()));
}

/** One recorded run of 8 clients, each its own store handle of `url`. */
interface StoreRun {
  name: string;
  url: string;
  options?: Record<string, unknown>;
  operations: number;
  seed: number;
  /** Each call's bound; past it the outcome is unknown. */
  timeoutMs?: number;
  /** A fault during the run, from {@linkcode faultAt}. */
  nemesis?: ReturnType<typeof faultAt>;
}

/** Runs, records and checks `run`; resolves the outcomes' tally. */
async function storeRun(run: StoreRun): Promise<ReturnType<typeof tally>> {
  let stores: Store[] = [];
  try {
    stores = await openClients(run.url, CLIENTS, run.options);
    const history = await runWorkload({
      clients: stores.map((store) =>
        storeClient(store, run.timeoutMs ?? 10_000)
      ),
      keys: KEYS,
      atomicKeys: ATOMIC_KEYS,
      operations: run.operations,
      seed: run.seed,
      ...(run.nemesis
        ? {
          pauseAfterUnknownMs: 250,
          beforeOperation: run.nemesis.beforeOperation,
        }
        : {}),
    });
    await run.nemesis?.healed;
    return verify(run.name, history, run.operations).count;
  } finally {
    await run.nemesis?.healed;
    await closeAll(stores);
  }
}

describe("linearizability of recorded workloads", () => {
  test("memory: 8 clients, 800 operations", async () => {
    await using store = await openStore("memory:");
    const history = await runWorkload({
      clients: Array.from({ length: CLIENTS }, () => storeClient(store)),
      keys: KEYS,
      atomicKeys: ATOMIC_KEYS,
      operations: 800,
      seed: 1,
    });
    verify("memory", history, 800);
  });

  test("file: 3 processes, 9 clients, 600 operations", async () => {
    const dir = mkdtempSync(join(tmpdir(), "valkeyrie-linearizability-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "store.vkr");
    const agents = [];
    try {
      for (let i = 0; i < 3; i++) agents.push(await startFileAgent(path));
      const clients: KvClient[] = [];
      for (const agent of agents) {
        for (let i = 0; i < 3; i++) clients.push(agentClient(agent));
      }
      const history = await runWorkload({
        clients,
        keys: KEYS,
        operations: 600,
        seed: 2,
      });
      verify("file (3 processes)", history, 600);
    } finally {
      await Promise.all(agents.map((agent) => agent.stop()));
    }
  });

  test("etcd: 8 clients on 8 connections, 600 operations", async () => {
    const etcd = await startEtcd();
    try {
      await storeRun({ name: "etcd", url: etcd.url, operations: 600, seed: 3 });
    } finally {
      await etcd.stop();
    }
  });

  test("redis: 8 clients on 8 connections, 600 operations", async () => {
    const redis = await startRedis();
    try {
      await storeRun({
        name: "redis",
        url: redis.url,
        operations: 600,
        seed: 4,
      });
    } finally {
      await redis.stop();
    }
  });

  test("etcd through a proxy cut in the middle: 8 clients, 500 operations", async () => {
    const etcd = await startEtcd();
    const proxy = await startTcpProxy(etcd.port);
    try {
      const count = await storeRun({
        name: "etcd, proxy cut",
        url: `etcd://127.0.0.1:${proxy.port}`,
        operations: 500,
        seed: 5,
        timeoutMs: 1_000,
        nemesis: faultAt(200, () => proxy.cut(), () => proxy.resume()),
      });
      assert.ok(count.unknown > 0, "the cut left some outcomes unknown");
    } finally {
      await proxy.close();
      await etcd.stop();
    }
  });

  test("zookeeper: a 3-server ensemble, one server SIGKILLed mid-run, 8 clients, 500 operations", async () => {
    const ensemble = await startZookeeperEnsemble({ size: 3 });
    try {
      await storeRun({
        name: "zookeeper ensemble, a server killed",
        url: ensemble.url,
        operations: 500,
        seed: 6,
        nemesis: faultAt(
          150,
          () => ensemble.kill(0),
          () => ensemble.restart(0),
        ),
      });
    } finally {
      await ensemble.stop();
    }
  });

  test("etcd: a 3-member cluster, its leader SIGKILLed mid-run, 8 clients, 500 operations", async () => {
    const cluster = await startEtcdCluster(3);
    let victim = -1;
    try {
      await storeRun({
        name: "etcd cluster, leader killed",
        url: cluster.url,
        operations: 500,
        seed: 7,
        nemesis: faultAt(
          150,
          async () => {
            victim = cluster.leader();
            await cluster.members[victim].kill();
          },
          () => cluster.members[victim].restart(),
        ),
      });
    } finally {
      await cluster.stop();
    }
  });

  test("consul (the double): 8 clients, 600 operations", async () => {
    const consul = await startConsul({ double: true });
    try {
      await storeRun({
        name: "consul double",
        url: consul.url,
        options: consul.options,
        operations: 600,
        seed: 8,
      });
    } finally {
      await consul.stop();
    }
  });

  test("dynamodb (DynamoDB Local): 8 clients, 400 operations", async () => {
    const dynamodb = await startDynamoDB();
    try {
      await storeRun({
        name: "dynamodb local",
        url: dynamodb.url("linearizability"),
        options: { ...LOCAL_CREDENTIALS, createTable: true },
        operations: 400,
        seed: 9,
        timeoutMs: 20_000,
      });
    } finally {
      await dynamodb.stop();
    }
  });
});
