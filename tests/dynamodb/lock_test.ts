// DynamoDB locks and the stream, beyond the conformance kit: a lost lock, a
// dead holder taken over by the waiter's own clock, waiting without
// hammering the table, tryLock's takeover rule, the fence's ConditionCheck,
// and watches that outlive a disabled stream.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type AttributeValue,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  UpdateTableCommand,
} from "@aws-sdk/client-dynamodb";
import { LockLostError } from "../../mod.ts";
// From the kit's entry: under Node it is the npm build's, as the stores are.
import { pauseLock } from "../../testing/mod.ts";
import {
  localClient,
  readWithin,
  spyOn,
  useDynamoDB,
} from "../services/dynamodb.ts";

/** Scheduling slack of a loaded test machine, as in the conformance kit. */
const SLACK_MS = 1_500;

const local = useDynamoDB("locks");
const open = local.open;

const lockKey = (key: string) => ({
  pk: { S: `/lock/${key.split("/")[0]}` },
  key: { S: key },
});

/** Writes a lock item by hand, as a holder elsewhere would have. */
async function holdElsewhere(
  key: string,
  fields: { lockedUntil: number; leaseMs: number },
): Promise<void> {
  const item: Record<string, AttributeValue> = {
    ...lockKey(key),
    owner: { S: "a process elsewhere" },
    heartbeat: { S: "its last heartbeat" },
    leaseMs: { N: String(fields.leaseMs) },
    lockedUntil: { N: String(fields.lockedUntil) },
  };
  await localClient(local.service).send(
    new PutItemCommand({ TableName: "locks", Item: item }),
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("DynamoDB locks and the stream", () => {
  test("a lock item sits beside the key and is gone after unlock", async () => {
    const store = await open();
    const lock = await store.lock("jobs/a", { value: "me" });
    const client = localClient(local.service);
    const held = await client.send(
      new GetItemCommand({ TableName: "locks", Key: lockKey("jobs/a") }),
    );
    assert.equal(held.Item?.leaseMs.N, "20000");
    assert.equal(typeof held.Item?.owner.S, "string");
    await lock.unlock();
    const released = await client.send(
      new GetItemCommand({ TableName: "locks", Key: lockKey("jobs/a") }),
    );
    assert.equal(released.Item, undefined);
    assert.equal(
      new TextDecoder().decode((await store.get("jobs/a"))!.value),
      "me",
    );
  });

  test("a lock whose renewal finds another owner reports lost", async () => {
    const store = await open();
    const lock = await store.lock("jobs/b", { ttl: 1_500 });
    await holdElsewhere("jobs/b", {
      lockedUntil: Date.now() + 60_000,
      leaseMs: 60_000,
    });
    const started = Date.now();
    while (!lock.lost.aborted && Date.now() - started < 1_500 + SLACK_MS) {
      await sleep(25);
    }
    assert.ok(lock.lost.aborted, "lost within a renewal period");
    assert.ok(lock.lost.reason instanceof LockLostError);
    // Unlocking a lost lock says so, and does not free the new owner's lock.
    // Unlocking a lost lock says so.
    await assert.rejects(lock.unlock(), LockLostError);
    const item = await localClient(local.service).send(
      new GetItemCommand({ TableName: "locks", Key: lockKey("jobs/b") }),
    );
    assert.equal(item.Item?.owner.S, "a process elsewhere");
  });

  test("a holder dead for long is taken over at once", async () => {
    const store = await open();
    // Its lockedUntil is a minute past, far beyond maxClockSkew, but its
    // lease is ten minutes: only the lockedUntil rule can free it at once.
    const leaseMs = 600_000;
    await holdElsewhere("jobs/c", {
      lockedUntil: Date.now() - 60_000,
      leaseMs,
    });
    const started = Date.now();
    const lock = await store.lock("jobs/c", {
      signal: AbortSignal.timeout(60_000),
    });
    const took = Date.now() - started;
    // "At once" is "without waiting for the lease": a waiter that waited
    // for it would take ten minutes, so a twentieth of it cannot be reached
    // by a few requests on any machine, however loaded.
    assert.ok(took < leaseMs / 20, `took ${took} ms`);
    await lock.unlock();
  });

  test("a holder whose clock runs ahead is taken over after a lease without heartbeat", async () => {
    const store = await open();
    // Its lockedUntil says an hour from now, but it never renews.
    await holdElsewhere("jobs/d", {
      lockedUntil: Date.now() + 3_600_000,
      leaseMs: 1_500,
    });
    const started = Date.now();
    assert.equal(store.streaming, true);
    const lock = await store.lock("jobs/d", {
      signal: AbortSignal.timeout(20_000),
    });
    const took = Date.now() - started;
    // Not before the lease (a lower bound, which load can only raise).
    assert.ok(
      took >= 1_400,
      `taken after ${took} ms, before the lease ran out`,
    );
    // Nor at the waiter's next re-check 5 s after its first try (the
    // stream's safety net, STREAM_RECHECK_MS in backends/dynamodb/lock.ts):
    // the lease's end is what wakes it, then a read and a transaction,
    // which get 3 s here on a loaded machine. The hour of lockedUntil is
    // out of reach anyway.
    assert.ok(took < 4_500, `took ${took} ms`);
    await lock.unlock();
  });

  test("tryLock takes a long-dead holder at once, but not one that only stopped heartbeating", async () => {
    const store = await open();
    // lockedUntil a minute past: the rule a waiter takes over by at once.
    await holdElsewhere("try/dead", {
      lockedUntil: Date.now() - 60_000,
      leaseMs: 600_000,
    });
    const lock = await store.tryLock("try/dead", { value: "mine" });
    assert.ok(lock, "taken over at once");
    await lock.unlock();
    // lockedUntil an hour ahead: only a waiter watching its heartbeat for a
    // lease may take it, which tryLock does not wait for.
    await holdElsewhere("try/ahead", {
      lockedUntil: Date.now() + 3_600_000,
      leaseMs: 1_000,
    });
    await sleep(1_100);
    assert.equal(await store.tryLock("try/ahead"), null);
    const item = await localClient(local.service).send(
      new GetItemCommand({ TableName: "locks", Key: lockKey("try/ahead") }),
    );
    assert.equal(item.Item?.owner.S, "a process elsewhere", "left untouched");
  });

  test("a fence fails once another owner's lock item replaced the lease's", async () => {
    const store = await open();
    const lock = await store.lock("fence/a", { ttl: 60_000 });
    await store.put("fence/data", "held", { fence: lock });
    // Not a takeover by this library: only the server knows of it.
    await holdElsewhere("fence/a", {
      lockedUntil: Date.now() + 60_000,
      leaseMs: 60_000,
    });
    const result = await store.atomic().checkLock(lock)
      .put("fence/data", "stale").commit();
    assert.equal(result.ok, false);
    await assert.rejects(
      store.put("fence/data", "stale", { fence: lock }),
      LockLostError,
    );
    assert.equal(
      new TextDecoder().decode((await store.get("fence/data"))!.value),
      "held",
    );
  });

  test("a paused holder's fence fails once its lockedUntil is maxClockSkew past, taken over or not", async () => {
    const store = await open({ maxClockSkew: 200 });
    const ttl = 1_000;
    const lock = await store.lock("fence/b", { ttl });
    pauseLock(lock);
    await store.put("fence/data", "in time", { fence: lock });
    await sleep(ttl + 200 + 300);
    // No one took it over: the lock item is still the lease's, but a
    // contender could take it at once, so it is no longer held.
    const item = await localClient(local.service).send(
      new GetItemCommand({ TableName: "locks", Key: lockKey("fence/b") }),
    );
    assert.equal(typeof item.Item?.owner.S, "string");
    await assert.rejects(
      store.put("fence/data", "late", { fence: lock }),
      LockLostError,
    );
    assert.equal(
      new TextDecoder().decode((await store.get("fence/data"))!.value),
      "in time",
    );
    await lock.unlock().catch(() => {});
  });

  for (const mode of ["streams", "polling"] as const) {
    test(`a waiter does not hammer the table (${mode})`, async () => {
      const holder = await open({ watchMode: mode });
      const client = localClient(local.service);
      const waiter = await open({ client, watchMode: mode });
      const held = await holder.lock(`jobs/${mode}`, { ttl: 20_000 });
      const requests = spyOn(client);
      const waiting = waiter.lock(`jobs/${mode}`);
      await sleep(3_000);
      const attempts = requests.length;
      await held.unlock();
      const lock = await waiting;
      await lock.unlock();
      // With the stream, an attempt and nothing more while nothing changes;
      // polling backs off to about one attempt a second.
      const most = mode === "streams" ? 2 : 15;
      assert.ok(attempts <= most, `${attempts} requests in 3 s`);
    });
  }

  test("a lock item deleted by hand frees the lock for a waiter", async () => {
    const holder = await open();
    const waiter = await open();
    await holder.lock("jobs/e", { ttl: 60_000 });
    // Freed by the deletion, not by the holder's 60 s lease: half of it.
    const waiting = waiter.lock("jobs/e", {
      signal: AbortSignal.timeout(30_000),
    });
    await sleep(200);
    await localClient(local.service).send(
      new DeleteItemCommand({ TableName: "locks", Key: lockKey("jobs/e") }),
    );
    await (await waiting).unlock();
  });

  test("watches go on by polling when the table's stream is disabled", async () => {
    const store = await open({ table: "disabled", pollInterval: 100 });
    assert.equal(store.streaming, true);
    const reader = store.watch("w/k").getReader();
    const tree = store.watchTree("w").getReader();
    assert.equal(await readWithin(reader), null);
    assert.deepEqual(await readWithin(tree), []);
    await localClient(local.service).send(
      new UpdateTableCommand({
        TableName: "disabled",
        StreamSpecification: { StreamEnabled: false },
      }),
    );
    await sleep(1_000);
    assert.equal(store.streaming, false);
    await store.put("w/k", "after");
    const next = await readWithin(reader);
    assert.equal(new TextDecoder().decode(next!.value), "after");
    assert.deepEqual((await readWithin(tree)).map((p) => p.key), ["w/k"]);
    await reader.cancel();
    await tree.cancel();
    // New watches and lock waiters poll from the start.
    const later = store.watch("w/k").getReader();
    assert.equal(
      new TextDecoder().decode((await readWithin(later))!.value),
      "after",
    );
    await later.cancel();
    await (await store.lock("w/lock")).unlock();
  });
});
