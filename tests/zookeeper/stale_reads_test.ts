// A ZooKeeper server a session talks to may lag the leader: its reads can
// miss a write the ensemble acknowledged before the read was sent. The fault
// runs found a delete answered from such a read (the key looked absent, so
// nothing was sent to the leader, and the key was still there afterwards).
//
// A lagging follower is played here by a `Nodes` whose reads of chosen paths
// answer as the server did before a write (absent), until the session sends a
// barrier: exactly what a follower behind the leader does. Every commit below
// must come out as it would on the leader.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openStore, type Store } from "../../mod.ts";
import { commit } from "../../backends/zookeeper/commit.ts";
import { readConfig } from "../../backends/zookeeper/config.ts";
import { openSession } from "../../backends/zookeeper/connect.ts";
import { Nodes, type NodeState } from "../../backends/zookeeper/nodes.ts";
import { Paths } from "../../backends/zookeeper/paths.ts";
import type {
  MultiOp,
  MultiResult,
} from "../../backends/zookeeper/protocol.ts";
import type { Session } from "../../backends/zookeeper/session.ts";
import {
  startZookeeper,
  type ZookeeperService,
} from "../services/zookeeper.ts";

const ROOT = "/stale";

/**
 * Reads of the `behind` paths miss their node until the server catches up:
 * a follower answers a barrier or a `multi` only once it has applied every
 * transaction the leader ordered before it.
 */
class LaggingNodes extends Nodes {
  readonly behind = new Set<string>();
  barriers = 0;

  override async barrier(signal?: AbortSignal): Promise<void> {
    await super.barrier(signal);
    this.barriers++;
    this.behind.clear();
  }

  override async multi(
    ops: readonly MultiOp[],
    signal?: AbortSignal,
  ): Promise<{ zxid: bigint; results: MultiResult[] }> {
    const reply = await super.multi(ops, signal);
    this.behind.clear();
    return reply;
  }

  override async read(
    path: string,
    withData: boolean,
    signal?: AbortSignal,
  ): Promise<NodeState | null> {
    const state = await super.read(path, withData, signal);
    return this.behind.has(path) ? null : state;
  }

  /** The keys' nodes were written after this server's last update. */
  lagOn(...keys: string[]): void {
    for (const key of keys) this.behind.add(this.paths.path(key));
  }
}

let server: ZookeeperService;
let store: Store;
let session: Session;
let nodes: LaggingNodes;
const text = (pair: { value: Uint8Array } | null) =>
  pair === null ? null : new TextDecoder().decode(pair.value);

describe("zookeeper commits on a server behind the leader", () => {
  before(async () => {
    server = await startZookeeper();
    store = await openStore(`${server.url}${ROOT}`);
    const config = readConfig([`127.0.0.1:${server.port}`], { chroot: ROOT });
    session = await openSession(config, config.sessionTimeout, undefined);
    nodes = new LaggingNodes(session, new Paths(config.root), config.acl);
  });
  after(async () => {
    await session?.close();
    await store?.close();
    await server?.stop();
  });

  test("a delete of a key the server has not seen yet deletes it", async () => {
    await store.put("d/one", "v");
    nodes.lagOn("d/one");
    const { outcome } = await commit(
      nodes,
      [{ type: "delete", key: "d/one" }],
      {
        operation: "delete",
      },
    );
    assert.equal(outcome.ok, true);
    assert.equal(await store.get("d/one"), null);
    assert.equal(
      nodes.behind.size,
      0,
      "the reads were made again after a barrier",
    );
  });

  test("a delete of a key that is absent everywhere answers after one sync", async () => {
    const before = nodes.barriers;
    const { outcome } = await commit(
      nodes,
      [{ type: "delete", key: "d/none" }],
      {
        operation: "delete",
      },
    );
    assert.deepEqual(outcome, { ok: true, lastIndex: 0n });
    assert.equal(nodes.barriers, before + 1);
  });

  test("a batch that writes deletes a key the server has not seen yet", async () => {
    await store.putMany([
      { key: "b/seen", value: "1" },
      { key: "b/unseen", value: "2" },
    ]);
    nodes.lagOn("b/unseen");
    const before = nodes.barriers;
    const { outcome } = await commit(nodes, [
      { type: "delete", key: "b/seen" },
      { type: "delete", key: "b/unseen" },
      { type: "put", key: "b/new", value: new TextEncoder().encode("3") },
    ], { operation: "atomic" });
    assert.equal(outcome.ok, true);
    assert.deepEqual(
      (await store.getMany(["b/seen", "b/unseen", "b/new"])).map(text),
      [null, null, "3"],
    );
    // The leader refused the absence the stale read asserted; the reads
    // after that were the leader's own (no barrier was needed for a write).
    assert.equal(nodes.barriers, before);
  });

  test("a batch deleting a key that is absent everywhere still writes", async () => {
    const { outcome } = await commit(nodes, [
      { type: "delete", key: "n/missing" },
      { type: "put", key: "n/kept", value: new TextEncoder().encode("k") },
    ], { operation: "atomic" });
    assert.equal(outcome.ok, true);
    assert.equal(text(await store.get("n/kept")), "k");
    // The absence was asserted under a parent made for it; nothing is left
    // at the path.
    assert.equal(await store.exists("n/missing"), false);
    assert.deepEqual(
      (await store.list("n")).map((pair) => pair.key),
      ["n/kept"],
    );
  });

  test("a compare-and-set on a key the server has not seen yet lands", async () => {
    await store.put("c/k", "old");
    const index = (await store.get("c/k"))!.lastIndex;
    nodes.lagOn("c/k");
    const { outcome } = await commit(nodes, [
      { type: "check", key: "c/k", lastIndex: index },
      { type: "put", key: "c/k", value: new TextEncoder().encode("new") },
    ], { operation: "atomic" });
    assert.equal(outcome.ok, true);
    assert.equal(text(await store.get("c/k")), "new");
  });

  test("a failed check names the key's value on the leader", async () => {
    await store.put("f/k", "v");
    const current = (await store.get("f/k"))!.lastIndex;
    nodes.lagOn("f/k");
    const { outcome } = await commit(nodes, [
      { type: "check", key: "f/k", lastIndex: current + 1_000n },
      { type: "put", key: "f/k", value: new TextEncoder().encode("w") },
    ], { operation: "atomic" });
    assert.deepEqual(outcome, { ok: false, key: "f/k", current });
    assert.equal(text(await store.get("f/k")), "v");
  });
});
