// The ZooKeeper backend's native scan: the order of a node's children in the
// walk (byte order of full keys across segment boundaries), the walk itself
// against a brute-force sort over an in-memory tree, and on a real server a
// page that reads only the nodes it needs.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openStore, type Store } from "../../mod.ts";
import type { Entry, ScanRange } from "../../core/driver.ts";
import { compareKeys } from "../../core/keys.ts";
import { pageOfList } from "../../core/scan.ts";
import { readConfig } from "../../backends/zookeeper/config.ts";
import { openSession } from "../../backends/zookeeper/connect.ts";
import { Nodes, type NodeState } from "../../backends/zookeeper/nodes.ts";
import { Paths } from "../../backends/zookeeper/paths.ts";
import {
  orderCandidates,
  scanTree,
  subtreeInRange,
  type TreeReader,
} from "../../backends/zookeeper/scan.ts";
import type { Session } from "../../backends/zookeeper/session.ts";
import {
  startZookeeper,
  type ZookeeperService,
} from "../services/zookeeper.ts";

const range = (over: Partial<ScanRange>): ScanRange => ({
  dir: "",
  lowerInclusive: true,
  reverse: false,
  limit: 1_000,
  keysOnly: false,
  ...over,
});

const spelled = (c: { name: string; subtree: boolean }) =>
  c.subtree ? `${c.name}/…` : c.name;

describe("zookeeper scan: the order of children", () => {
  const names = ["b", "a/", "a0", "日本", "a-c", "a", "é", "a.x"]
    .filter((name) => !name.includes("/"));
  const candidates = names.flatMap((name) => [
    { name, subtree: false },
    { name, subtree: true },
  ]);

  test("a child's subtree sorts by name + '/', so 'a-c' and 'a.x' come between 'a' and 'a/…'", () => {
    assert.deepEqual(orderCandidates(candidates, false).map(spelled), [
      "a",
      "a-c",
      "a-c/…",
      "a.x",
      "a.x/…",
      "a/…",
      "a0",
      "a0/…",
      "b",
      "b/…",
      "é",
      "é/…",
      "日本",
      "日本/…",
    ]);
  });

  test("reverse is the exact reverse: a subtree comes before its own key", () => {
    assert.deepEqual(
      orderCandidates(candidates, true).map(spelled),
      orderCandidates(candidates, false).map(spelled).reverse(),
    );
  });

  test("characters above U+FFFF sort after U+E000–U+FFFF, as in UTF-8", () => {
    const order = orderCandidates([
      { name: "😀", subtree: false },
      { name: "\uffe0", subtree: false },
      { name: "\ue000", subtree: false },
    ], false);
    assert.deepEqual(order.map(spelled), ["\ue000", "\uffe0", "😀"]);
  });

  test("a subtree is kept exactly when one of its keys can be in range", () => {
    // Everything below "t/a" starts with "t/a/".
    const cases: [Partial<ScanRange>, boolean][] = [
      [{}, true],
      [{ upper: "t/a/" }, false],
      [{ upper: "t/a-z" }, false],
      [{ upper: "t/a/b" }, true],
      [{ upper: "t/a0" }, true],
      [{ lower: "t/a0" }, false],
      [{ lower: "t/a/zz" }, true],
      [{ lower: "t/a-c" }, true],
      [{ lower: "t/a" }, true],
      [{ lower: "t/a/", upper: "t/a0" }, true],
      [{ dir: "u/" }, false],
      [{ dir: "t/a/b/" }, true],
    ];
    for (const [over, expected] of cases) {
      assert.equal(
        subtreeInRange("t/a", range(over)),
        expected,
        JSON.stringify(over),
      );
    }
  });
});

/** An in-memory tree of znodes, read as the walk reads ZooKeeper. */
class FakeTree implements TreeReader {
  readonly paths = new Paths("/root");
  readonly nodes = new Map<string, { data: Uint8Array | null; ttl?: number }>();
  reads = 0;
  listings = 0;
  #zxid = 1n;

  constructor() {
    this.nodes.set("/root", { data: null });
  }

  put(key: string, value: string | null, ttl?: number): void {
    const path = this.paths.path(key);
    for (const ancestor of this.paths.ancestors(path)) {
      if (!this.nodes.has(ancestor)) this.nodes.set(ancestor, { data: null });
    }
    this.nodes.set(path, {
      data: value === null ? null : new TextEncoder().encode(value),
      ttl,
    });
  }

