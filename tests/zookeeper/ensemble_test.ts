// A 3-server ZooKeeper ensemble on loopback with the server holding a
// store's session killed in the middle of a workload: the session moves to
// another server, writes go on, watches end on the final state, and the
// lock held through the session stays held. A leader paused answers no read
// with its old state.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  KeyModifiedError,
  type KVPair,
  openStore,
  StoreError,
} from "../../mod.ts";
import {
  startZookeeperEnsemble,
  type ZookeeperEnsemble,
} from "../services/zookeeper.ts";
import { readFromDeposed } from "./deposed.ts";
import { StreamReader } from "../../testing/harness.ts";

const text = (pair: { value: Uint8Array } | null) =>
  pair === null ? null : new TextDecoder().decode(pair.value);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Writes of the workload. */
const WRITES = 60;

let ensemble: ZookeeperEnsemble;
/** A server a test killed and has not restarted yet (it failed midway). */
let down: number | undefined;

describe("a 3-server zookeeper ensemble", () => {
  before(async () => {
    ensemble = await startZookeeperEnsemble({ size: 3 });
  });
  after(async () => {
    await ensemble?.stop();
  });

  test("killing the server of a store mid-workload moves its session; nothing is lost", async () => {
    // The longest session a 200 ms tick allows: time for an election.
    const url = `${ensemble.url}/ens?tickTime=200&sessionTimeout=4000`;
    await using a = await openStore(url);
    // a's session is the only one yet: find its server.
    let home = -1;
    let session = "";
    for (let i = 0; i < 3; i++) {
      const sessions = await ensemble.sessions(i);
      if (sessions.length > 0) [home, session] = [i, sessions[0]];
    }
    assert.ok(home >= 0, "a's session is on a server");
    await using b = await openStore(url);

    const lock = await a.lock("leader", { ttl: 4_000, value: "a" });
    const watch = new StreamReader(a.watch("counter"));
    const tree = new StreamReader(a.watchTree("items"));
    assert.equal(await watch.next(), null);
    assert.deepEqual(await tree.next(), []);
    const waiting = b.lock("leader", { value: "b" });
    // Awaited below; if an assertion fails first, b's close at scope exit
    // rejects it, and that must not hide the assertion's failure.
    waiting.catch(() => {});
    await b.put("cas", "0");

    // a writes in order; b increments a counter with compare-and-set.
    const writer = (async () => {
      for (let i = 1; i <= WRITES; i++) {
        await a.put("counter", String(i));
        await a.put(`items/${i % 5}`, String(i));
        await sleep(10);
      }
    })();
    let applied = 0;
    let unknown = 0;
    const incrementer = (async () => {
      for (let j = 0; j < 30; j++) {
        const current = (await b.get("cas"))!;
        try {
          await b.atomicPut("cas", String(Number(text(current)) + 1), current);
          applied++;
        } catch (error) {
          if (error instanceof KeyModifiedError) continue;
          // In flight when the server died: ZooKeeper cannot say.
          assert.ok(error instanceof StoreError, String(error));
          assert.match(error.message, /may or may not have been applied/);
          unknown++;
        }
        await sleep(10);
      }
    })();
    await sleep(300);
    await ensemble.kill(home);
    down = home;
    await Promise.all([writer, incrementer]);

    // The session moved to a server still up, under the same id.
    let moved = -1;
    for (let i = 0; i < 3; i++) {
      if ((await ensemble.sessions(i)).includes(session)) moved = i;
    }
    assert.ok(moved >= 0 && moved !== home, `the session is on ${moved}`);

    // Watches end on the final state.
    assert.equal(
      text(await watch.until((pair) => text(pair) === String(WRITES))),
      String(WRITES),
    );
    const items = await a.list("items");
    const last = await tree.until(
      (pairs: KVPair[]) =>
        JSON.stringify(pairs.map(text)) === JSON.stringify(items.map(text)),
    );
    assert.equal(last.length, 5);
    const total = Number(text(await a.get("cas")));
    assert.ok(
      total >= applied && total <= applied + unknown,
      `${total} increments, ${applied} known and ${unknown} unknown`,
    );

    // The lock lived through it: a still holds it, b still waits.
    assert.equal(lock.lost.aborted, false);
    assert.equal(text(await b.get("leader")), "a");
    await lock.unlock();
    const taken = await waiting;
    assert.equal(text(await a.get("leader")), "b");
    await taken.unlock();
    await watch.cancel();
    await tree.cancel();
    // The next test needs all three.
    await ensemble.restart(home);
    down = undefined;
  });

  test("a leader replaced while it was paused answers no read with its old state", async () => {
    // ZooKeeper's `sync` does not go through a quorum (ZOOKEEPER-1675): a
    // leader paused past `syncLimit` (10 ticks of 200 ms) has been replaced
    // when it runs again, and answers what its clients sent meanwhile from
    // its own state until its next tick tells it. A consistent read must
    // not: its barrier is a transaction the old leader cannot commit.
    if (down !== undefined) {
      // Not to fail for the previous test's failure too.
      await ensemble.restart(down);
      down = undefined;
    }
    await readFromDeposed(
      ensemble,
      "deposed",
      (leader) => ensemble.pause(leader),
      (leader) => ensemble.resume(leader),
    );
  });
});
