// Random get/put/CAS/delete/atomic workloads of many clients on a few keys,
// recorded and checked for linearizability (tests/faults/), on the backends
// of the library: memory:, file: shared by several processes, etcd, Redis,
// ZooKeeper, the Consul double and DynamoDB Local (the clients of a network
// backend in two processes: this one and an agent); and under faults: SIGKILL
// and restart of an etcd leader and a ZooKeeper server, SIGSTOP pauses of an
// etcd leader, a ZooKeeper leader and Redis, a TCP proxy that cuts etcd and
// DynamoDB Local off or partitions the Consul double (ops that time out, or
// fail in a way that may have taken effect, are recorded as unknown). Lock
// histories of holders on one mutex under the same faults are checked with
// lockViolations. Each run is a fixed count of operations, times FAULT_SCALE
// (scripts/fault_runs.sh); see docs/reliability.md.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, describe, test } from "node:test";
import { openStore } from "../../mod.ts";
import type { Store } from "../../core/types.ts";
import type { Agent } from "../fixtures/agents.ts";
import { agentClient, startFileAgent, startUrlAgent } from "./agent_clients.ts";
import {
  HistoryRecorder,
  type KvOperation,
  lockViolations,
  type RecordedHold,
  recordHold,
} from "./history.ts";
import { checkLinearizable, describeResult } from "./linearizability.ts";
import {
  type KvClient,
  runWorkload,
  seededRandom,
  storeClient,
  tally,
} from "./workload.ts";
import { startEtcd, startEtcdCluster } from "../services/etcd.ts";
import { redisCli, startRedis, startSentinelGroup } from "../services/redis.ts";
import { waitUntil } from "../services/process.ts";
import { startConsul } from "../services/consul.ts";
import { LOCAL_CREDENTIALS, startDynamoDB } from "../services/dynamodb.ts";
import { startZookeeperEnsemble } from "../services/zookeeper.ts";
import { startTcpProxy } from "../services/tcp_proxy.ts";

const CLIENTS = 8;
/**
 * Of a URL's run's {@linkcode CLIENTS}, those in a second process (one agent
 * with its own store handle); the others each have a handle in this one.
 */
const AGENT_CLIENTS = 3;
/**
 * Multiplies every run's count of operations: 1 in CI, more for the long
 * runs of `scripts/fault_runs.sh` (`FAULT_SCALE=20`).
 */
const SCALE = integerFromEnv("FAULT_SCALE", 1, 1, 1_000);
/**
 * The shortest a recorded run of a network backend lasts, in seconds: 0 in
 * CI; `scripts/fault_runs.sh` asks 30 (`FAULT_MIN_SECONDS`), so a run goes on
 * in more segments than `FAULT_SCALE` until then.
 */
const MIN_SECONDS = integerFromEnv("FAULT_MIN_SECONDS", 0, 0, 3_600);

/** A whole number from the environment, `fallback` when unset. */
function integerFromEnv(
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(
      `${name} must be an integer from ${min} to ${max}, not ${text}`,
    );
  }
  return value;
}
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
 * count of operations, not by time); then again every `every` operations
 * after that (once healed), so the long runs of `FAULT_SCALE` see a fault
 * per 500 operations as the short ones do. `healed` settles once healed.
 */
function faultAt(
  at: number,
  fault: () => Promise<void> | void,
  heal: () => Promise<void> | void,
  healAfterMs = 2_000,
  every = 500,
) {
  let next = at;
  let healing = false;
  let healed: Promise<void> = Promise.resolve();
  return {
    beforeOperation: async (invoked: number) => {
      if (invoked < next || healing) return;
      next = invoked + every;
      healing = true;
      await fault();
      healed = new Promise((resolve) => setTimeout(resolve, healAfterMs))
        .then(heal)
        .finally(() => healing = false);
    },
    get healed() {
      return healed;
    },
  };
}

async function closeAll(stores: Store[]) {
  await Promise.all(stores.map((store) => store.close()));
}

/**
 * One recorded run of 8 clients on `url`, in two processes: 5 with a store
 * handle each here, 3 sharing one in an agent process.
 */
