// Compare-and-set on ZooKeeper names one znode (issue 22). A ZooKeeper
// `multi` only compares versions, and a znode deleted and created again
// starts over at version 0: a write that read the old node must still fail
// on the new one, even when the new one is back at the old one's version.
//
// The races are forced, not hoped for: store `a` talks to ZooKeeper through
// a proxy that understands just enough of the protocol to hold `a`'s next
// `multi` (everything `a` sends after it waits behind it, in order) while
// store `b`, connected directly, deletes and re-creates the key. The read
// `a` made before its `multi` then names the old node. A randomized test
// runs creates, deletes, compare-and-sets and reads from several handles on
// one key, some behind a proxy that delays their `multi`s, and checks that
// no acknowledged write was silently lost.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer, type Server, Socket } from "node:net";
import process from "node:process";
import { after, before, describe, test } from "node:test";
import {
  KeyExistsError,
  KeyModifiedError,
  KeyNotFoundError,
  type KVPair,
  openStore,
  type Store,
} from "../../mod.ts";
import { Paths } from "../../backends/zookeeper/paths.ts";
import { StreamReader } from "../../testing/harness.ts";
import {
  startZookeeper,
  zkCli,
  type ZookeeperService,
} from "../services/zookeeper.ts";

const text = (pair: { value: Uint8Array } | null) =>
  pair === null ? null : new TextDecoder().decode(pair.value);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** ZooKeeper's opcode of a `multi` request (`ZooDefs.OpCode.multi`). */
const MULTI = 14;

/** A loopback proxy to ZooKeeper that can hold or delay `multi` requests. */
interface MultiGate {
  readonly port: number;
  /**
   * Holds the next `multi` a client sends, and everything that client sends
   * after it, until {@linkcode release}. Resolves once one is held.
   */
  holdNextMulti(): Promise<void>;
  /** Lets the held `multi` (and what queued behind it) through. */
  release(): void;
  /** Delays every `multi` by `delay()` ms from now on, keeping the order. */
  delayMultis(delay: () => number): void;
  close(): Promise<void>;
}

