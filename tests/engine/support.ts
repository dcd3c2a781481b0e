// What the engine tests share: loading the engine from the source tree
// (also when the tests are bundled for Node), a seeded random generator, a
// workload of commits with its model, and hosts that crash or fail.
import process from "node:process";
import { Database } from "../../engine/database.ts";
import { loadEngine } from "../../engine/engine.ts";
import { type Host, MemoryHost } from "../../engine/host.ts";

/** The module in the source tree: tests/../wasm, or dist-test/../wasm. */
export const WASM = new URL(
  "../../engine/valkeyrie_engine.wasm",
  import.meta.url,
);

/** Opens a database over `host`, loading the engine from the source tree. */
export async function openDb(
  host: Host,
  cachePages = 64,
  durable = true,
): Promise<Database> {
  await loadEngine(WASM);
  return await Database.open(host, { cachePages, durable });
}

/** An integer from the environment variable `name`, or `fallback`. */
export function envNumber(name: string, fallback: number): number {
  const value = process.env[name];
  return value === undefined || value === "" ? fallback : Number(value);
}

/** A seeded generator (xorshift32), reproducible from its seed. */
export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0 || 0x9e3779b9;
  }
  /** A number in [0, 1). */
  next(): number {
    let x = this.#state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x >>> 0;
    return this.#state / 0x1_0000_0000;
  }
  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Bytes of a pattern tied to `tag`, so a wrong value is noticed. */
  bytes(size: number, tag: number): Uint8Array {
    const out = new Uint8Array(size);
    for (let i = 0; i < size; i++) out[i] = (tag * 31 + i * 7) & 0xff;
    return out;
  }
}

/** A seed: `ENGINE_SEED` when set, else a fresh one (printed on failure). */
export function seed(): number {
  return envNumber("ENGINE_SEED", Math.floor(Math.random() * 0xffff_ffff));
}

/**
 * Runs `body` with a generator of this run's seed; a failure names the
 * seed and how to run it again.
 */
export async function withSeed(
  body: (rng: Rng) => Promise<void>,
): Promise<void> {
  const s = seed();
  try {
    await body(new Rng(s));
  } catch (error) {
    throw new Error(
      `failed with seed ${s} (ENGINE_SEED=${s} reproduces it): ${
        (error as Error).message
      }`,
      { cause: error },
    );
  }
}

/** One write of a commit. */
export type Op =
  | { type: "put"; key: string; value: Uint8Array; ttl?: number }
  | { type: "delete"; key: string }
  | { type: "deleteTree"; dir: string };

/** The expected contents: key to value. */
export type Model = Map<string, Uint8Array>;

/** A random commit over a small key space, with some large values. */
export function randomCommit(rng: Rng, size: number): Op[] {
  const ops: Op[] = [];
  for (let i = 0; i < size; i++) {
    const key = `d${rng.below(8)}/k${rng.below(200)}`;
    const roll = rng.below(20);
    if (roll < 12) {
      const big = rng.below(12) === 0;
      const length = big ? 1_000 + rng.below(40_000) : rng.below(300);
      ops.push({ type: "put", key, value: rng.bytes(length, rng.below(1e6)) });
    } else if (roll < 19) {
      ops.push({ type: "delete", key });
    } else {
      ops.push({ type: "deleteTree", dir: `d${rng.below(8)}/` });
    }
  }
  return ops;
}

/** Applies `ops` to a copy of `model`. */
export function applyModel(model: Model, ops: Op[]): Model {
  const next = new Map(model);
  for (const op of ops) {
    if (op.type === "put") next.set(op.key, op.value);
    else if (op.type === "delete") next.delete(op.key);
    else {
      for (const key of [...next.keys()]) {
        if (key.startsWith(op.dir)) next.delete(key);
      }
    }
  }
  return next;
}

/** Commits `ops` in one write of `db`. */
export function commitOps(db: Database, ops: Op[]): Promise<void> {
  return db.write((tx) => {
    const revision = tx.op();
    for (const op of ops) {
      if (op.type === "put") tx.put(op.key, op.value, revision, op.ttl);
      else if (op.type === "delete") tx.delete(op.key);
      else tx.deleteTree(null, op.dir);
    }
  });
}

/** Whether `db` holds exactly `model`; returns what differs, or "". */
export async function differences(db: Database, model: Model): Promise<string> {
  const entries = await db.list("");
  const seen = new Set<string>();
  for (const entry of entries) {
    seen.add(entry.key);
    const want = model.get(entry.key);
    if (!want) return `unexpected key ${entry.key}`;
    if (!equalBytes(want, entry.value)) return `wrong value at ${entry.key}`;
    const got = db.get(entry.key);
    if (!got || !equalBytes(got.value, want)) {
      return `get(${entry.key}) differs`;
    }
  }
  for (const key of model.keys()) {
    if (!seen.has(key)) return `missing key ${key}`;
  }
  return "";
}