interface StoreRun {
  name: string;
  url: string;
  options?: Record<string, unknown>;
  operations: number;
  seed: number;
  /** Each call's bound; past it the outcome is unknown. */
  timeoutMs?: number;
  /**
   * How long a client waits after an unknown outcome, the first time in a
   * row (default 250 ms; see `WorkloadOptions`).
   */
  pauseAfterUnknownMs?: number;
  /** A fault during the run, from {@linkcode faultAt}. */
  nemesis?: ReturnType<typeof faultAt>;
}

/**
 * Runs, records and checks `run`; resolves the outcomes' tally. With
 * `FAULT_SCALE` above 1 it runs that many segments back to back on the same
 * stores and servers (more, until `FAULT_MIN_SECONDS` have passed), each on
 * keys of its own (`lin/a/3`): the faults go on
 * every 500 operations across them, and each segment is checked on its own.
 * An unknown write stays open to the end of its keys' history, so on one
 * key set the open writes of every fault would pile up and the search grow
 * with their product; on a segment's own keys it grows with the segment.
 */
async function storeRun(run: StoreRun): Promise<ReturnType<typeof tally>> {
  let stores: Store[] = [];
  let agent: Agent | undefined;
  try {
    const timeoutMs = run.timeoutMs ?? 10_000;
    stores = await openClients(run.url, CLIENTS - AGENT_CLIENTS, run.options);
    agent = await startUrlAgent(run.url, run.options ?? {}, timeoutMs);
    const clients = [
      ...stores.map((store) => storeClient(store, timeoutMs)),
      ...Array.from({ length: AGENT_CLIENTS }, () => agentClient(agent!)),
    ];
    const total = { ok: 0, failed: 0, unknown: 0 };
    const started = Date.now();
    const segmented = SCALE > 1 || MIN_SECONDS > 0;
    for (
      let segment = 0;
      segment < SCALE || Date.now() - started < MIN_SECONDS * 1_000;
      segment++
    ) {
      const keyOf = (key: string) => segmented ? `${key}/${segment}` : key;
      const history = await runWorkload({
        clients,
        keys: KEYS.map(keyOf),
        atomicKeys: [keyOf(ATOMIC_KEYS[0]), keyOf(ATOMIC_KEYS[1])],
        operations: run.operations,
        seed: run.seed + segment * 1_000,
        ...(run.nemesis
          ? {
            pauseAfterUnknownMs: run.pauseAfterUnknownMs ?? 250,
            beforeOperation: (invoked: number) =>
              run.nemesis!.beforeOperation(segment * run.operations + invoked),
          }
          : {}),
      });
      const name = segmented ? `${run.name} [${segment + 1}]` : run.name;
      const { count } = verify(name, history, run.operations);
      // The agent's clients (the last ones) took part: two processes ran it.
      for (let i = CLIENTS - AGENT_CLIENTS; i < CLIENTS; i++) {
        const done = history.filter((op) =>
          op.client.split(".")[0] === `c${i}` && op.outcome.status === "ok"
        ).length;
        assert.ok(done > 0, `the agent's client c${i} completed nothing`);
      }
      total.ok += count.ok;
      total.failed += count.failed;
      total.unknown += count.unknown;
    }
    await run.nemesis?.healed;
    return total;
  } finally {
    await run.nemesis?.healed;
    await Promise.all([closeAll(stores), agent?.stop()]);
  }
}

/** One recorded run of lock holders, each its own store handle of `url`. */
interface LockRun {
  name: string;
  url: string;
  options?: Record<string, unknown>;
  /** Acquisitions per holder. */
  rounds: number;
  nemesis: ReturnType<typeof faultAt>;
}

/**
 * Runs `run`'s holders on one mutex, each acquisition followed by two fenced
 * writes and a release, records every hold, and checks the history with
 * `lockViolations`: holds never overlap, tokens grow, no fenced write
 * started after a later holder held the lock. A call a fault cuts off is no
 * hold (a failed `lock()`) or ends the hold where it failed; only the
 * fenced writes the store acknowledged are in the history.
 */
