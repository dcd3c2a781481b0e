// A 3-server ZooKeeper ensemble whose members reach each other through
// proxies (tests/services/zookeeper.ts, peerLinks): its leader, cut off from
// the other two while its clients still reach it, answers no read with its
// old state, the others elect a leader, and it rejoins when healed. Its own
// file: the proxies run in the test's process, which no other test's work
// should slow.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  fourLetter,
  startZookeeperEnsemble,
  type ZookeeperEnsemble,
} from "../services/zookeeper.ts";
import { readFromDeposed } from "./deposed.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("a 3-server zookeeper ensemble with proxied member links", () => {
  let isolated: ZookeeperEnsemble;
  before(async () => {
    isolated = await startZookeeperEnsemble({ size: 3, peerLinks: true });
  });
  after(async () => {
    await isolated?.stop();
  });

  test("a leader cut off from the other members answers no read with its old state, and rejoins when healed", async () => {
    await readFromDeposed(
      isolated,
      "isolated",
      (leader) => isolated.isolate(leader),
      () => isolated.heal(),
      async (leader) => {
        const replies = await Promise.all(
          isolated.ports.map((port, i) =>
            i === leader ? "" : fourLetter(port, "srvr").catch(() => "")
          ),
        );
        assert.ok(
          replies.some((reply) => /Mode: leader/.test(reply)),
          "the others elected a leader",
        );
      },
    );
    // Healed, the isolated member serves again (as a follower).
    let serving: number[] = [];
    for (let i = 0; i < 300 && serving.length < 3; i++) {
      serving = await isolated.serving();
      if (serving.length < 3) await sleep(100);
    }
    assert.deepEqual(serving, [0, 1, 2]);
  });
});