  #names(path: string): string[] {
    return [...this.nodes.keys()]
      .filter((p) =>
        p.startsWith(`${path}/`) && !p.slice(path.length + 1).includes("/")
      )
      .map((p) => p.slice(path.length + 1));
  }

  children(path: string): Promise<string[] | null> {
    this.listings++;
    if (!this.nodes.has(path)) return Promise.resolve(null);
    // ZooKeeper lists children in no particular order.
    return Promise.resolve(this.#names(path).reverse());
  }

  read(path: string, withData: boolean): Promise<NodeState | null> {
    this.reads++;
    const node = this.nodes.get(path);
    if (!node) return Promise.resolve(null);
    const zxid = this.#zxid++;
    // A TTL node written long ago has expired, one written now has not.
    const mtime = node.ttl === 1 ? 0 : Date.now();
    return Promise.resolve({
      path,
      stat: {
        czxid: zxid,
        mzxid: zxid,
        ctime: mtime,
        mtime,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeralOwner: 0n,
        dataLength: node.data?.byteLength ?? 0,
        numChildren: this.#names(path).length,
        pzxid: zxid,
      },
      data: withData ? node.data : undefined,
      ttl: node.ttl,
    });
  }

  /** The live keys, as `list` would find them. */
  live(): Entry[] {
    const entries: Entry[] = [];
    for (const [path, node] of this.nodes) {
      const key = this.paths.key(path);
      if (key === undefined || node.data === null || node.ttl === 1) continue;
      entries.push({ key, value: node.data, lastIndex: 0n });
    }
    return entries;
  }
}

// A small deterministic generator, so a failure can be replayed.
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
}

describe("zookeeper scan: the walk over a tree", () => {
  const segments = ["a", "a-c", "a.x", "a0", "b", "é", "日本", "😀", "¤"];
  const tree = new FakeTree();
  const next = random(7);
  const pick = () => segments[Math.floor(next() * segments.length)];
  for (let i = 0; i < 300; i++) {
    const depth = 1 + Math.floor(next() * 4);
    const key = ["t", ...Array.from({ length: depth }, pick)].join("/");
    const kind = next();
    // Mostly keys, some empty values, some nodes that are not keys: a
    // parent without data left as a leaf, an expired TTL node.
    tree.put(
      key,
      kind < 0.1 ? "" : kind < 0.15 ? null : key,
      kind > 0.95 ? 1 : kind > 0.9 ? 60_000 : undefined,
    );
  }
  tree.put("t", "the dir itself");
  tree.put("t-sibling", "outside");
  // The store's bookkeeping is not a key.
  tree.nodes.set("/root/¤gen", { data: null });
  tree.nodes.set("/root/t/¤locks", { data: new Uint8Array(1) });
  const live = tree.live();
  const keys = live.map((entry) => entry.key).filter((key) =>
    key.startsWith("t/")
  ).sort(compareKeys);

  const check = async (over: Partial<ScanRange>) => {
    const asked = range({ dir: "t/", ...over });
    const page = await scanTree(tree, asked);
    const expected = pageOfList(live, asked);
    assert.deepEqual(
      page.map((entry) => entry.key),
      expected.map((entry) => entry.key),
      JSON.stringify(over),
    );
    for (const [i, entry] of page.entries()) {
      const value = asked.keysOnly ? new Uint8Array(0) : expected[i].value;
      assert.deepEqual(entry.value, value, entry.key);
    }
  };

  test("the whole tree comes out in byte order, both ways", async () => {
    assert.ok(keys.length > 100, `${keys.length} keys`);
    const page = await scanTree(tree, range({ dir: "t/" }));
    assert.deepEqual(page.map((entry) => entry.key), keys);
    const back = await scanTree(tree, range({ dir: "t/", reverse: true }));
    assert.deepEqual(back.map((entry) => entry.key), [...keys].reverse());
  });

  test("every bound, limit, direction and keysOnly matches a sorted list", async () => {
    const bounds = [...keys, "t/a/", "t/a-", "t/a/b/zz", "t/ZZ", "t/\uffff"];
    const bound = () => bounds[Math.floor(next() * bounds.length)];
    for (let i = 0; i < 400; i++) {
      await check({
        lower: next() < 0.7 ? bound() : undefined,
        lowerInclusive: next() < 0.5,
        upper: next() < 0.7 ? bound() : undefined,
        reverse: next() < 0.5,
        limit: 1 + Math.floor(next() * 20),
        keysOnly: next() < 0.3,
      });
    }
    await check({ dir: "t/a/" });
    await check({ dir: "t/a-c/", reverse: true, limit: 3 });
    await check({ dir: "nothing/" });
  });

  test("the whole keyspace skips bookkeeping and reaches every key", async () => {
    const page = await scanTree(tree, range({ dir: "" }));
    assert.deepEqual(
      page.map((entry) => entry.key),
      live.map((entry) => entry.key).sort(compareKeys),
    );
  });

  test("a page reads about what it holds, not the tree", async () => {
    tree.reads = 0;
    tree.listings = 0;
    const page = await scanTree(tree, range({ dir: "t/", limit: 5 }));
    assert.equal(page.length, 5);
    assert.ok(tree.reads < 40, `${tree.reads} reads`);
    assert.ok(tree.listings < 20, `${tree.listings} listings`);
  });
});