async function lockRun(run: LockRun) {
  const holders = 4;
  const rounds = run.rounds * SCALE;
  let stores: Store[] = [];
  const holds: RecordedHold[] = [];
  let failedLocks = 0;
  let invoked = 0;
  try {
    stores = await openClients(run.url, holders, run.options);
    await Promise.all(stores.map(async (store, worker) => {
      for (let round = 0; round < rounds; round++) {
        await run.nemesis.beforeOperation(invoked++);
        const invokedAt = Date.now();
        let lock;
        try {
          lock = await store.lock("lin/mutex", {
            ttl: 10_000,
            signal: AbortSignal.timeout(30_000),
          });
        } catch {
          failedLocks++;
          continue;
        }
        const hold = recordHold(`holder ${worker}`, lock, invokedAt);
        holds.push(hold);
        for (let i = 0; i < 2; i++) {
          const at = Date.now();
          try {
            await store.put("lin/fenced", `${worker}/${round}/${i}`, {
              fence: lock,
              signal: AbortSignal.timeout(5_000),
            });
          } catch {
            break;
          }
          hold.writes.push({ invokedAt: at, completedAt: Date.now() });
        }
        hold.releasedAt = Math.min(hold.releasedAt, Date.now());
        await lock.unlock().catch(() => {});
      }
    }));
    await run.nemesis.healed;
    const writes = holds.reduce((sum, hold) => sum + hold.writes.length, 0);
    console.log(
      `${run.name}: ${holds.length} holds of ${holders * rounds} tries ` +
        `(${failedLocks} lock calls failed), ${writes} fenced writes applied`,
    );
    assert.deepEqual(lockViolations(holds), []);
    assert.ok(
      holds.length > (holders * rounds) / 2,
      `only ${holds.length} holds`,
    );
  } finally {
    await run.nemesis.healed;
    await closeAll(stores);
  }
}

describe("lock histories under faults", () => {
  test("zookeeper: a 3-server ensemble, its leader SIGKILLed mid-run, 4 holders, 100 holds", async () => {
    const ensemble = await startZookeeperEnsemble({ size: 3 });
    let victim: number | undefined;
    try {
      await lockRun({
        name: "zookeeper locks, the leader killed",
        url: ensemble.url,
        rounds: 25,
        nemesis: faultAt(
          30,
          async () => {
            victim = await ensemble.leader();
            assert.notEqual(victim, undefined, "a member leads");
            await ensemble.kill(victim!);
          },
          () => ensemble.restart(victim!),
          2_000,
          100,
        ),
      });
    } finally {
      await ensemble.stop();
    }
  });

  test("etcd: a 3-member cluster, its leader SIGSTOPped for 3 s mid-run, 4 holders, 100 holds", async () => {
    const cluster = await startEtcdCluster(3);
    let victim = -1;
    try {
      await lockRun({
        name: "etcd locks, the leader paused",
        url: cluster.url,
        rounds: 25,
        nemesis: faultAt(
          30,
          async () => {
            victim = await cluster.leader();
            cluster.members[victim].pause();
          },
          () => cluster.members[victim].resume(),
          3_000,
          100,
        ),
      });
    } finally {
      if (victim >= 0) cluster.members[victim].resume();
      await cluster.stop();
    }
  });

  test("redis: the server SIGSTOPped for 2 s mid-run, 4 holders, 100 holds", async () => {
    const redis = await startRedis();
    try {
      await lockRun({
        name: "redis locks, the server paused",
        url: redis.url,
        rounds: 25,
        nemesis: faultAt(
          30,
          () => redis.pause(),
          () => redis.resume(),
          2_000,
          100,
        ),
      });
    } finally {
      redis.resume();
      await redis.stop();
    }
  });
});

