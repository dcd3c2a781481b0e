// Watches on Consul are blocking queries: they end at once when cancelled,
// ride out an agent that goes away, follow an index that goes backwards, and
// say so when they cannot go on. Against the Consul double, which can stop
// listening and restore snapshots.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { StoreError } from "../../mod.ts";
import { ConsulStore } from "../../backends/consul/mod.ts";
import { type ConsulDouble, startConsulDouble } from "../consul_double/mod.ts";
import { waitUntil } from "../services/process.ts";
import { StreamReader } from "../../testing/harness.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const text = (pair: { value: Uint8Array } | null) =>
  pair && new TextDecoder().decode(pair.value);

describe("watches on Consul", () => {
  let consul: ConsulDouble;
  let store: ConsulStore;
  let writer: ConsulStore;

  before(async () => {
    consul = await startConsulDouble({ sessionTtlMinMs: 1_000 });
    store = await ConsulStore.connect({
      endpoints: [consul.address],
      sessionTtlMin: 1_000,
      retryTimeout: 1_500,
    });
    writer = await ConsulStore.connect({ endpoints: [consul.address] });
  });

  after(async () => {
    await store.close();
    await writer.close();
    await consul.close();
  });

  test("cancelling a watch ends its blocking query at once", async () => {
    const before = consul.waiting;
    const watch = new StreamReader(store.watch("w/cancel"));
    const tree = new StreamReader(store.watchTree("w"));
    await watch.next();
    await tree.next();
    await waitUntil(
      "both watches block",
      10_000,
      () => consul.waiting === before + 2,
    );
    await watch.cancel();
    await tree.cancel();
    // A query that cancel did not abort would go on for its 60 s wait (the
    // default watchWait): a sixth of it is "at once" on any machine.
    await waitUntil(
      "their queries end",
      10_000,
      () => consul.waiting === before,
    );
  });

  test("a watch rides out an agent that goes away and reports what changed meanwhile", async () => {
    await writer.put("w/away", "before");
    const watch = new StreamReader(store.watch("w/away"));
    const tree = new StreamReader(store.watchTree("w/away-tree"));
    assert.equal(text(await watch.next()), "before");
    assert.deepEqual(await tree.next(), []);
    await consul.stopListening();
    await sleep(500);
    await consul.listen();
    await writer.put("w/away", "after");
    await writer.put("w/away-tree/k", "k");
    assert.equal(text(await watch.until((p) => text(p) === "after")), "after");
    assert.equal(
      (await tree.until((l) => l.length === 1))[0].key,
      "w/away-tree/k",
    );
    await watch.cancel();
    await tree.cancel();
  });

  test("a watch that cannot reach Consul for retryTimeout errors its stream and says why", async () => {
    const watch = new StreamReader(store.watch("w/gone"));
    assert.equal(await watch.next(), null);
    await consul.stopListening();
    try {
      // Given up after the 1.5 s retryTimeout asked for, and within 10 s,
      // well before the 30 s default a watch that ignored it would retry.
      const error = await watch.failure(10_000);
      assert.ok(error instanceof StoreError, String(error));
      const failedFor = /failed for (\d+\.\d) s/.exec((error as Error).message);
      assert.ok(failedFor, (error as Error).message);
      // Not before the retryTimeout (a lower bound, which load only raises).
      assert.ok(Number(failedFor[1]) >= 1.5, (error as Error).message);
    } finally {
      await consul.listen();
    }
  });

  test("after a snapshot restore a tree watch reports the restored tree and a key watch stops with an error", async () => {
    // A query on an index the restore took away blocks until its wait ends
    // and only then answers the lower index; a short wait keeps this short.
    const quick = await ConsulStore.connect({
      endpoints: [consul.address],
      watchWait: 1_000,
    });
    await writer.put("w/snap/k", "old");
    const saved = await (await fetch(`${consul.url}/v1/snapshot`)).text();
    await writer.put("w/snap/k", "new");
    const watch = new StreamReader(quick.watch("w/snap/k"));
    const tree = new StreamReader(quick.watchTree("w/snap"));
    assert.equal(text(await watch.next()), "new");
    assert.equal(text((await tree.next())[0]), "new");
    const restored = await fetch(`${consul.url}/v1/snapshot`, {
      method: "PUT",
      body: saved,
    });
    await restored.text();
    assert.equal(text((await tree.next())[0]), "old");
    const error = await watch.failure();
    assert.ok(error instanceof StoreError);
    assert.match((error as Error).message, /went backwards/);
    // Blocking on the lower index, the tree watch still hears changes.
    await writer.put("w/snap/k", "after");
    assert.equal(text((await tree.next())[0]), "after");
    await tree.cancel();
    await quick.close();
  });
});