let server: ZookeeperService;
let store: Store;
let session: Session;

describe("zookeeper scan on a server", () => {
  before(async () => {
    server = await startZookeeper();
    store = await openStore(`${server.url}/scan`);
    const config = readConfig([`127.0.0.1:${server.port}`], {
      chroot: "/scan",
    });
    session = await openSession(config, config.sessionTimeout, undefined);
  });
  after(async () => {
    await session?.close();
    await store?.close();
    await server?.stop();
  });

  test("a page of 10 from 3,000 keys sends a few dozen requests", async () => {
    const written = [];
    for (let i = 0; i < 60; i++) {
      for (let j = 0; j < 50; j++) {
        written.push({
          key: `big/${String(i).padStart(2, "0")}/${j}`,
          value: `${i}.${j}`,
        });
      }
    }
    await store.putMany(written);
    const nodes = new Nodes(session, new Paths("/scan"), []);
    let requests = 0;
    const request = session.request.bind(session);
    session.request = ((...args: Parameters<typeof request>) => {
      requests++;
      return request(...args);
    }) as typeof session.request;
    const listed = (await store.list("big")).sort((a, b) =>
      compareKeys(a.key, b.key)
    );
    assert.equal(listed.length, 3_000);
    for (
      const over of [
        {},
        { reverse: true },
        { lower: "big/30/17", lowerInclusive: false },
        { keysOnly: true },
      ]
    ) {
      requests = 0;
      const asked = range({ dir: "big/", limit: 10, ...over });
      const page = await scanTree(nodes, asked);
      assert.deepEqual(
        page.map((entry) => [entry.key, entry.lastIndex]),
        pageOfList(
          listed.map((pair) => ({ ...pair })),
          asked,
        ).map((entry) => [entry.key, entry.lastIndex]),
        JSON.stringify(over),
      );
      // A listing of big/ and one of its children, and ten reads or so of
      // each: the whole tree would be 3,061 listings and 3,060 reads.
      assert.ok(
        requests <= 60,
        `${requests} requests for ${JSON.stringify(over)}`,
      );
    }
    // Through the store, a scan pages the same way.
    const pairs = [];
    for await (const pair of store.scan("big", { batchSize: 7, limit: 30 })) {
      pairs.push(pair.key);
    }
    assert.deepEqual(pairs, listed.slice(0, 30).map((pair) => pair.key));
  });

  test("ttl keys and empty values come out; keysOnly tells empty from a parent", async () => {
    await store.put("mixed/empty", "");
    await store.put("mixed/ttl", "t", { ttl: 60_000 });
    await store.put("mixed/deep/leaf", "l");
    const nodes = new Nodes(session, new Paths("/scan"), []);
    for (const keysOnly of [false, true]) {
      const page = await scanTree(
        nodes,
        range({ dir: "mixed/", keysOnly }),
      );
      assert.deepEqual(page.map((entry) => entry.key), [
        "mixed/deep/leaf",
        "mixed/empty",
        "mixed/ttl",
      ]);
      assert.ok(page[2].expiresAt! > Date.now());
    }
  });
});