describe("linearizability of recorded workloads", () => {
  test("memory: 8 clients, 800 operations", async () => {
    await using store = await openStore("memory:");
    const history = await runWorkload({
      clients: Array.from({ length: CLIENTS }, () => storeClient(store)),
      keys: KEYS,
      atomicKeys: ATOMIC_KEYS,
      operations: 800 * SCALE,
      seed: 1,
    });
    verify("memory", history, 800 * SCALE);
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
        operations: 600 * SCALE,
        seed: 2,
      });
      verify("file (3 processes)", history, 600 * SCALE);
    } finally {
      await Promise.all(agents.map((agent) => agent.stop()));
    }
  });

  // The first agent to open the file owns it and serves the other two; the
  // nemesis kills or pauses that process. Each client reaches the store
  // through the agent in its slot, and a killed agent's slot gets a new
  // process (which joins as a client of the new owner) when healed.
  async function fileOwnerRun(
    name: string,
    seed: number,
    fault: (owner: Agent) => Promise<void> | void,
    heal: (slots: Agent[], path: string) => Promise<void> | void,
  ) {
    const dir = mkdtempSync(join(tmpdir(), "valkeyrie-linearizability-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "store.vkr");
    const slots: Agent[] = [];
    const nemesis = faultAt(
      150,
      () => fault(slots[0]),
      () => heal(slots, path),
      2_000,
      // Once per run: after a kill, the owner is another process.
      Number.MAX_SAFE_INTEGER,
    );
    try {
      for (let i = 0; i < 3; i++) slots.push(await startFileAgent(path));
      const clients: KvClient[] = [];
      for (let i = 0; i < 9; i++) {
        const slot = Math.floor(i / 3);
        clients.push(agentClient({
          call: (op, args) => slots[slot].call(op, args),
        } as Agent));
      }
      const history = await runWorkload({
        clients,
        keys: KEYS,
        operations: 600,
        seed,
        pauseAfterUnknownMs: 250,
        beforeOperation: (invoked) => nemesis.beforeOperation(invoked),
      });
      await nemesis.healed;
      verify(name, history, 600);
    } finally {
      await nemesis.healed;
      await Promise.all(slots.map((agent) => agent.stop()));
    }
  }

  test("file: 3 processes, the owning process SIGKILLed mid-run and replaced, 9 clients, 600 operations", async () => {
    await fileOwnerRun(
      "file (3 processes), the owner killed",
      21,
      (owner) => owner.kill(),
      async (slots, path) => {
        slots[0] = await startFileAgent(path);
      },
    );
  });

  test("file: 3 processes, the owning process SIGSTOPped for 2 s mid-run, 9 clients, 600 operations", async () => {
    await fileOwnerRun(
      "file (3 processes), the owner paused",
      22,
      // By pid: Deno's ChildProcess.kill() sends only its first signal, so
      // a SIGCONT through it would leave the owner stopped for good.
      (owner) => {
        process.kill(owner.process.pid!, "SIGSTOP");
      },
      (slots) => {
        process.kill(slots[0].process.pid!, "SIGCONT");
      },
    );
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
            victim = await cluster.leader();
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

  // Pauses: a frozen server keeps its connections open and answers nothing,
  // as in a long GC pause or a stalled VM; the calls it holds time out
  // (unknown outcomes), and it runs on afterwards, possibly no longer the
  // leader it was.

  test("zookeeper: a 3-server ensemble, its leader SIGSTOPped for 3 s mid-run, 8 clients, 500 operations", async () => {
    const ensemble = await startZookeeperEnsemble({ size: 3 });
    let victim: number | undefined;
    try {
      await storeRun({
        name: "zookeeper ensemble, the leader paused",
        url: ensemble.url,
        operations: 500,
        seed: 10,
        timeoutMs: 2_000,
        nemesis: faultAt(
          150,
          async () => {
            victim = await ensemble.leader();
            assert.notEqual(victim, undefined, "a member leads");
            ensemble.pause(victim!);
          },
          () => ensemble.resume(victim!),
          3_000,
        ),
      });
    } finally {
      if (victim !== undefined) ensemble.resume(victim);
      await ensemble.stop();
    }
  });

  test("zookeeper: a 3-server ensemble, its leader cut off from the other members for 3 s mid-run, 8 clients, 500 operations", async () => {
    // Every link between members goes through a proxy: the leader keeps
    // running and its clients still reach it, but it hears no follower.
    const ensemble = await startZookeeperEnsemble({ size: 3, peerLinks: true });
    try {
      await storeRun({
        name: "zookeeper ensemble, the leader partitioned",
        url: ensemble.url,
        operations: 500,
        seed: 16,
        timeoutMs: 2_000,
        nemesis: faultAt(
          150,
          async () => {
            const leader = await ensemble.leader();
            assert.notEqual(leader, undefined, "a member leads");
            ensemble.isolate(leader!);
          },
          () => ensemble.heal(),
          3_000,
        ),
      });
    } finally {
      await ensemble.heal();
      await ensemble.stop();
    }
  });

  test("etcd: a 3-member cluster, what the others send its leader black-holed for 3 s mid-run, 8 clients, 500 operations", async () => {
    // A one-way partition: the leader's advertised peer address is a proxy
    // that lets nothing through, while the links it dials still carry.
    const cluster = await startEtcdCluster(3, { peerLinks: true });
    try {
      await storeRun({
        name: "etcd cluster, the leader cut off",
        url: cluster.url,
        operations: 500,
        seed: 17,
        timeoutMs: 2_000,
        nemesis: faultAt(
          150,
          async () => cluster.cutOff(await cluster.leader()),
          () => cluster.heal(),
          3_000,
        ),
      });
    } finally {
      await cluster.heal();
      await cluster.stop();
    }
  });

  test("etcd: a 3-member cluster, its leader SIGSTOPped for 3 s mid-run, 8 clients, 500 operations", async () => {
    const cluster = await startEtcdCluster(3);
    let victim = -1;
    try {
      await storeRun({
        name: "etcd cluster, the leader paused",
        url: cluster.url,
        operations: 500,
        seed: 11,
        timeoutMs: 2_000,
        nemesis: faultAt(
          150,
          async () => {
            victim = await cluster.leader();
            cluster.members[victim].pause();
          },
          () => cluster.members[victim].resume(),
          3_000,
        ),
      });
    } finally {
      if (victim >= 0) cluster.members[victim].resume();
      await cluster.stop();
    }
  });

  test("redis: the server SIGSTOPped for 2 s mid-run, 8 clients, 500 operations", async () => {
    const redis = await startRedis();
    try {
      const count = await storeRun({
        name: "redis, the server paused",
        url: redis.url,
        operations: 500,
        seed: 12,
        timeoutMs: 1_000,
        nemesis: faultAt(150, () => redis.pause(), () => redis.resume()),
      });
      assert.ok(count.unknown > 0, "the pause left some outcomes unknown");
    } finally {
      redis.resume();
      await redis.stop();
    }
  });

  // A slow link: every request arrives, late, so a write whose call timed
  // out (an unknown outcome) still lands after the client gave up.
  test("redis behind a link slowed by 400 ms for 2 s mid-run: 8 clients, 500 operations", async () => {
    const redis = await startRedis();
    const proxy = await startTcpProxy(redis.port);
    try {
      const count = await storeRun({
        name: "redis, slow link",
        url: `redis://127.0.0.1:${proxy.port}`,
        operations: 500,
        seed: 15,
        timeoutMs: 250,
        nemesis: faultAt(150, () => proxy.delay(400), () => proxy.resume()),
      });
      assert.ok(count.unknown > 0, "the slow link left some outcomes unknown");
    } finally {
      await proxy.close();
      await redis.stop();
    }
  });

  // Cuts: the proxy answers nothing (a partition) or refuses (a cut).

  test("consul (the double) behind a partition of 2 s mid-run: 8 clients, 500 operations", async () => {
    const consul = await startConsul({ double: true });
    const port = Number(consul.address.split(":").pop());
    const proxy = await startTcpProxy(port);
    try {
      const count = await storeRun({
        name: "consul double, partitioned",
        url: `consul://127.0.0.1:${proxy.port}`,
        options: consul.options,
        operations: 500,
        seed: 13,
        timeoutMs: 1_000,
        nemesis: faultAt(150, () => proxy.partition(), () => proxy.resume()),
      });
      assert.ok(count.unknown > 0, "the partition left some outcomes unknown");
    } finally {
      await proxy.close();
      await consul.stop();
    }
  });

  test("dynamodb (DynamoDB Local) behind a proxy cut for 2 s mid-run: 8 clients, 400 operations", async () => {
    const dynamodb = await startDynamoDB();
    const proxy = await startTcpProxy(dynamodb.port);
    try {
      await storeRun({
        name: "dynamodb local, proxy cut",
        url: `dynamodb://linearizability?endpoint=${
          encodeURIComponent(`http://127.0.0.1:${proxy.port}`)
        }&region=us-east-1`,
        options: { ...LOCAL_CREDENTIALS, createTable: true },
        operations: 400,
        seed: 14,
        timeoutMs: 3_000,
        // Refused connections fail a call within a few hundred ms: clients
        // back off longer, or the unknown writes of the cut (32 with 250 ms,
        // a check of 1 million steps once) near the checker's budget.
        pauseAfterUnknownMs: 500,
        nemesis: faultAt(150, () => proxy.cut(), () => proxy.resume()),
      });
    } finally {
      await proxy.close();
      await dynamodb.stop();
    }
  });
});

/** Puts of a {@linkcode sentinelFailoverRun}. */
const FAILOVER_PUTS = 200;
/**
 * The last of them, sent once the replica gets nothing more. Few: with
 * `waitReplicas` each is unknown, and the checker's search grows with the
 * combinations of a key's open writes (106 of them ran out of its 5 million
 * steps).
 */
const UNREPLICATED_PUTS = 24;

/**
 * A Sentinel failover after the replica missed the last writes: 8 clients
 * put unique values on the 4 keys (puts only: no read can have seen a write
 * that is lost, so the history is judged on what was acknowledged); before
 * the last {@linkcode UNREPLICATED_PUTS} the link the replica replicates
 * through lets nothing pass any more (a partition), so the master takes
 * those without passing them on; then the
 * master is killed, Sentinel promotes the replica, and one client reads every
 * key.
 */
async function sentinelFailoverRun(
  name: string,
  options: Record<string, unknown>,
  seed: number,
) {
  const master = "faults";
  const group = await startSentinelGroup({
    master,
    downAfterMs: 1_000,
    failoverTimeoutMs: 3_000,
    replicationProxy: true,
  });
  let stores: Store[] = [];
  try {
    stores = await openClients(group.url, CLIENTS, options);
    const recorder = new HistoryRecorder();
    const random = seededRandom(seed);
    let invoked = 0;
    await Promise.all(stores.map(async (store, index) => {
      const client = storeClient(store, 10_000);
      let generation = 0;
      let writes = 0;
      while (invoked < FAILOVER_PUTS) {
        if (invoked++ === FAILOVER_PUTS - UNREPLICATED_PUTS) {
          group.link!.partition();
        }
        const key = KEYS[Math.floor(random() * KEYS.length)];
        const who = `c${index}${generation ? `.${generation}` : ""}`;
        const value = `${who}-${++writes}`;
        const outcome = await recorder.record(
          who,
          { type: "put", key, value },
          async () => ({
            status: "ok",
            lastIndex: await client.put(key, value),
          }),
        );
        // The open put belongs to the old name; carry on as a new one.
        if (outcome.status === "unknown") generation++;
      }
    }));
    await group.master.kill();
    await waitUntil(
      "the replica promoted",
      60_000,
      () =>
        redisCli(group.sentinels[0].port, [
          "SENTINEL",
          "GET-MASTER-ADDR-BY-NAME",
          master,
        ]).includes(String(group.replica.port)),
      200,
    );
    // Read until each read is answered (the store finds the new master).
    const reader = storeClient(stores[0], 10_000);
    for (const key of KEYS) {
      for (let attempt = 0; attempt < 10; attempt++) {
        const outcome = await recorder.record(
          `reader.${key}.${attempt}`,
          { type: "get", key },
          async () => ({ status: "ok", read: await reader.get(key) }),
        );
        if (outcome.status === "ok") break;
      }
    }
    const history = [...recorder.operations];
    const result = checkLinearizable(history);
    const count = tally(history);
    console.log(
      `${name}: ${history.length} ops (ok ${count.ok}, failed ${count.failed}, ` +
        `unknown ${count.unknown}), ${
          result.linearizable ? "linearizable" : "NOT linearizable"
        }, checked in ${result.ms.toFixed(1)} ms`,
    );
    return { history, result, count };
  } finally {
    await closeAll(stores);
    await group.stop();
  }
}

describe("acknowledged writes through a Redis Sentinel failover", () => {
  test("without waitReplicas, the checker finds acknowledged puts the failover lost", async () => {
    const { result, count } = await sentinelFailoverRun(
      "redis sentinel, no WAIT",
      {},
      21,
    );
    // Every put was acknowledged: the master answered them all.
    assert.equal(count.ok, FAILOVER_PUTS + KEYS.length);
    assert.equal(result.linearizable, false, describeResult(result));
  });

  test("with waitReplicas: 1, what was acknowledged survives; the rest is unknown", async () => {
    const { result, count } = await sentinelFailoverRun(
      "redis sentinel, waitReplicas 1",
      { waitReplicas: 1, waitTimeout: 300 },
      22,
    );
    assert.equal(result.linearizable, true, describeResult(result));
    // The replica cut off confirmed none of the last puts.
    assert.ok(count.unknown >= UNREPLICATED_PUTS, `${count.unknown} unknown`);
  });
});
