// etcd writes whose reply is lost: the proxy passes the request and drops
// etcd's answer, then the connection goes. A write that may have landed is
// never sent again as it was (a second landing would get a later revision,
// over any write between): where nothing else wrote the key, the store finds
// its own write and answers the revision readers saw; where another client
// wrote since, it says the write may or may not have been applied, and the
// other client's write stays. Found by a recorded run (a put answered with
// another revision than the one a reader had seen for its value, after the
// leader was killed).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openStore, type Store } from "../../mod.ts";
import { eventually, text } from "../../testing/harness.ts";
import { type EtcdService, startEtcd } from "../services/etcd.ts";
import { startTcpProxy, type TcpProxy } from "../services/tcp_proxy.ts";

describe("etcd writes whose reply was lost", () => {
  let etcd: EtcdService;
  let proxy: TcpProxy;
  let store: Store;
  let direct: Store;
  before(async () => {
    etcd = await startEtcd();
    proxy = await startTcpProxy(etcd.port);
    store = await openStore(`etcd://127.0.0.1:${proxy.port}`, {
      prefix: "lost",
    });
    direct = await openStore(etcd.url, { prefix: "lost" });
  });
  after(async () => {
    await store?.close();
    await direct?.close();
    await proxy?.close();
    await etcd?.stop();
  });

  // Starts `write` with the replies lost, waits (bounded) until `landed`
  // says etcd applied it, runs `meanwhile`, then lets replies through; the
  // write's call is handed back unsettled.
  async function lostReply<T>(
    write: () => Promise<T>,
    landed: () => Promise<boolean>,
    meanwhile?: () => Promise<unknown>,
  ): Promise<{ call: Promise<T> }> {
    proxy.loseReplies();
    const pending = write();
    pending.catch(() => {});
    try {
      await eventually("the write landing", 10_000, landed);
      await meanwhile?.();
    } finally {
      await proxy.resume();
    }
    return { call: pending };
  }

  test("a put whose reply was lost answers the revision it landed at, landing once", async () => {
    await store.put("a", "1");
    const put = await lostReply(
      () => store.put("a", "2"),
      async () => text(await direct.get("a")) === "2",
    );
    const seen = (await direct.get("a"))!.lastIndex;
    assert.equal(await put.call, seen);
    assert.equal((await direct.get("a"))!.lastIndex, seen);
  });

  test("a put whose reply was lost, the key written by another client since: it may or may not have been applied, and the other write stays", async () => {
    await store.put("b", "1");
    const put = await lostReply(
      () => store.put("b", "2"),
      async () => text(await direct.get("b")) === "2",
      () => direct.put("b", "3"),
    );
    await assert.rejects(put.call, /may or may not have been applied/);
    assert.equal(text(await direct.get("b")), "3");
  });

  test("a delete whose reply was lost, the key written again since: the new value stays", async () => {
    await store.put("c", "1");
    const deleted = await lostReply(
      () => store.delete("c"),
      async () => (await direct.get("c")) === null,
      () => direct.put("c", "again"),
    );
    await assert.rejects(deleted.call, /may or may not have been applied/);
    assert.equal(text(await direct.get("c")), "again");
  });

  test("a putMany whose reply was lost answers the revision it landed at", async () => {
    await store.put("d/0", "0");
    const written = await lostReply(
      () =>
        store.putMany([{ key: "d/1", value: "1" }, { key: "d/2", value: "2" }]),
      async () => text(await direct.get("d/2")) === "2",
    );
    const seen = (await direct.get("d/1"))!.lastIndex;
    assert.deepEqual(await written.call, [seen, seen]);
    assert.equal((await direct.get("d/2"))!.lastIndex, seen);
  });
});
