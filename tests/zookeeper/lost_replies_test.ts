// A `multi` in flight when the connection drops may or may not have landed.
// A fault run (a server SIGKILLed under 8 clients) found a put that landed,
// lost its reply, and was planned and sent again after another client's put:
// it landed twice, the second time over that acknowledged put, and a reader
// had seen the first landing. A commit must find out, after a barrier,
// whether its `multi` landed, and write again only if it did not.
//
// The lost reply is played here by a `Nodes` whose next `multi` is sent (or
// not), then fails with CONNECTIONLOSS, exactly as when the connection drops
// before the reply; other writers may write in between.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openStore, type Store } from "../../mod.ts";
// The class `commit()` throws: in the Node build the test's copy of the
// library is not the one `mod.ts` is built to.
import { StoreError } from "../../core/errors.ts";
import { commit } from "../../backends/zookeeper/commit.ts";
import { readConfig } from "../../backends/zookeeper/config.ts";
import { openSession } from "../../backends/zookeeper/connect.ts";
import { ZkError } from "../../backends/zookeeper/errors.ts";
import { Nodes } from "../../backends/zookeeper/nodes.ts";
import { Paths } from "../../backends/zookeeper/paths.ts";
import {
  Code,
  type MultiOp,
  type MultiResult,
} from "../../backends/zookeeper/protocol.ts";
import type { Session } from "../../backends/zookeeper/session.ts";
import type { AtomicStep } from "../../core/driver.ts";
import {
  startZookeeper,
  type ZookeeperService,
} from "../services/zookeeper.ts";

const ROOT = "/lost";

interface Loss {
  /** Whether the `multi` reaches the server before the connection drops. */
  lands: boolean;
  /** What other clients do before the loss is told. */
  meanwhile?: () => Promise<unknown>;
}

/** Nodes whose next `multi` loses its reply (see the file's comment). */
class LossyNodes extends Nodes {
  next: Loss | undefined;
  multis = 0;

  override async multi(
    ops: readonly MultiOp[],
    signal?: AbortSignal,
  ): Promise<{ zxid: bigint; results: MultiResult[] }> {
    // Barriers are multis too (a lone check): only writes count here.
    if (ops.some((op) => op.type !== "check")) this.multis++;
    else return super.multi(ops, signal);
    const loss = this.next;
    this.next = undefined;
    if (!loss) return super.multi(ops, signal);
    if (loss.lands) await super.multi(ops, signal);
    await loss.meanwhile?.();
    throw new ZkError(Code.connectionLoss);
  }
}

let server: ZookeeperService;
let store: Store;
let session: Session;
let nodes: LossyNodes;
const encoder = new TextEncoder();
const text = (pair: { value: Uint8Array } | null) =>
  pair === null ? null : new TextDecoder().decode(pair.value);
const put = (key: string, value: string): AtomicStep => ({
  type: "put",
  key,
  value: encoder.encode(value),
});

/** Runs `steps` with the first `multi` lost as `loss` says. */
function lossy(steps: AtomicStep[], loss: Loss, operation = "put") {
  nodes.next = loss;
  nodes.multis = 0;
  return commit(nodes, steps, { operation });
}

async function rejectsUnknown(promise: Promise<unknown>): Promise<void> {
  const error = await promise.then(() => undefined, (e) => e);
  assert.ok(error instanceof StoreError, String(error));
  assert.match(error.message, /may or may not have been applied/);
}

