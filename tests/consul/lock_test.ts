// Locks on Consul: a waiter blocks on the key instead of polling, a holder
// hears at once when its session or key is taken away, and waiting survives
// an agent that goes away. Against the Consul double.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { LockLostError } from "../../mod.ts";
// From the kit's entry: under Node it is the npm build's, as the stores are.
import { pauseLock } from "../../testing/mod.ts";
import { ConsulStore } from "../../backends/consul/mod.ts";
import { LOCK_RECHECK_MS } from "../../backends/consul/lock.ts";
import { type ConsulDouble, startConsulDouble } from "../consul_double/mod.ts";
import { waitUntil } from "../services/process.ts";

/**
 * How long a holder may take to hear that its lock was taken away: its locks
 * here have a 60 s TTL, so the first renewal (which would also find out)
 * comes only after 20 s, and within half of that only the blocking query on
 * the key can have told it, however loaded the machine.
 */
const HEARS_WITHIN_MS = 10_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function sessionOf(consul: ConsulDouble, key: string): Promise<string> {
  const response = await fetch(`${consul.url}/v1/kv/${key}`);
  return (await response.json())[0].Session;
}

describe("locks on Consul", () => {
  let consul: ConsulDouble;
  let a: ConsulStore;
  let b: ConsulStore;

  before(async () => {
    consul = await startConsulDouble({ sessionTtlMinMs: 1_000 });
    const options = { endpoints: [consul.address], sessionTtlMin: 1_000 };
    a = await ConsulStore.connect(options);
    b = await ConsulStore.connect(options);
  });

  after(async () => {
    await a.close();
    await b.close();
    await consul.close();
  });

  test("a waiter blocks on the key and does not poll", async () => {
    const held = await a.lock("l/quiet", { ttl: 60_000 });
    const waitStarted = Date.now();
    const waiting = b.lock("l/quiet", { ttl: 60_000 });
    await sleep(300);
    const before = consul.requests;
    await sleep(2_000);
    // Nothing changes, so nothing is asked: at most a session renewal.
    assert.ok(
      consul.requests - before <= 2,
      `${consul.requests - before} requests`,
    );
    await held.unlock();
    const lock = await waiting;
    // A waiter that did not hear the release would try again only 15 s
    // after its last try (LOCK_RECHECK_MS), which came after waitStarted.
    const took = Date.now() - waitStarted;
    assert.ok(
      took < LOCK_RECHECK_MS,
      `the waiter hears the release (${took} ms of waiting)`,
    );
    await lock.unlock();
  });

  test("a holder whose session is destroyed by someone else loses the lock at once", async () => {
    const lock = await a.lock("l/destroyed", { ttl: 60_000 });
    const session = await sessionOf(consul, "l/destroyed");
    await (await fetch(`${consul.url}/v1/session/destroy/${session}`, {
      method: "PUT",
    })).text();
    await waitUntil("lost", HEARS_WITHIN_MS, () => lock.lost.aborted);
    assert.ok(lock.lost.reason instanceof LockLostError);
    // Unlocking a lost lock says so.
    await assert.rejects(lock.unlock(), LockLostError);
    // Released with the session: free at once, not after the 60 s TTL.
    const next = await b.lock("l/destroyed", {
      signal: AbortSignal.timeout(HEARS_WITHIN_MS),
    });
    await next.unlock();
  });

  test("a holder whose key is deleted by another client loses the lock at once", async () => {
    const lock = await a.lock("l/deleted", { ttl: 60_000 });
    await b.delete("l/deleted");
    await waitUntil("lost", HEARS_WITHIN_MS, () => lock.lost.aborted);
    // Unlocking a lost lock says so.
    await assert.rejects(lock.unlock(), LockLostError);
  });

  test("a lock delay left by another client's session is waited out", async () => {
    // A Consul-native client's lock, whose session sets a lock delay.
    const put = (path: string, body?: string) =>
      fetch(`${consul.url}/v1${path}`, { method: "PUT", body }).then((r) =>
        r.json()
      );
    const { ID } = await put(
      "/session/create",
      JSON.stringify({ LockDelay: "600ms" }),
    );
    assert.equal(await put(`/kv/l/delayed?acquire=${ID}`, "theirs"), true);
    // Counted from before the destroy: the delay starts when Consul ends the
    // session, which is no earlier, so a slow answer cannot shorten it.
    const released = Date.now();
    await put(`/session/destroy/${ID}`);
    const lock = await a.lock("l/delayed", {
      signal: AbortSignal.timeout(LOCK_RECHECK_MS),
    });
    const took = Date.now() - released;
    assert.ok(took >= 550, `took the lock after ${took} ms, within the delay`);
    // Retried when the delay ran out, not at the 15 s re-check.
    assert.ok(took < LOCK_RECHECK_MS / 3, `took ${took} ms`);
    await lock.unlock();
  });

  test("a waiting lock rides out an agent that goes away", async () => {
    const held = await a.lock("l/outage", { ttl: 10_000 });
    const waiting = b.lock("l/outage", { ttl: 10_000 });
    await sleep(200);
    await consul.stopListening();
    await sleep(700);
    await consul.listen();
    await held.unlock();
    const lock = await waiting;
    assert.equal(lock.lost.aborted, false);
    await lock.unlock();
  });

  test("tryLock of a held lock leaves no session behind", async () => {
    const sessions = async () =>
      (await (await fetch(`${consul.url}/v1/session/list`)).json()).length;
    const held = await a.lock("l/try", { ttl: 60_000 });
    const before = await sessions();
    for (let i = 0; i < 3; i++) assert.equal(await b.tryLock("l/try"), null);
    // Each attempt creates a session of its own; a null destroys it before
    // it resolves, so none is left to hold or renew anything.
    assert.equal(await sessions(), before, "each attempt's session destroyed");
    await held.unlock();
    const mine = await b.tryLock("l/try");
    assert.ok(mine, "free once released");
    await mine.unlock();
    assert.equal(await sessions(), before - 1, "the holder's went on unlock");
  });

  test("a fence is Consul's check-session: a lock whose session another client destroyed is refused", async () => {
    const lock = await a.lock("l/fence", { ttl: 60_000 });
    await a.put("l/data", "held", { fence: lock });
    // Frozen: the store neither renews it nor rules it lost on what its
    // monitor hears, so the fence reaches the server.
    pauseLock(lock);
    const session = await sessionOf(consul, "l/fence");
    await (await fetch(`${consul.url}/v1/session/destroy/${session}`, {
      method: "PUT",
    })).text();
    const requests = consul.requests;
    const result = await a.atomic().checkLock(lock).put("l/data", "late")
      .commit();
    assert.equal(result.ok, false);
    assert.ok(consul.requests > requests, "refused by the server");
    await assert.rejects(
      a.put("l/data", "later", { fence: lock }),
      LockLostError,
    );
    const value = (await a.get("l/data"))!.value;
    assert.equal(new TextDecoder().decode(value), "held");
    await lock.unlock().catch(() => {});
  });
});
