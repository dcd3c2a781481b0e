// Power loss and I/O errors. A simulated disk loses power at every
// enumerated crash point (each write, set-length or sync call of a run of
// commits), keeping, dropping or tearing the writes not yet synced; the
// reopened file must hold the last acknowledged commit or the one in
// flight, never a mix, and pass the integrity check. Then every kind of
// host call fails once: the database refuses writes until reopened, and
// loses nothing acknowledged. ENGINE_SEED=n reproduces a run;
// ENGINE_CRASH_COMMITS=n makes it longer.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { StoreError } from "../../core/errors.ts";
import type { Database } from "../../engine/database.ts";
import { MemoryHost } from "../../engine/host.ts";
import {
  applyModel,
  type CallKind,
  commitOps,
  CrashHost,
  differences,
  envNumber,
  FaultHost,
  type Model,
  type Op,
  openDb,
  randomCommit,
  type Rng,
  withSeed,
} from "./support.ts";

const COMMITS = envNumber("ENGINE_CRASH_COMMITS", 24);

/** A database file, created and synced, holding `base`. */
async function created(base: Model = new Map()): Promise<Uint8Array> {
  const host = new MemoryHost();
  const db = await openDb(host);
  await commitOps(
    db,
    [...base].map(([key, value]) => ({ type: "put", key, value })),
  );
  await db.close();
  return host.bytes();
}

/** Keys beside the workload's, so pages fall out of a small cache. */
function filler(rng: Rng): Model {
  const base: Model = new Map();
  for (let i = 0; i < 3000; i++) base.set(`f/${i}`, rng.bytes(100, i));
  return base;
}

/** Runs commits until one fails; returns how many were acknowledged. */
async function runUntilFailure(db: Database, commits: Op[][]): Promise<number> {
  let acked = 0;
  for (const ops of commits) {
    try {
      await commitOps(db, ops);
    } catch (error) {
      assert.ok(error instanceof StoreError, `not a StoreError: ${error}`);
      return acked;
    }
    acked++;
  }
  return acked;
}

/** Asserts the file in `disk` holds state `acked` or `acked + 1`. */
async function assertRecovered(
  disk: MemoryHost,
  models: Model[],
  acked: number,
  what: string,
): Promise<void> {
  const db = await openDb(disk, 16);
  try {
    const report = await db.verify();
    assert.ok(report.ok, `${what}: ${JSON.stringify(report)}`);
    const asAcked = await differences(db, models[acked]);
    if (asAcked === "") return;
    const asNext = acked + 1 < models.length
      ? await differences(db, models[acked + 1])
      : "no commit was in flight";
    if (asNext === "") return;
    assert.fail(
      `${what}: neither the acknowledged commit ${acked} (${asAcked}) nor the next (${asNext})`,
    );
  } finally {
    await db.close();
  }
}

function plan(
  rng: Rng,
  base: Model = new Map(),
): { commits: Op[][]; models: Model[] } {
  const commits = Array.from({ length: COMMITS }, () => {
    const ops = randomCommit(rng, 1 + rng.below(10));
    // Writes all over the base keys make pages fall out of the cache.
    for (let i = 0; i < base.size / 500; i++) {
      const key = `f/${rng.below(base.size)}`;
      ops.push({ type: "put", key, value: rng.bytes(100, rng.below(1e6)) });
    }
    return ops;
  });
  const models: Model[] = [base];
  for (const ops of commits) {
    models.push(applyModel(models[models.length - 1], ops));
  }
  return { commits, models };
}

describe("power loss", () => {
  test("at every crash point the file holds the last acknowledged commit or the next, whole", async () => {
    await withSeed(async (rng) => {
      const start = await created();
      const { commits, models } = plan(rng);
      const probe = new CrashHost(Infinity, start);
      const db = await openDb(probe, 16);
      assert.equal(await runUntilFailure(db, commits), COMMITS);
      const calls = probe.calls;
      db.crash();
      let points = 0;
      for (let at = 1; at <= calls; at++) {
        for (const mode of ["keep", "drop", "tear"] as const) {
          const host = new CrashHost(at, start);
          const db = await openDb(host, 16);
          const acked = await runUntilFailure(db, commits);
          db.crash();
          const disk = new MemoryHost();
          disk.write(0, host.image(mode, rng));
          await assertRecovered(
            disk,
            models,
            acked,
            `crash at call ${at} of ${calls} (${mode}), after ${acked} commits`,
          );
          points++;
        }
      }
      assert.ok(points >= COMMITS * 3 * 3, `only ${points} crash points`);
    });
  });

  test("a crash in the middle of many grouped writers loses only unacknowledged ones", async () => {
    await withSeed(async (rng) => {
      const start = await created();
      for (let at = 5; at < 60; at += 3) {
        const host = new CrashHost(at, start);
        const db = await openDb(host, 16);
        const acked = new Set<number>();
        const writes = [];
        for (let i = 0; i < 60; i++) {
          writes.push(
            db.write((tx) => tx.put(`w/${i}`, rng.bytes(50, i), tx.op()))
              .then(() => acked.add(i), () => {}),
          );
          if (i % 6 === 5) await Promise.all(writes.splice(0));
        }
        await Promise.all(writes);
        db.crash();
        const disk = new MemoryHost();
        disk.write(0, host.image("tear", rng));
        const reopened = await openDb(disk, 16);
        for (const i of acked) {
          const entry = reopened.get(`w/${i}`);
          assert.ok(entry, `acknowledged write ${i} lost (crash at ${at})`);
          assert.deepEqual(entry.value, rng.bytes(50, i));
        }
        assert.ok((await reopened.verify()).ok);
        await reopened.close();
      }
    });
  });
});

describe("I/O errors", () => {
  for (const kind of ["write", "setLen", "sync", "read"] as CallKind[]) {
    test(`a failing ${kind} makes the database refuse writes, and reopening loses nothing acknowledged`, async () => {
      await withSeed(async (rng) => {
        // Reads reach the host only when pages fall out of the cache.
        const base = kind === "read" ? filler(rng) : new Map();
        const start = await created(base);
        const { commits, models } = plan(rng, base);
        let failures = 0;
        const step = kind === "setLen" ? 1 : kind === "read" ? 7 : 3;
        for (let n = 1; n <= 40 * step; n += step) {
          const host = new FaultHost(kind, n, start);
          let db: Database;
          try {
            db = await openDb(host, 16);
          } catch (error) {
            // Opening read the file and failed: a clear error, nothing written.
            assert.ok(error instanceof StoreError);
            continue;
          }
          const acked = await runUntilFailure(db, commits);
          if (!host.failed) {
            db.crash();
            continue;
          }
          failures++;
          await assert.rejects(
            commitOps(db, [{
              type: "put",
              key: "after",
              value: new Uint8Array(1),
            }]),
            (error) =>
              error instanceof StoreError &&
              /refuses writes until it is reopened/.test(error.message),
          );
          await db.close();
          const disk = new MemoryHost();
          disk.write(0, host.bytes());
          await assertRecovered(
            disk,
            models,
            acked,
            `${kind} failing at call ${n}, after ${acked} commits`,
          );
        }
        assert.ok(failures > 0, `no ${kind} call was ever failed`);
      });
    });
  }

  test("a failing len makes opening fail with a StoreError", async () => {
    const host = new FaultHost("len", 1, await created());
    await assert.rejects(openDb(host), StoreError);
  });
});