/** Whether two byte arrays are equal. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Thrown by a host at its crash point. */
export class Crash extends Error {}

/**
 * A disk that loses power: writes since the last sync are in the OS cache
 * until a sync makes them durable. At the crash point (the n-th write, set
 * length or sync call) every call throws, and `image()` is what the disk
 * holds after the power loss: each unsynced write kept, dropped, or torn
 * (a random subset of its 512-byte sectors written).
 */
export class CrashHost implements Host {
  /** What the disk holds durably. */
  #durable = new MemoryHost();
  /** What reads see now (durable plus unsynced writes). */
  #current = new MemoryHost();
  #unsynced: Array<{ offset: number; data: Uint8Array } | { len: number }> = [];
  /** Calls counted so far (writes, set lengths, syncs). */
  calls = 0;
  crashed = false;
  #crashAt: number;

  constructor(crashAt = Infinity, from?: Uint8Array) {
    this.#crashAt = crashAt;
    if (from) {
      this.#durable.write(0, from);
      this.#current.write(0, from);
    }
  }

  #tick(): void {
    if (this.crashed) throw new Crash("the disk lost power");
    if (++this.calls >= this.#crashAt) {
      this.crashed = true;
      throw new Crash("the disk lost power");
    }
  }

  len(): number {
    if (this.crashed) throw new Crash("the disk lost power");
    return this.#current.len();
  }
  read(offset: number, target: Uint8Array): void {
    if (this.crashed) throw new Crash("the disk lost power");
    this.#current.read(offset, target);
  }
  write(offset: number, data: Uint8Array): void {
    this.#tick();
    this.#current.write(offset, data);
    this.#unsynced.push({ offset, data: data.slice() });
  }
  setLen(len: number): void {
    this.#tick();
    this.#current.setLen(len);
    this.#unsynced.push({ len });
  }
  sync(): void {
    this.#tick();
    this.#durable = new MemoryHost();
    this.#durable.write(0, this.#current.bytes());
    this.#durable.setLen(this.#current.len());
    this.#unsynced = [];
  }
  syncAsync(): Promise<void> {
    try {
      this.sync();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }
  close(): void {}

  /**
   * The disk after the power loss. `mode`: "keep" every unsynced write,
   * "drop" them all, or "tear" (each kept, dropped or torn at random).
   */
  image(mode: "keep" | "drop" | "tear", rng: Rng): Uint8Array {
    const disk = new MemoryHost();
    disk.write(0, this.#durable.bytes());
    disk.setLen(this.#durable.len());
    if (mode === "drop") return disk.bytes();
    for (const change of this.#unsynced) {
      const fate = mode === "keep" ? 0 : rng.below(3);
      if (fate === 1) continue;
      if ("len" in change) {
        disk.setLen(change.len);
        continue;
      }
      if (fate === 0) {
        disk.write(change.offset, change.data);
        continue;
      }
      for (let at = 0; at < change.data.length; at += 512) {
        if (rng.below(2) === 0) {
          disk.write(
            change.offset + at,
            change.data.subarray(at, Math.min(at + 512, change.data.length)),
          );
        }
      }
    }
    return disk.bytes();
  }
}

/** The kinds of host call a {@linkcode FaultHost} can fail. */
export type CallKind = "len" | "read" | "write" | "setLen" | "sync";

/** A memory file whose `n`-th call of one kind fails with EIO. */
export class FaultHost extends MemoryHost {
  #kind: CallKind;
  #left: number;
  failed = false;

  constructor(kind: CallKind, n: number, from?: Uint8Array) {
    super();
    if (from) super.write(0, from);
    this.#kind = kind;
    this.#left = n;
  }

  #maybeFail(kind: CallKind): void {
    if (kind !== this.#kind || this.failed) return;
    if (--this.#left <= 0) {
      this.failed = true;
      throw Object.assign(new Error("injected I/O error"), { code: "EIO" });
    }
  }

  override len(): number {
    this.#maybeFail("len");
    return super.len();
  }
  override read(offset: number, target: Uint8Array): void {
    this.#maybeFail("read");
    super.read(offset, target);
  }
  override write(offset: number, data: Uint8Array): void {
    this.#maybeFail("write");
    super.write(offset, data);
  }
  override setLen(len: number): void {
    this.#maybeFail("setLen");
    super.setLen(len);
  }
  override sync(): void {
    this.#maybeFail("sync");
  }
  override syncAsync(): Promise<void> {
    try {
      this.sync();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }
}
