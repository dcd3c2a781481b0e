// What fails while no caller waits: the checkpoint that makes non-durable
// commits durable, and the sweep that reclaims expired keys. Both used to be
// swallowed; now `onError` hears them, and a failed checkpoint makes the
// database refuse writes, as a failed commit does (what was acknowledged may
// not be on disk).
import assert from "node:assert/strict";
import { test } from "node:test";
import { type BackgroundWork, Database } from "../../engine/database.ts";
import { loadEngine } from "../../engine/engine.ts";
import { MemoryHost } from "../../engine/host.ts";
import { WASM } from "./support.ts";

/** A memory file whose syncs or writes fail once told to. */
class FailingHost extends MemoryHost {
  failSyncs = false;
  failWrites = false;

  override write(offset: number, data: Uint8Array): void {
    if (this.failWrites) throw eio();
    super.write(offset, data);
  }
  override sync(): void {
    if (this.failSyncs) throw eio();
  }
  override syncAsync(): Promise<void> {
    return this.failSyncs ? Promise.reject(eio()) : Promise.resolve();
  }
}

const eio = () =>
  Object.assign(new Error("injected I/O error"), { code: "EIO" });

/**
 * Waits for `promise`, keeping the process alive meanwhile (the database's
 * own timers do not), and fails past `boundMs`: 20 times the timer the work
 * waits for, so a loaded machine does not reach it.
 */
async function within<T>(promise: Promise<T>, boundMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`nothing was reported within ${boundMs} ms`)),
      boundMs,
    );
  });
  try {
    return await Promise.race([promise, bound]);
  } finally {
    clearTimeout(timer);
  }
}

/** Opens a database whose background errors resolve `reported`. */
async function open(host: FailingHost, durable: boolean) {
  await loadEngine(WASM);
  let hear!: (report: { error: unknown; source: BackgroundWork }) => void;
  const reported = new Promise<{ error: unknown; source: BackgroundWork }>(
    (resolve) => hear = resolve,
  );
  const db = await Database.open(host, {
    durable,
    onError: (error, source) => hear({ error, source }),
  });
  return { db, reported };
}

test("a checkpoint that cannot sync is reported, and writes are refused after it", async () => {
  const host = new FailingHost();
  const { db, reported } = await open(host, false);
  try {
    // A new file's first commit is synced at once; the next ones wait for
    // the checkpoint, which runs a second after them.
    await db.put("first", new TextEncoder().encode("v"));
    await db.put("k", new TextEncoder().encode("v"));
    host.failSyncs = true;
    const { error, source } = await within(reported, 20_000);
    assert.equal(source, "checkpoint");
    assert.match(String(error), /could not sync.*injected I\/O error/);
    await assert.rejects(
      db.put("k2", new TextEncoder().encode("v")),
      /refuses writes until it is reopened/,
    );
  } finally {
    host.failSyncs = false;
    await db.close();
  }
});

test("a sweep of expired keys that fails is reported", async () => {
  const host = new FailingHost();
  const { db, reported } = await open(host, true);
  try {
    await db.put("gone", new TextEncoder().encode("v"), 50);
    // The sweep is the next write: it fails at the file.
    host.failWrites = true;
    // The sweep runs 250 ms after the expiry.
    const { error, source } = await within(reported, 6_000);
    assert.equal(source, "expiry sweep");
    assert.match(String(error), /injected I\/O error/);
    // Reads still check expiry themselves.
    assert.equal(db.get("gone"), null);
  } finally {
    host.failWrites = false;
    await db.close();
  }
});

test("a listener that throws does not break the database", async () => {
  await loadEngine(WASM);
  const host = new FailingHost();
  let heard = 0;
  const db = await Database.open(host, {
    durable: false,
    onError: () => {
      heard++;
      throw new Error("listener bug");
    },
  });
  try {
    await db.put("first", new TextEncoder().encode("v"));
    await db.put("k", new TextEncoder().encode("v"));
    host.failSyncs = true;
    // Polled up to 20 times the checkpoint's timer.
    for (let i = 0; i < 800 && heard === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.equal(heard, 1);
    assert.equal(
      new TextDecoder().decode(db.get("k")!.value),
      "v",
      "reads go on",
    );
  } finally {
    host.failSyncs = false;
    await db.close();
  }
});
