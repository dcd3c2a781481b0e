// Locks on Consul: a waiter blocks on the key instead of polling, a holder
// hears at once when its session or key is taken away, and waiting survives
// an agent that goes away. Against the Consul double.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { LockLostError } from "../mod.ts";
import { ConsulStore } from "../backends/consul/mod.ts";
import { type ConsulDouble, startConsulDouble } from "./consul_double/mod.ts";
import { waitUntil } from "./services/process.ts";

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
    const options = { address: consul.address, sessionTtlMin: 1_000 };
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
    const waiting = b.lock("l/quiet", { ttl: 60_000 });
    await sleep(300);
    const before = consul.requests;
    await sleep(2_000);
    // Nothing changes, so nothing is asked: at most a session renewal.
    assert.ok(
      consul.requests - before <= 2,
      `${consul.requests - before} requests`,
    );
    const released = Date.now();
    await held.unlock();
    const lock = await waiting;
    assert.ok(Date.now() - released < 1_000, "the waiter hears the release");
    await lock.unlock();
  });

  test("a holder whose session is destroyed by someone else loses the lock at once", async () => {
    const lock = await a.lock("l/destroyed");
    const session = await sessionOf(consul, "l/destroyed");
    await (await fetch(`${consul.url}/v1/session/destroy/${session}`, {
      method: "PUT",
    })).text();
    await waitUntil("lost", 1_000, () => lock.lost.aborted);
    assert.ok(lock.lost.reason instanceof LockLostError);
    await lock.unlock();
    const next = await b.lock("l/destroyed", {
      signal: AbortSignal.timeout(2_000),
    });
    await next.unlock();
  });

  test("a holder whose key is deleted by another client loses the lock at once", async () => {
    const lock = await a.lock("l/deleted");
    await b.delete("l/deleted");
    await waitUntil("lost", 1_000, () => lock.lost.aborted);
    await lock.unlock();
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
    await put(`/session/destroy/${ID}`);
    const released = Date.now();
    const lock = await a.lock("l/delayed", {
      signal: AbortSignal.timeout(5_000),
    });
    const took = Date.now() - released;
    assert.ok(took >= 500, `took the lock after ${took} ms, within the delay`);
    assert.ok(took < 2_000, `took ${took} ms`);
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
});
