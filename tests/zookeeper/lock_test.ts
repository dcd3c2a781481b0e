// Pausing ZooKeeper locks (the kit's `pauseLock`) where locks share
// sessions: a lock whose ttl is the store's session timeout lives in the
// store's own session, and locks of one other ttl share one session. Pausing
// one of them must let that lock go (another handle takes it, the server
// refuses its fenced writes) without losing the others or the store.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { LockLostError, openStore, type Store } from "../../mod.ts";
// From the kit's entry: under Node it is the npm build's, as the stores are.
import { pauseLock } from "../../testing/mod.ts";
import {
  startZookeeper,
  type ZookeeperService,
} from "../services/zookeeper.ts";

const text = (pair: { value: Uint8Array } | null) =>
  pair === null ? null : new TextDecoder().decode(pair.value);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The store's session timeout (10 ticks of 200 ms). */
const SESSION_MS = 2_000;

/** Another lock ttl, so those locks share a lock session of their own. */
const OTHER_TTL_MS = 1_500;

/** How long another handle may wait for a paused lock: its ttl and slack. */
const TAKE_WITHIN_MS = SESSION_MS + 5_000;

let server: ZookeeperService;

describe("zookeeper: pausing locks that share a session", () => {
  before(async () => {
    server = await startZookeeper();
  });
  after(async () => {
    await server?.stop();
  });

  const open = (name: string): Promise<Store> =>
    openStore(
      `${server.url}/${name}?tickTime=200&sessionTimeout=${SESSION_MS}`,
    );

  for (
    const [what, ttl] of [
      ["the store's session", SESSION_MS],
      ["a lock session shared with another lock", OTHER_TTL_MS],
    ] as const
  ) {
    test(`a paused lock in ${what} goes; the others stay`, async () => {
      await using a = await open(`pause-${ttl}`);
      await using b = await open(`pause-${ttl}`);
      const paused = await a.lock("paused", { value: "a", ttl });
      const kept = await a.lock("kept", { value: "a", ttl });
      pauseLock(paused);
      const taken = await b.lock("paused", {
        value: "b",
        signal: AbortSignal.timeout(TAKE_WITHIN_MS),
      });
      assert.ok(taken.lastIndex > paused.lastIndex);
      await assert.rejects(
        a.put("data", "paused", { fence: paused }),
        LockLostError,
      );
      // The other lock of the session is still held, and says so.
      await sleep(ttl);
      assert.equal(kept.lost.aborted, false);
      await a.put("data", "kept", { fence: kept });
      assert.equal(text(await b.get("data")), "kept");
      assert.equal(await b.tryLock("kept"), null, "still held");
      await taken.unlock();
      await kept.unlock();
      await paused.unlock().catch(() => {});
    });
  }

  test("a paused lock alone in its session lets the session expire", async () => {
    await using a = await open("alone");
    await using b = await open("alone");
    const paused = await a.lock("paused", { value: "a", ttl: OTHER_TTL_MS });
    pauseLock(paused);
    // A new lock of that ttl gets a session of its own, not the paused one.
    const fresh = await a.lock("fresh", { value: "a", ttl: OTHER_TTL_MS });
    const taken = await b.lock("paused", {
      value: "b",
      signal: AbortSignal.timeout(TAKE_WITHIN_MS),
    });
    await assert.rejects(
      a.put("data", "paused", { fence: paused }),
      LockLostError,
    );
    await sleep(OTHER_TTL_MS);
    assert.equal(fresh.lost.aborted, false);
    await a.put("data", "fresh", { fence: fresh });
    await taken.unlock();
    await fresh.unlock();
    await paused.unlock().catch(() => {});
  });

  test("a failed tryLock in a lock session leaves no node behind", async () => {
    await using a = await open("try");
    await using b = await open("try");
    const held = await a.lock("held", { ttl: OTHER_TTL_MS });
    for (let i = 0; i < 3; i++) {
      assert.equal(await b.tryLock("held", { ttl: OTHER_TTL_MS }), null);
      assert.equal(await b.tryLock("held"), null);
    }
    await held.unlock();
    // A leftover contender node would hold the lock up.
    const next = await b.tryLock("held");
    assert.ok(next, "free at once after the release");
    await next.unlock();
  });
});