describe("zookeeper commits whose reply the connection lost", () => {
  before(async () => {
    server = await startZookeeper();
    store = await openStore(`${server.url}${ROOT}`);
    const config = readConfig([`127.0.0.1:${server.port}`], { chroot: ROOT });
    session = await openSession(config, config.sessionTimeout, undefined);
    nodes = new LossyNodes(session, new Paths(config.root), config.acl);
  });
  after(async () => {
    await session?.close();
    await store?.close();
    await server?.stop();
  });

  test("a put that landed is not written again over a later put", async () => {
    await store.put("p/k", "old");
    await rejectsUnknown(lossy([put("p/k", "mine")], {
      lands: true,
      meanwhile: () => store.put("p/k", "other"),
    }));
    assert.equal(text(await store.get("p/k")), "other");
    assert.equal(nodes.multis, 1, "nothing was sent again");
  });

  test("a put that created its key is not written again after a delete", async () => {
    await rejectsUnknown(lossy([put("c/k", "mine")], {
      lands: true,
      meanwhile: () => store.delete("c/k"),
    }));
    assert.equal(await store.get("c/k"), null);
  });

  test("a delete that landed does not delete a later put", async () => {
    await store.put("d/k", "old");
    await rejectsUnknown(lossy([{ type: "delete", key: "d/k" }], {
      lands: true,
      meanwhile: () => store.put("d/k", "other"),
    }, "delete"));
    assert.equal(text(await store.get("d/k")), "other");
  });

  test("a put that landed with nothing after it is shown by its node, with its index", async () => {
    await store.put("s/k", "old");
    const { outcome } = await lossy([put("s/k", "mine")], { lands: true });
    const pair = await store.get("s/k");
    assert.equal(text(pair), "mine");
    assert.deepEqual(outcome, { ok: true, lastIndex: pair!.lastIndex });
    assert.equal(nodes.multis, 1, "nothing was sent again");
    // Two keys: both last written by the one transaction.
    const batch = await lossy([put("s/a", "1"), put("s/b", "2")], {
      lands: true,
    });
    const [a, b] = await store.getMany(["s/a", "s/b"]);
    assert.equal(a!.lastIndex, b!.lastIndex);
    assert.deepEqual(batch.outcome, { ok: true, lastIndex: a!.lastIndex });
    assert.equal(nodes.multis, 1);
  });

  test("a delete that landed with nothing after it is shown by the key's absence", async () => {
    await store.put("e/k", "old");
    const { outcome } = await lossy([{ type: "delete", key: "e/k" }], {
      lands: true,
    }, "delete");
    assert.equal(outcome.ok, true);
    assert.equal(await store.get("e/k"), null);
    assert.equal(nodes.multis, 1);
  });

  test("a put that landed, then was overwritten with the same bytes, says it may not have", async () => {
    // Two writes since the read: not exactly its own.
    await store.put("t/k", "old");
    const error = await lossy([put("t/k", "mine")], {
      lands: true,
      meanwhile: () => store.put("t/k", "mine"),
    }).then(() => undefined, (e) => e);
    await rejectsUnknown(Promise.reject(error));
    // It says what it read, before and after: two writes, its bytes.
    assert.match(
      error.message,
      /t\/k: version (\d+), created 0x[0-9a-f]+, written 0x[0-9a-f]+ before, version (\d+), created 0x[0-9a-f]+, written 0x[0-9a-f]+, its bytes now; attempt \d+, 1 resent/,
    );
    const [, before, now] = /version (\d+).*version (\d+)/.exec(error.message)!;
    assert.equal(Number(now) - Number(before), 2);
    assert.equal(text(await store.get("t/k")), "mine");
  });

  test("a put that never reached the server is sent again, and lands once", async () => {
    await store.put("n/k", "old");
    const { outcome } = await lossy([put("n/k", "mine")], { lands: false });
    assert.equal(outcome.ok, true);
    const pair = await store.get("n/k");
    assert.equal(text(pair), "mine");
    assert.equal(outcome.ok && outcome.lastIndex, pair!.lastIndex);
    assert.equal(nodes.multis, 2);
  });

  test("a creation that never reached the server is sent again where its generation node shows it", async () => {
    // An overwrite makes the path's generation node, which every creation
    // at the path moves on: still where it was, it shows nothing was made.
    await store.put("g/k", "1");
    await store.put("g/k", "2");
    await store.delete("g/k");
    const { outcome } = await lossy([put("g/k", "mine")], { lands: false });
    assert.equal(outcome.ok, true);
    assert.equal(text(await store.get("g/k")), "mine");
    // A key of a fresh root has no generation node to tell by: unknown.
    const fresh = `${ROOT}-fresh`;
    const config = readConfig([`127.0.0.1:${server.port}`], { chroot: fresh });
    const other = new LossyNodes(session, new Paths(config.root), config.acl);
    other.next = { lands: false };
    await rejectsUnknown(
      commit(other, [put("k", "mine")], { operation: "put" }),
    );
    await using freshStore = await openStore(`${server.url}${fresh}`);
    assert.equal(await freshStore.get("k"), null);
  });

  test("a batch lands once if one of its keys is as it was", async () => {
    await store.putMany([{ key: "b/one", value: "1" }, {
      key: "b/two",
      value: "2",
    }]);
    // Another client rewrote one key; the other shows the batch did not land.
    const { outcome } = await lossy(
      [put("b/one", "mine"), put("b/two", "mine")],
      { lands: false, meanwhile: () => store.put("b/one", "other") },
    );
    assert.equal(outcome.ok, true);
    assert.deepEqual(
      (await store.getMany(["b/one", "b/two"])).map(text),
      ["mine", "mine"],
    );
  });

  test("a compare-and-set that never reached the server checks again, on the new reads", async () => {
    await store.put("x/k", "old");
    const index = (await store.get("x/k"))!.lastIndex;
    const { outcome } = await lossy(
      [
        { type: "check", key: "x/k", lastIndex: index },
        put("x/k", "mine"),
      ],
      { lands: false },
      "atomic",
    );
    assert.equal(outcome.ok, true);
    assert.equal(text(await store.get("x/k")), "mine");
    // One that landed, its key written by no one since, is shown by it.
    const now = (await store.get("x/k"))!.lastIndex;
    const landed = await lossy(
      [
        { type: "check", key: "x/k", lastIndex: now },
        put("x/k", "again"),
      ],
      { lands: true },
      "atomic",
    );
    const pair = await store.get("x/k");
    assert.equal(text(pair), "again");
    assert.deepEqual(landed.outcome, { ok: true, lastIndex: pair!.lastIndex });
    // One written over since cannot be told from another writer's.
    await rejectsUnknown(lossy(
      [
        { type: "check", key: "x/k", lastIndex: pair!.lastIndex },
        put("x/k", "third"),
      ],
      { lands: true, meanwhile: () => store.put("x/k", "fourth") },
      "atomic",
    ));
    assert.equal(text(await store.get("x/k")), "fourth");
  });
});