async function startMultiGate(targetPort: number): Promise<MultiGate> {
  const sockets = new Set<Socket>();
  let arm: (() => void) | undefined;
  let releaseHeld: (() => void) | undefined;
  let delayOf: (() => number) | undefined;
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  };
  const server: Server = createServer((client) => {
    const upstream = new Socket();
    track(client);
    track(upstream);
    let buffered = Buffer.alloc(0);
    // The first frame of a connection is the session handshake, without a
    // request header.
    let handshake = true;
    let sent: Promise<void> = Promise.resolve();
    client.on("data", (data: Buffer) => {
      buffered = Buffer.concat([buffered, data]);
      while (buffered.length >= 4) {
        const length = buffered.readInt32BE(0);
        if (buffered.length < 4 + length) break;
        const frame = buffered.subarray(0, 4 + length);
        buffered = buffered.subarray(4 + length);
        // A request is its length, then its xid and opcode.
        const multi = !handshake && length >= 8 &&
          frame.readInt32BE(8) === MULTI;
        handshake = false;
        let wait: Promise<unknown> | undefined;
        if (multi && arm) {
          const notify = arm;
          arm = undefined;
          wait = new Promise<void>((resolve) => (releaseHeld = resolve));
          notify();
        } else if (multi && delayOf) {
          wait = sleep(delayOf());
        }
        const previous = sent;
        sent = (async () => {
          await previous;
          await wait;
          if (!upstream.destroyed) upstream.write(frame);
        })();
      }
    });
    upstream.on("data", (data: Buffer) => client.write(data));
    for (const [from, to] of [[client, upstream], [upstream, client]]) {
      from.on("error", () => to.destroy());
      from.on("close", () => to.destroy());
    }
    upstream.connect(targetPort, "127.0.0.1");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  assert.ok(address && typeof address === "object");
  return {
    port: address.port,
    holdNextMulti: () => new Promise<void>((resolve) => (arm = resolve)),
    release: () => {
      arm = undefined;
      releaseHeld?.();
      releaseHeld = undefined;
    },
    delayMultis: (delay) => {
      delayOf = delay;
    },
    close: () =>
      new Promise<void>((resolve) => {
        releaseHeld?.();
        for (const socket of [...sockets]) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A seeded generator (mulberry32), so a failing run can be replayed. */
function generator(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000) * n);
  };
}

let server: ZookeeperService;
let gate: MultiGate;
/** Behind the gate: its multis are the ones held. */
let a: Store;
/** Connected directly: it races `a`. */
let b: Store;

const CHROOT = "/cas";
const cli = (...command: string[]) => zkCli(server.port, ...command);

/** `dataVersion` and `cZxid` of a znode, as zkCli's `stat` prints them. */
function stat(path: string): { version: number; czxid: string } {
  const out = cli("stat", path);
  const version = /dataVersion = (\d+)/.exec(out);
  const czxid = /cZxid = (0x[0-9a-f]+)/.exec(out);
  assert.ok(version && czxid, `stat of ${path}: ${out}`);
  return { version: Number(version[1]), czxid: czxid[1] };
}

/**
 * Starts `write` on `a`, waits until its `multi` is held by the gate (the
 * read it is built on done), runs `meanwhile`, lets the `multi` go, and
 * returns how `write` ended.
 */
async function race<T>(
  write: () => Promise<T>,
  meanwhile: () => Promise<void>,
): Promise<PromiseSettledResult<T>> {
  const held = gate.holdNextMulti();
  const pending = write();
  const settled = pending.then(
    (value): PromiseSettledResult<T> => ({ status: "fulfilled", value }),
    (reason): PromiseSettledResult<T> => ({ status: "rejected", reason }),
  );
  try {
    const first = await Promise.race([
      held.then(() => "held"),
      settled.then(() => "ended before its multi"),
    ]);
    assert.equal(first, "held", "the write's multi reached the gate");
    await meanwhile();
  } finally {
    gate.release();
  }
  return await settled;
}

function fulfilled<T>(result: PromiseSettledResult<T>): T {
  if (result.status === "rejected") {
    assert.fail(`the write failed: ${result.reason}`);
  }
  return result.value;
}

function rejectedWith(
  result: PromiseSettledResult<unknown>,
  type: new (...args: never[]) => Error,
): void {
  if (result.status === "fulfilled") {
    assert.fail(
      `the write succeeded (${
        JSON.stringify(result.value, (_, v) =>
          typeof v === "bigint"
            ? String(v)
            : v instanceof Uint8Array
            ? new TextDecoder().decode(v)
            : v)
      }) but should have failed with ${type.name}`,
    );
  }
  assert.ok(
    result.reason instanceof type,
    `expected ${type.name}, got ${result.reason}`,
  );
}

/**
 * Through `b`: deletes `key` and creates it again `times` times, each new
 * node written `rewrites` more times (so its version is `rewrites`).
 * Returns the last pair written.
 */
async function recreate(
  key: string,
  times: number,
  rewrites: number,
): Promise<KVPair> {
  let pair: KVPair | undefined;
  for (let round = 0; round < times; round++) {
    const current = await b.get(key);
    if (current) await b.atomicDelete(key, current);
    pair = await b.atomicPut(key, `b ${round}.0`, null);
    for (let i = 1; i <= rewrites; i++) {
      pair = await b.atomicPut(key, `b ${round}.${i}`, pair);
    }
  }
  return pair!;
}

/** Creates `key` through `b` and writes it until its version is `version`. */
async function written(key: string, version: number): Promise<KVPair> {
  let pair = await b.atomicPut(key, "old 0", null);
  for (let i = 1; i <= version; i++) {
    pair = await b.atomicPut(key, `old ${i}`, pair);
  }
  return (await a.get(key))!;
}

/** Handles of the randomized test; the first half's `multi`s are delayed. */
const HANDLES = 4;
/** Operations per handle in the randomized test. */
const OPERATIONS = 150;
/** The longest delay of a delayed handle's `multi`, in milliseconds. */
const MAX_DELAY_MS = 10;

describe("zookeeper compare-and-set names one znode", () => {
  /** The proxy of the randomized test's delayed handles. */
  let delayed: MultiGate;
  const stores: Store[] = [];

  before(async () => {
    server = await startZookeeper();
    gate = await startMultiGate(server.port);
    delayed = await startMultiGate(server.port);
    a = await openStore(`zk://127.0.0.1:${gate.port}${CHROOT}?tickTime=200`);
    b = await openStore(`zk://127.0.0.1:${server.port}${CHROOT}?tickTime=200`);
  });
  after(async () => {
    await Promise.allSettled(
      [a, b, ...stores].map((store) => store?.close()),
    );
    await gate?.close();
    await delayed?.close();
    await server?.stop();
  });

  test("atomicPut fails on a key deleted and created again, at version 0", async () => {
    const previous = await written("put/v0", 0);
    let replacement: KVPair | undefined;
    const result = await race(
      () => a.atomicPut("put/v0", "a's", previous),
      async () => {
        replacement = await recreate("put/v0", 1, 0);
      },
    );
    rejectedWith(result, KeyModifiedError);
    const now = await b.get("put/v0");
    assert.equal(text(now), "b 0.0", "the acknowledged create is kept");
    assert.equal(now?.lastIndex, replacement?.lastIndex);
  });

  test("atomicPut fails on a key re-created several times back to the version it had", async () => {
    const path = `${CHROOT}/put/v2`;
    const previous = await written("put/v2", 2);
    const old = stat(path);
    assert.equal(old.version, 2);
    let replacement: KVPair | undefined;
    const result = await race(
      () => a.atomicPut("put/v2", "a's", previous),
      async () => {
        replacement = await recreate("put/v2", 3, 2);
      },
    );
    rejectedWith(result, KeyModifiedError);
    const now = await b.get("put/v2");
    assert.equal(text(now), "b 2.2");
    assert.equal(now?.lastIndex, replacement?.lastIndex);
    // The premise: another znode, at the version the write's read saw.
    const fresh = stat(path);
    assert.equal(fresh.version, old.version);
    assert.notEqual(fresh.czxid, old.czxid);
  });

  test("atomicPut fails on a key re-created as a parent, then written back to its version", async () => {
    // The key's node goes; a deeper key makes it again as a parent (version
    // 0, no data), and a put makes it a key at version 1 again.
    const previous = await written("parent/k", 1);
    const result = await race(
      () => a.atomicPut("parent/k", "a's", previous),
      async () => {
        const current = await b.get("parent/k");
        await b.atomicDelete("parent/k", current!);
        await b.put("parent/k/child", "child");
        await b.put("parent/k", "b's");
      },
    );
    rejectedWith(result, KeyModifiedError);
    assert.equal(text(await b.get("parent/k")), "b's");
  });

  test("atomicDelete fails on a key deleted and created again", async () => {
    const previous = await written("delete/k", 1);
    const result = await race(
      () => a.atomicDelete("delete/k", previous),
      async () => {
        await recreate("delete/k", 2, 1);
      },
    );
    rejectedWith(result, KeyModifiedError);
    assert.equal(text(await b.get("delete/k")), "b 1.1");
  });

  test("an atomic() check fails on a key deleted and created again, and writes nothing", async () => {
    const previous = await written("atomic/k", 0);
    const result = await race(
      () =>
        a.atomic()
          .check("atomic/k", previous.lastIndex)
          .put("atomic/other", "a's")
          .commit(),
      async () => {
        await recreate("atomic/k", 1, 0);
      },
    );
    assert.deepEqual(fulfilled(result), { ok: false });
    assert.equal(await b.get("atomic/other"), null);
    assert.equal(text(await b.get("atomic/k")), "b 0.0");
  });

  test("an atomic() check that a key is absent fails when a parent node there became that key", async () => {
    // `absent/p` is a parent (a node without data, at version 1) when `a`
    // reads it. Meanwhile it goes, comes back as a parent, and is written:
    // a key again, at version 1.
    await b.put("absent/p", "p");
    await b.put("absent/p/c", "c");
    await b.delete("absent/p");
    assert.equal(await a.exists("absent/p"), false);
    const result = await race(
      () =>
        a.atomic()
          .check("absent/p", null)
          .put("absent/q", "a's")
          .commit(),
      async () => {
        await b.delete("absent/p/c");
        await b.put("absent/p/c", "again");
        await b.put("absent/p", "b's");
      },
    );
    assert.deepEqual(fulfilled(result), { ok: false });
    assert.equal(await b.get("absent/q"), null);
    assert.equal(text(await b.get("absent/p")), "b's");
  });

  test("a creation that believes no generation node exists still fails a compare-and-set", async () => {
    // `c` learns that no generation node exists in a fresh root; then `d`
    // makes them. `c`, still believing there are none, makes the key's node
    // again (as the parent of a deeper key) and writes it back to the
    // version `gated` read.
    const root = "/cas-stale";
    const direct = `${server.url}${root}?tickTime=200`;
    await using gated = await openStore(
      `zk://127.0.0.1:${gate.port}${root}?tickTime=200`,
    );
    await using c = await openStore(direct);
    await using d = await openStore(direct);
    const paths = new Paths(root);
    const shard = (key: string) => paths.generationPath(paths.path(key));
    let child = "s/k/c0";
    for (let i = 1; [shard("s"), shard("s/k")].includes(shard(child)); i++) {
      child = `s/k/c${i}`;
    }
    await c.put("warm", "w");
    assert.equal(cli("ls", root), "[warm]", "no generation node yet");
    await d.put("s/k", "d 0");
    await d.put("s/k", "d 1");
    const previous = (await gated.get("s/k"))!;
    const result = await race(
      () => gated.atomicPut("s/k", "gated's", previous),
      async () => {
        await c.delete("s/k");
        await c.put(child, "child");
        await c.put("s/k", "c's, again");
      },
    );
    rejectedWith(result, KeyModifiedError);
    assert.equal(text(await c.get("s/k")), "c's, again");
  });

  test("a put does not rewrite a node made again meanwhile with a ttl", async () => {
    // A znode's kind is fixed at creation: `a`'s put of a permanent value
    // must not land on the TTL node `b` made in its place, or it expires.
    const path = `${CHROOT}/kind/k`;
    await b.put("kind/k", "permanent");
    const result = await race(
      () => a.put("kind/k", "a's, permanent"),
      async () => {
        await b.delete("kind/k");
        await b.put("kind/k", "b's, for a minute", { ttl: 60_000 });
      },
    );
    fulfilled(result);
    assert.equal(text(await b.get("kind/k")), "a's, permanent");
    assert.doesNotMatch(cli("getAcl", path), /valkeyrie-ttl/);
  });

  test("a compare-and-set still succeeds when the key was left alone, also if others create keys meanwhile", async () => {
    const previous = await written("alone/k", 1);
    // Keys whose creation moves the same generation as `alone/k`'s (see
    // backends/zookeeper/generations.ts): the write retries, and succeeds.
    const paths = new Paths(CHROOT);
    const shard = paths.generationPath(paths.path("alone/k"));
    const neighbours: string[] = [];
    for (let i = 0; neighbours.length < 3; i++) {
      const key = `alone/n${i}`;
      if (paths.generationPath(paths.path(key)) === shard) neighbours.push(key);
    }
    const result = await race(
      () => a.atomicPut("alone/k", "a's", previous),
      async () => {
        for (const key of neighbours) await b.atomicPut(key, "n", null);
        await b.put("alone/elsewhere", "e");
      },
    );
    const landed = fulfilled(result);
    const now = await b.get("alone/k");
    assert.equal(text(now), "a's");
    assert.equal(now?.lastIndex, landed.lastIndex);
    // And the same for a delete.
    const current = (await a.get("alone/k"))!;
    const deleted = await race(
      () => a.atomicDelete("alone/k", current),
      async () => {
        await b.put("alone/other", "o");
      },
    );
    fulfilled(deleted);
    assert.equal(await b.get("alone/k"), null);
  });

  test("the bookkeeping is invisible to the store and values stay raw", async () => {
    await using top = await openStore(`${server.url}/cas-hidden?tickTime=200`);
    const tree = new StreamReader(top.watchTree(""));
    assert.deepEqual(await tree.next(), []);
    await top.put("x/y", "raw bytes");
    const z = await top.atomicPut("z", "zz", null);
    // Creations alone make no generation node: only writes resting on a
    // node they read need one.
    assert.equal(cli("ls", "/cas-hidden"), "[x, z]");
    await top.atomicPut("z", "zzz", z);
    const keys = (pairs: KVPair[]) => pairs.map((pair) => pair.key);
    await tree.until((pairs) => keys(pairs).join() === "x/y,z");
    assert.deepEqual(keys(await top.list("")), ["x/y", "z"]);
    assert.equal(cli("get", "/cas-hidden/z"), "zzz");
    assert.equal(cli("get", "/cas-hidden/x/y"), "raw bytes");
    await top.deleteTree("");
    await tree.until((pairs) => pairs.length === 0);
    assert.deepEqual(await top.list(""), []);
    // The generation nodes stay: their versions must never start over.
    assert.equal(cli("ls", "/cas-hidden"), "[¤gen]");
    await tree.cancel();
  });

  test("no acknowledged write is lost: every compare-and-set named the current value", async () => {
    const seed = Number(
      process.env.ZK_CAS_SEED || Math.floor(Math.random() * 0xffff_ffff),
    );
    const KEY = "race";
    const chroot = `/cas-random-${seed}`;
    const delay = generator(seed);
    delayed.delayMultis(() => delay(MAX_DELAY_MS + 1));
    for (let i = 0; i < HANDLES; i++) {
      const port = i < HANDLES / 2 ? delayed.port : server.port;
      stores.push(
        await openStore(`zk://127.0.0.1:${port}${chroot}?tickTime=200`),
      );
    }

    /** An acknowledged write: `names` is the lastIndex it replaced. */
    interface Write {
      value: string;
      lastIndex: bigint;
      names: bigint | null;
    }
    const writes: Write[] = [];
    const deletes: { by: string; names: bigint }[] = [];
    const reads: KVPair[] = [];
    const failures = { exists: 0, modified: 0, notFound: 0 };

    const worker = async (i: number) => {
      const store = stores[i];
      const name = `h${i}`;
      const delayedOne = i < HANDLES / 2;
      const random = generator(seed + i + 1);
      let known: KVPair | null = await store.get(KEY);
      const read = async () => {
        known = await store.get(KEY);
        if (known) reads.push(known);
      };
      const create = async (value: string) => {
        const pair = await store.atomicPut(KEY, value, null);
        writes.push({ value, lastIndex: pair.lastIndex, names: null });
        known = pair;
      };
      // The delayed handles mostly compare-and-set, the direct ones mostly
      // delete and create again: the race that lost writes.
      const [get, creates, cas] = delayedOne ? [20, 35, 90] : [10, 30, 55];
      for (let op = 0; op < OPERATIONS; op++) {
        const value = `${name}.${op}`;
        const roll = random(100);
        try {
          if (roll < get || (roll >= creates && known === null)) {
            await read();
          } else if (roll < creates) {
            await create(value);
          } else if (roll < cas) {
            const previous: KVPair = known!;
            const pair = await store.atomicPut(KEY, value, previous);
            writes.push({
              value,
              lastIndex: pair.lastIndex,
              names: previous.lastIndex,
            });
            known = pair;
          } else {
            const previous: KVPair = known!;
            await store.atomicDelete(KEY, previous);
            deletes.push({ by: value, names: previous.lastIndex });
            known = null;
            // At once again, most of the time: a new node at version 0.
            if (random(4) > 0) await create(`${value}+`);
          }
        } catch (error) {
          if (error instanceof KeyExistsError) failures.exists++;
          else if (error instanceof KeyModifiedError) failures.modified++;
          else if (error instanceof KeyNotFoundError) failures.notFound++;
          else throw error;
          await read();
        }
      }
    };

    try {
      await Promise.all(stores.map((_, i) => worker(i)));
      const final = await stores[HANDLES - 1].get(KEY);

      const byIndex = new Map<bigint, Write>();
      for (const write of writes) {
        assert.ok(
          !byIndex.has(write.lastIndex),
          `two writes acknowledged with lastIndex ${write.lastIndex}`,
        );
        byIndex.set(write.lastIndex, write);
      }
      // Every read saw an acknowledged write, with its bytes.
      for (const pair of [...reads, ...(final ? [final] : [])]) {
        const write = byIndex.get(pair.lastIndex);
        assert.ok(
          write,
          `read ${text(pair)} at ${pair.lastIndex}: no such write`,
        );
        assert.equal(text(pair), write.value);
      }
      // Every acknowledged compare-and-set (put or delete) named an
      // acknowledged write, and no two named the same one: the second would
      // have replaced a value it never saw.
      const namedBy = new Map<bigint, string>();
      const successors = [
        ...writes.flatMap((w) =>
          w.names === null ? [] : [{ by: w.value, names: w.names }]
        ),
        ...deletes,
      ];
      for (const { by, names } of successors) {
        const named = byIndex.get(names);
        assert.ok(named, `${by} named lastIndex ${names}: no such write`);
        assert.ok(
          !namedBy.has(names),
          `${by} and ${namedBy.get(names)} both replaced ${named.value}`,
        );
        namedBy.set(names, by);
      }
      // So no acknowledged write was silently lost: each was replaced by a
      // compare-and-set that named it, or it is the value read at the end.
      for (const write of writes) {
        if (namedBy.has(write.lastIndex)) continue;
        assert.equal(
          final?.lastIndex,
          write.lastIndex,
          `${write.value} (lastIndex ${write.lastIndex}) was overwritten without being named`,
        );
      }
      // Creates and deletes alternate: the key began absent.
      const creates = writes.filter((w) => w.names === null).length;
      assert.equal(creates, deletes.length + (final ? 1 : 0));
      // The run raced for real: every kind of write landed, and lost some.
      assert.ok(creates > 0 && deletes.length > 0, "creates and deletes");
      assert.ok(writes.length > creates, "compare-and-sets");
      assert.ok(
        failures.exists > 0 && failures.modified > 0,
        JSON.stringify(failures),
      );
    } catch (error) {
      throw new Error(
        `failed with seed ${seed} (ZK_CAS_SEED=${seed} replays each handle's random choices): ${
          (error as Error).message
        }`,
        { cause: error },
      );
    }
  });
});
