// A 3-member etcd cluster on loopback whose leader is killed (SIGKILL) in the
// middle of a workload: acknowledged writes survive, the store keeps serving
// from the other members, watches carry on to the final state, a lock holder
// keeps its lock or loses it visibly; with every member gone, calls fail with
// NotReachableError. A leader cut off from what the others send it is
// replaced, and follows once healed.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { NotReachableError, openStore, type Store } from "../../mod.ts";
import {
  lateBound,
  show,
  sleep,
  StreamReader,
  text,
} from "../../testing/harness.ts";
import {
  type EtcdCluster,
  etcdctl,
  startEtcdCluster,
} from "../services/etcd.ts";
import { runAsync } from "../services/process.ts";

/** How long the workload writes after the leader is killed. */
const WRITE_AFTER_KILL_MS = 4_000;

/** etcd's default requestTimeout (DEFAULT_REQUEST_TIMEOUT_MS in backends/etcd/mod.ts). */
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/**
 * The longest the store may stop serving while a new leader is elected: a
 * call stuck on a member that lost its leader is given up after 2 s (the
 * client's attempt timeout) and retried; elections take about 1 s here.
 */
const MAX_OUTAGE_MS = 5_000;

describe("etcd cluster of 3 with its leader killed mid-workload", () => {
  let cluster: EtcdCluster;
  let writer: Store;
  let watcher: Store;
  let holder: Store;
  let contender: Store;

  before(async () => {
    cluster = await startEtcdCluster(3);
    const open = () => openStore(cluster.url, { prefix: "cluster" });
    [writer, watcher, holder, contender] = await Promise.all([
      open(),
      open(),
      open(),
      open(),
    ]);
  });
  after(async () => {
    await Promise.allSettled(
      [writer, watcher, holder, contender].map((s) => s?.close()),
    );
    await cluster?.stop();
  });

  test("writes, watches and locks carry on across the failover", async () => {
    const key = new StreamReader(watcher.watch("counter"));
    const tree = new StreamReader(watcher.watchTree("items"));
    assert.equal(await key.next(), null);
    assert.deepEqual(await tree.next(), []);
    const ttl = 3_000;
    const lock = await holder.lock("job", { value: "holder", ttl });

    const acknowledged: number[] = [];
    const failures: unknown[] = [];
    let killedAt = 0;
    let longestGap = 0;
    let lastAck = Date.now();
    let i = 0;
    const leader = await cluster.leader();
    while (killedAt === 0 || Date.now() - killedAt < WRITE_AFTER_KILL_MS) {
      if (i === 30) {
        await cluster.members[leader].kill();
        killedAt = Date.now();
      }
      const n = i++;
      try {
        await writer.atomic()
          .put(`items/${n}`, `v${n}`)
          .put("counter", String(n))
          .commit();
        acknowledged.push(n);
        longestGap = Math.max(longestGap, Date.now() - lastAck);
        lastAck = Date.now();
      } catch (error) {
        failures.push(error);
      }
    }
    const afterKill = acknowledged.filter((n) => n >= 30);
    assert.ok(afterKill.length > 0, "the store serves after the kill");
    assert.ok(
      longestGap <= MAX_OUTAGE_MS,
      `longest pause between acknowledged writes: ${longestGap} ms`,
    );

    // Every acknowledged write is there, read from the surviving members.
    const items = new Map(
      (await writer.list("items")).map((p) => [p.key, text(p)]),
    );
    for (const n of acknowledged) {
      assert.equal(items.get(`items/${n}`), `v${n}`, `write ${n} survived`);
    }

    // The watches reach the final state.
    const finalCounter = await writer.get("counter");
    const lastKey = await key.until((p) =>
      p?.lastIndex === finalCounter!.lastIndex
    );
    assert.equal(text(lastKey), text(finalCounter));
    const finalTree = await writer.list("items");
    const lastTree = await tree.until((l) => show(l) === show(finalTree));
    assert.equal(lastTree.length, finalTree.length);
    await key.cancel();
    await tree.cancel();

    // The holder knows whether it still holds the lock, and the cluster
    // agrees with it.
    const lost = lock.lost.aborted;
    const taken = await contender.lock("job", {
      value: "contender",
      // A lost lock passes on within its TTL and etcd's expiry granularity
      // (with the kit's headroom for etcd's timers on a loaded machine); a
      // kept one is not taken within a second, which load cannot shorten.
      signal: AbortSignal.timeout(
        lost ? lateBound(ttl + contender.limits.ttlGranularityMs) : 1_000,
      ),
    }).catch(() => null);
    if (lost) {
      assert.ok(taken, "a lost lock can be taken by another");
    } else {
      assert.equal(taken, null, "a kept lock cannot be taken by another");
      assert.equal(text(await contender.get("job")), "holder");
    }
    await taken?.unlock();
    await lock.unlock();
    console.log(
      `cluster: ${acknowledged.length} writes acknowledged (${afterKill.length} after the kill), ${failures.length} failed, longest pause ${longestGap} ms, lock ${
        lost ? "lost" : "kept"
      }`,
    );
  });

  test("the killed member rejoins and agrees with the others", async () => {
    const dead = cluster.members.find((m) => !m.running)!;
    await dead.restart();
    const revisions = () =>
      cluster.endpoints.map((endpoint) =>
        JSON.parse(
          etcdctl(endpoint, [
            "get",
            "cluster/counter",
            "-w",
            "json",
            "--consistency=s",
          ]),
        ).kvs?.[0]?.mod_revision
      );
    const deadline = Date.now() + 10_000;
    while (new Set(revisions()).size !== 1) {
      assert.ok(Date.now() < deadline, `members disagree: ${revisions()}`);
      await sleep(100);
    }
  });

  test("with every member gone, calls fail with NotReachableError", async () => {
    await using store = await openStore(cluster.url, {
      prefix: "cluster",
      requestTimeout: 1_000,
    });
    for (const member of cluster.members) await member.kill();
    // Each within the 1 s requestTimeout asked for, not the 10 s default.
    for (
      const call of [
        () => store.get("counter"),
        () => store.put("counter", "x"),
      ]
    ) {
      const started = Date.now();
      await assert.rejects(call(), NotReachableError);
      const took = Date.now() - started;
      assert.ok(took < DEFAULT_REQUEST_TIMEOUT_MS / 2, `took ${took} ms`);
    }
    await assert.rejects(
      openStore(cluster.url, { connectTimeout: 1_000 }),
      NotReachableError,
    );
  });
});

