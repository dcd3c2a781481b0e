// Many processes, one `file:` store: Deno, Bun and Node processes open the
// same file at once and see one store — writes, watches, locks, CAS — also
// when the owning process is SIGKILLed mid-run (a client takes over and no
// acknowledged write is lost). The children are tests/fixtures/store_agent.mjs.
// Node children run the npm build (dist/), which test_all.sh builds first.
import assert from "node:assert/strict";
import { existsSync, linkSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, describe, test } from "node:test";
import { EmbeddedStore } from "../../backends/file/mod.ts";
import {
  type Agent,
  here,
  type Runtime,
  startAgent,
} from "../fixtures/agents.ts";

const dir = mkdtempSync(join(tmpdir(), "valkeyrie-file-processes-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** How long one answer may take: a bound on waiting, not a speed claim. */
const ANSWER_MS = 60_000;

const agent = (runtime: Runtime, path: string): Promise<Agent> =>
  startAgent(runtime, path, ANSWER_MS);

const others: Runtime[] = here === "deno"
  ? ["bun", "node"]
  : here === "bun"
  ? ["node", "deno"]
  : ["deno", "bun"];

describe(`file: across processes (${here} and its children)`, () => {
  test("a write in one process is seen by the reads and watches of the others, in three runtimes", async () => {
    const path = join(dir, "mixed.db");
    const store = await EmbeddedStore.connect({ path });
    const children = [
      await agent(others[0], path),
      await agent(others[1], path),
    ];
    try {
      await children[0].call("watch", { key: "greeting", watch: 1 });
      assert.equal(
        (await children[0].report((r) => r.watch === 1)).value,
        null,
      );
      await store.put("greeting", `from ${here}`);
      assert.deepEqual(await children[1].call("get", { key: "greeting" }), {
        value: `from ${here}`,
        lastIndex: String((await store.get("greeting"))!.lastIndex),
      });
      assert.equal(
        (await children[0].report((r) => r.watch === 1)).value,
        `from ${here}`,
      );
      // A put through the owner's socket resolves the key's new lastIndex.
      const put = await children[1].call("put", {
        key: "greeting",
        value: `from ${others[1]}`,
      });
      assert.equal(
        (await children[0].report((r) => r.watch === 1)).value,
        `from ${others[1]}`,
      );
      const current = (await store.get("greeting"))!;
      assert.equal(
        new TextDecoder().decode(current.value),
        `from ${others[1]}`,
      );
      assert.equal(put, String(current.lastIndex));
      await children[0].call("put", { key: "tree/a", value: "1" });
      await children[1].call("put", { key: "tree/b", value: "2" });
      assert.deepEqual(await children[1].call("list", { prefix: "tree" }), [[
        "tree/a",
        "1",
      ], ["tree/b", "2"]]);
      assert.deepEqual((await store.list("tree")).map((p) => p.key), [
        "tree/a",
        "tree/b",
      ]);
    } finally {
      for (const child of children) await child.kill();
      await store.close();
    }
  });

  test("a lock waits across processes, passes on at unlock, and its fencing token grows", async () => {
    const path = join(dir, "lock.db");
    const store = await EmbeddedStore.connect({ path });
    const waiter = await agent(others[0], path);
    try {
      const held = await store.lock("jobs/nightly", {
        ttl: 60_000,
        value: here,
      });
      const waiting = waiter.call("lock", {
        key: "jobs/nightly",
        ttl: 60_000,
        value: "waiter",
      });
      // The waiter is still waiting after a round trip of its own: a get
      // answered by the same process comes back first.
      let settled = false;
      waiting.then(() => (settled = true), () => (settled = true));
      await waiter.call("get", { key: "jobs/nightly" });
      assert.equal(settled, false, "the waiter took a held lock");
      await held.unlock();
      const token = BigInt(await waiting as string);
      assert.ok(token > held.lastIndex, `${token} after ${held.lastIndex}`);
      assert.equal(
        new TextDecoder().decode((await store.get("jobs/nightly"))!.value),
        "waiter",
      );
      // A lock this process now asks for waits for the child's unlock.
      const again = store.lock("jobs/nightly", { ttl: 60_000 });
      await waiter.call("unlock", { key: "jobs/nightly" });
      const mine = await again;
      assert.ok(mine.lastIndex > token);
      await mine.unlock();
    } finally {
      await waiter.kill();
      await store.close();
    }
  });

  test("a SIGKILLed holder's lock passes to a waiter in another process once its TTL ran out", async () => {
    const path = join(dir, "dead-holder.db");
    const holder = await agent(others[0], path);
    const store = await EmbeddedStore.connect({ path });
    try {
      const ttl = 1_500;
      const token = BigInt(
        await holder.call("lock", { key: "k", ttl }) as string,
      );
      await holder.kill();
      const killed = Date.now();
      const lock = await store.lock("k", {
        ttl: 60_000,
        signal: AbortSignal.timeout(ANSWER_MS),
      });
      // Not before the dead holder's hold ran out (a lower bound: load only
      // makes it later); the upper bound is the signal above.
      assert.ok(
        Date.now() - killed >= ttl - 500,
        "taken before the TTL ran out",
      );
      assert.ok(lock.lastIndex > token);
      await lock.unlock();
    } finally {
      await holder.kill();
      await store.close();
    }
  });

  test("a SIGSTOPped holder loses its lock to another process, and after SIGCONT its fenced write changes nothing", async () => {
    const path = join(dir, "paused-holder.db");
    // This process opens first, so it owns the file: a stopped owner would
    // stop everyone's calls, a stopped client only its own.
    const store = await EmbeddedStore.connect({ path });
    const holder = await agent(here, path);
    try {
      const ttl = 1_500;
      const token = BigInt(
        await holder.call("lock", { key: "k", ttl, value: "holder" }) as string,
      );
      await holder.call("fencedPut", { key: "data", value: "1", lock: "k" });
      // process.kill, not ChildProcess.kill: Deno's does not send SIGCONT.
      process.kill(holder.process.pid!, "SIGSTOP");
      // Nothing renews the hold while the holder is stopped: it runs out.
      const lock = await store.lock("k", {
        ttl: 60_000,
        signal: AbortSignal.timeout(ANSWER_MS),
      });
      assert.ok(lock.lastIndex > token, "the fencing token grows");
      await store.put("data", "2", { fence: lock });
      process.kill(holder.process.pid!, "SIGCONT");
      // Awake, the old holder writes as if it still held the lock.
      await assert.rejects(
        holder.call("fencedPut", { key: "data", value: "late", lock: "k" }),
        /LockLostError/,
      );
      assert.equal(
        new TextDecoder().decode((await store.get("data"))!.value),
        "2",
        "the stale holder's write changed nothing",
      );
      await lock.unlock();
    } finally {
      try {
        process.kill(holder.process.pid!, "SIGCONT");
      } catch { /* already gone */ }
      await holder.kill();
      await store.close();
    }
  });

  test("when the owning process is SIGKILLed, a client takes the file over and no acknowledged write is lost", async () => {
    const path = join(dir, "owner-killed.db");
    // The first agent owns the file: it opened it first.
    const owner = await agent(others[0], path);
    const client = await agent(others[1], path);
    const store = await EmbeddedStore.connect({ path });
    const acknowledged = new Map<string, string>();
    try {
      for (let i = 0; i < 20; i++) {
        await client.call("put", { key: `c/${i}`, value: `v${i}` });
        acknowledged.set(`c/${i}`, `v${i}`);
      }
      await store.put("mine", "before");
      await owner.kill();
      // Calls after the owner's death go to whoever took over (this process
      // or the client), and see everything acknowledged before.
      for (let i = 20; i < 40; i++) {
        await client.call("put", { key: `c/${i}`, value: `v${i}` });
        acknowledged.set(`c/${i}`, `v${i}`);
      }
      await store.put("mine", "after");
      for (const [key, value] of acknowledged) {
        assert.equal(
          new TextDecoder().decode((await store.get(key))!.value),
          value,
          key,
        );
      }
      assert.equal(
        new TextDecoder().decode((await store.get("mine"))!.value),
        "after",
      );
      const report = await store.verify();
      assert.ok(report.ok, JSON.stringify(report));
    } finally {
      await owner.kill();
      await client.kill();
      await store.close();
    }
  });

  test("compare-and-set is serialisable across processes: concurrent CAS increments lose no update", async () => {
    const path = join(dir, "cas.db");
    const store = await EmbeddedStore.connect({ path });
    const children = [
      await agent(others[0], path),
      await agent(others[1], path),
    ];
    const ROUNDS = 25;
    try {
      await store.put("counter", "0");
      const increment = async (
        read: () => Promise<{ value: string; lastIndex: string }>,
        cas: (value: string, lastIndex: string) => Promise<unknown>,
      ) => {
        for (let done = 0; done < ROUNDS;) {
          const current = await read();
          try {
            await cas(String(Number(current.value) + 1), current.lastIndex);
            done++;
          } catch (error) {
            if (!/KeyModifiedError/.test(String(error))) throw error;
          }
        }
      };
      await Promise.all([
        ...children.map((child) =>
          increment(
            () =>
              child.call("get", { key: "counter" }) as Promise<
                { value: string; lastIndex: string }
              >,
            (value, lastIndex) =>
              child.call("cas", { key: "counter", value, lastIndex }),
          )
        ),
        increment(async () => {
          const pair = (await store.get("counter"))!;
          return {
            value: new TextDecoder().decode(pair.value),
            lastIndex: String(pair.lastIndex),
          };
        }, async (value, lastIndex) => {
          try {
            await store.atomicPut("counter", value, {
              key: "counter",
              value: new Uint8Array(),
              lastIndex: BigInt(lastIndex),
            });
          } catch (error) {
            throw new Error(`${(error as Error).name}`);
          }
        }),
      ]);
      assert.equal(
        new TextDecoder().decode((await store.get("counter"))!.value),
        String(3 * ROUNDS),
      );
    } finally {
      for (const child of children) await child.kill();
      await store.close();
    }
  });

  test("N processes write while random ones (owner or not) are SIGKILLed: no acknowledged write is lost", async () => {
    const path = join(dir, "model.db");
    const PROCESSES = 4;
    const ROUNDS = 60;
    const KILLS = 6;
    const KEYS = 5;
    // Per key: the last acknowledged value, and values written after it
    // whose outcome is unknown (cut off by a kill).
    const acked = new Map<string, number>();
    const maybe = new Map<string, Set<number>>();
    const runtimes: Runtime[] = [others[0], others[1]];
    const agents: (Agent | undefined)[] = [];
    let kills = 0;
    let operations = 0;
    let unknown = 0;
    // Every agent started, so the end kills them all; and one restart per
    // dead agent, though both its own loop and its killer's may ask.
    const started: Agent[] = [];
    const restarting = new Map<number, Promise<void>>();
    const start = (slot: number): Promise<void> => {
      const pending = restarting.get(slot);
      if (pending) return pending;
      const next = agent(runtimes[slot % 2], path).then((fresh) => {
        started.push(fresh);
        agents[slot] = fresh;
      }).finally(() => restarting.delete(slot));
      restarting.set(slot, next);
      return next;
    };
    for (let slot = 0; slot < PROCESSES; slot++) await start(slot);
    const store = await EmbeddedStore.connect({ path });
    try {
      // Each slot writes its own keys, one write at a time, with growing
      // values; every slot reads the others' keys too.
      await Promise.all(Array.from({ length: PROCESSES }, async (_, slot) => {
        for (let round = 0; round < ROUNDS; round++) {
          const current = agents[slot];
          if (!current) break;
          const key = `p${slot}/k${round % KEYS}`;
          const value = round;
          try {
            await current.call("put", { key, value: String(value) });
            operations++;
            acked.set(key, value);
            maybe.get(key)?.clear();
          } catch {
            // Killed (this agent) or its owner died mid-write: unknown.
            unknown++;
            if (!maybe.has(key)) maybe.set(key, new Set());
            maybe.get(key)!.add(value);
            if (
              agents[slot] === current &&
              (current.process.exitCode !== null ||
                current.process.signalCode !== null)
            ) {
              await start(slot);
            } else await restarting.get(slot);
          }
          const other = `p${(slot + 1) % PROCESSES}/k${round % KEYS}`;
          const floor = acked.get(other);
          try {
            const read = await agents[slot]!.call("get", { key: other }) as {
              value: string;
            } | null;
            operations++;
            if (floor !== undefined) {
              assert.ok(
                read && Number(read.value) >= floor,
                `${other}: read ${read?.value} after ${floor} was acknowledged`,
              );
            }
          } catch (error) {
            if (error instanceof assert.AssertionError) throw error;
            unknown++;
          }
          if (kills < KILLS && slot === round % PROCESSES && round % 10 === 5) {
            kills++;
            // Any agent, the owner (the first started, or whoever took over) included.
            const victim = Math.floor(Math.random() * PROCESSES);
            const old = agents[victim]!;
            await old.kill();
            if (agents[victim] === old) await start(victim);
          }
        }
      }));
      for (const [key, value] of acked) {
        const pair = await store.get(key);
        const got = pair && Number(new TextDecoder().decode(pair.value));
        assert.ok(
          got === value || (got !== null && maybe.get(key)?.has(got)),
          `${key}: ${got}, but ${value} was acknowledged (unknown after it: ${[
            ...(maybe.get(key) ?? []),
          ]})`,
        );
      }
      const report = await store.verify();
      assert.ok(report.ok, JSON.stringify(report));
      console.log(
        `file: model: ${PROCESSES} processes, ${operations} acknowledged operations, ${unknown} unknown outcomes, ${kills} SIGKILLs, 0 lost`,
      );
      assert.equal(kills, KILLS);
    } finally {
      for (const a of started) await a.kill();
      await store.close();
    }
  });

  test("a key put with a TTL by a process that is gone expires, and a watcher in another process hears it", async () => {
    const path = join(dir, "ttl.db");
    // The writer opens first, so it owns the file and runs the expiry timer.
    const writer = await agent(others[0], path);
    const watcher = await agent(others[1], path);
    try {
      await writer.call("put", { key: "session", value: "s", ttl: 1_500 });
      await watcher.call("watch", { key: "session", watch: 7 });
      assert.equal((await watcher.report((r) => r.watch === 7)).value, "s");
      await writer.kill();
      // The watcher (or this process, if it takes over) owns the file now and
      // reclaims the key; the watch reports it gone.
      assert.equal((await watcher.report((r) => r.watch === 7)).value, null);
      const store = await EmbeddedStore.connect({ path });
      assert.equal(await store.get("session"), null);
      await store.close();
    } finally {
      await writer.kill();
      await watcher.kill();
    }
  });

  test("a watch in a client goes on across the owner's SIGKILL", async () => {
    const path = join(dir, "watch-across-kill.db");
    const owner = await agent(others[0], path);
    const watcher = await agent(others[1], path);
    const store = await EmbeddedStore.connect({ path });
    try {
      await watcher.call("watch", { key: "k", watch: 3 });
      assert.equal((await watcher.report((r) => r.watch === 3)).value, null);
      await store.put("k", "before");
      assert.equal(
        (await watcher.report((r) => r.watch === 3)).value,
        "before",
      );
      await owner.kill();
      await store.put("k", "after");
      // The restarted watch reports the state again (the stream drops a
      // repeat), then the change.
      assert.equal((await watcher.report((r) => r.watch === 3)).value, "after");
    } finally {
      await owner.kill();
      await watcher.kill();
      await store.close();
    }
  });

  test("a client's large writes and reads cross to the owner, and one past the limit fails alone, changing nothing", async () => {
    const path = join(dir, "large.db");
    const owner = await agent(others[0], path);
    const store = await EmbeddedStore.connect({ path });
    try {
      const big = new Uint8Array(15 * 1024 * 1024).fill(7);
      // 75 MiB: more than one atomic may carry, refused before any I/O.
      const op = store.atomic();
      for (let i = 0; i < 4; i++) op.put(`atomic/${i}`, big);
      assert.throws(
        () => op.put("atomic/4", big),
        (error: Error) =>
          error.name === "InvalidArgumentError" &&
          /at most/.test(error.message),
      );
      assert.equal(store.limits.maxAtomicBytes, 64 * 1024 * 1024);
      // The same 75 MiB as putMany goes in runs that fit a message each.
      const indexes = await store.putMany(
        Array.from({ length: 5 }, (_, i) => ({ key: `tree/${i}`, value: big })),
      );
      assert.equal(indexes.length, 5);
      // A 100 MiB answer (base64) is one message; it used to stall the call.
      const listed = await store.list("tree", {
        signal: AbortSignal.timeout(ANSWER_MS),
      });
      assert.deepEqual(
        listed.map((pair) => [pair.key, pair.value.length]),
        Array.from({ length: 5 }, (_, i) => [`tree/${i}`, big.length]),
      );
      assert.equal(await owner.call("get", { key: "atomic/0" }), null);
      await store.deleteMany(listed.map((pair) => pair.key));
      assert.deepEqual(await store.list("tree"), []);
    } finally {
      await store.close();
      await owner.stop();
    }
  });

  test("a hard link to the file leads to the same owner", async () => {
    const path = join(dir, "linked.db");
    const store = await EmbeddedStore.connect({ path });
    await store.put("k", "v");
    const link = join(dir, "link-to-linked.db");
    linkSync(path, link);
    const child = await agent(others[0], link);
    try {
      assert.deepEqual(await child.call("get", { key: "k" }), {
        value: "v",
        lastIndex: String((await store.get("k"))!.lastIndex),
      });
      await child.call("put", { key: "k", value: "through the link" });
      assert.equal(
        new TextDecoder().decode((await store.get("k"))!.value),
        "through the link",
      );
    } finally {
      await child.kill();
      await store.close();
    }
  });

  test("a missing directory is named as such, and opening creates no directory", async () => {
    const path = join(dir, "no-such-dir", "x.db");
    await assert.rejects(
      EmbeddedStore.connect({ path }),
      /The directory .*no-such-dir of database .* does not exist/,
    );
    assert.equal(existsSync(join(dir, "no-such-dir")), false);
  });
});
