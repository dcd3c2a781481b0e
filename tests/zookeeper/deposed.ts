// A leader made unable to commit must answer no read with its old state:
// the scenario the ensemble tests share, with the fault as a parameter.
import assert from "node:assert/strict";
import { type KVPair, NotReachableError, openStore } from "../../mod.ts";
import type { ZookeeperEnsemble } from "../services/zookeeper.ts";

const text = (pair: { value: Uint8Array } | null) =>
  pair === null ? null : new TextDecoder().decode(pair.value);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Makes the leader unable to commit (`fault`: paused, or cut off from the
 * other members), has the others acknowledge a write meanwhile (after
 * `meanwhile`, which may check the ensemble), and sends a consistent read
 * to the old leader alone before `heal`: the read must see the write.
 */
export async function readFromDeposed(
  ensemble: ZookeeperEnsemble,
  chroot: string,
  fault: (leader: number) => void,
  heal: (leader: number) => Promise<void> | void,
  meanwhile?: (leader: number) => Promise<void>,
): Promise<void> {
  let leader: number | undefined;
  for (let i = 0; i < 100 && leader === undefined; i++) {
    leader = await ensemble.leader();
    if (leader === undefined) await sleep(100);
  }
  assert.ok(leader !== undefined, "the ensemble has a leader");
  const others = ensemble.ports.filter((_, i) => i !== leader)
    .map((port) => `127.0.0.1:${port}`).join(",");
  const options = "tickTime=200&sessionTimeout=4000";
  // `stale` can only talk to the leader, `writer` only to the others.
  await using stale = await openStore(
    `zk://127.0.0.1:${ensemble.ports[leader]}/${chroot}?${options}`,
  );
  await using writer = await openStore(`zk://${others}/${chroot}?${options}`);
  await writer.put("k", "before");
  assert.equal(text(await stale.get("k")), "before");

  let read: Promise<KVPair | null>;
  fault(leader);
  try {
    // Acknowledged only once the others have elected a new leader: the
    // old one can commit nothing. Cut off (not paused), it still takes the
    // others' connections and answers none, so they may first wait out
    // ZooKeeper's initLimit trying to follow it again; meanwhile a store
    // that has reached no server for its connectTimeout fails calls at
    // once, hence the pause between tries.
    for (let attempt = 1;; attempt++) {
      try {
        await writer.put("k", "after", { signal: AbortSignal.timeout(2_000) });
        break;
      } catch (error) {
        if (attempt >= 100) throw error;
        await sleep(200);
      }
    }
    await meanwhile?.(leader);
    read = stale.get("k");
    read.catch(() => {});
    // On its way to the old leader before it can reach the others again.
    await sleep(100);
  } finally {
    await heal(leader);
  }
  // Never the old state: the new value, or no answer when the old leader,
  // rejoining, took longer than the store's connectTimeout (a loaded
  // machine).
  const answer = await read.then((pair) => text(pair), (error) => error);
  if (answer instanceof Error) {
    assert.ok(answer instanceof NotReachableError, String(answer));
  } else {
    assert.equal(answer, "after");
  }
  // Once the old leader answers again, it answers with the new value.
  for (let attempt = 1;; attempt++) {
    try {
      assert.equal(text(await stale.get("k")), "after");
      return;
    } catch (error) {
      if (!(error instanceof NotReachableError) || attempt >= 100) throw error;
      await sleep(300);
    }
  }
}