describe("etcd cluster of 3 with its leader cut off from the others", () => {
  test("what the others send the leader is black-holed: they elect another, the store goes on, and healed it follows", async () => {
    const cluster = await startEtcdCluster(3, { peerLinks: true });
    try {
      await using store = await openStore(cluster.url, { prefix: "cutoff" });
      await store.put("k", "before");
      const old = await cluster.leader();
      cluster.cutOff(old);
      let leader = old;
      try {
        // A bounded wait for the two others' election (each try asks them).
        for (let i = 0; i < 100 && leader === old; i++) {
          await sleep(100);
          leader = await cluster.leader().catch(() => old);
        }
        assert.notEqual(leader, old, "the others elected a new leader");
        await store.put("k", "during");
        assert.equal(text(await store.get("k")), "during");
      } finally {
        await cluster.heal();
      }
      // Healed, the old leader follows the new one and has its writes.
      // (etcdctl runs beside this process, whose event loop runs the
      // proxies.)
      const revisions = () =>
        Promise.all(cluster.endpoints.map(async (endpoint) =>
          JSON.parse(
            await runAsync("etcdctl", [
              `--endpoints=${endpoint}`,
              "endpoint",
              "status",
              "-w",
              "json",
            ]),
          )[0].Status.header.revision
        ));
      let seen = await revisions();
      for (let i = 0; i < 100 && new Set(seen).size !== 1; i++) {
        await sleep(100);
        seen = await revisions();
      }
      assert.equal(new Set(seen).size, 1, `members disagree: ${seen}`);
      assert.equal(await cluster.leader(), leader);
    } finally {
      await cluster.stop();
    }
  });
});
