// What the garbage collector must not break. Node 20 collects an
// AbortSignal.timeout() that only AbortSignal.any() refers to, and it then
// never fires: a resigned candidate with no rival sat out forever (a CI
// run of the leadership cases hung on it). These tests run full collections
// every few milliseconds while such waits are under way.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import vm from "node:vm";
import v8 from "node:v8";
import { deadline } from "../../core/abort.ts";
import { MemoryStore } from "../../backends/memory/mod.ts";
import { Candidate } from "../../leadership/mod.ts";
import { StreamReader } from "../../testing/harness.ts";

/** A full garbage collection, in Deno, Bun and Node alike. */
const collectGarbage: () => void = (() => {
  const bun = (globalThis as { Bun?: { gc(sync: boolean): void } }).Bun;
  if (bun) return () => bun.gc(true);
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  return () => gc();
})();

/** Runs `work` while the garbage collector runs every 10 ms. */
async function collecting<T>(work: () => Promise<T>): Promise<T> {
  const timer = setInterval(collectGarbage, 10);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/**
 * How long these tests wait for a timer of 100–200 ms that the collector
 * must not stop: the bug they catch makes it never fire, and a loaded
 * machine, collecting every 10 ms, only makes it late.
 */
const NEVER_MS = 10_000;

/** Resolves with what `signal` aborted with, or "still waiting" after `ms`. */
function abortedWithin(signal: AbortSignal, ms: number): Promise<unknown> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve("still waiting"), ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve(signal.reason);
    }, { once: true });
  });
}

describe("the garbage collector", () => {
  test("does not stop a deadline from firing", async () => {
    const reason = await collecting(async () => {
      // Referred to by nothing but the wait, as in a function that awaits it.
      const waiting = deadline(100, new AbortController().signal);
      return await abortedWithin(waiting.signal, NEVER_MS);
    });
    assert.ok(reason instanceof DOMException, String(reason));
    assert.equal(reason.name, "TimeoutError");
  });

  test("a deadline follows its sources with their reason, and dispose() detaches it", async () => {
    const source = new AbortController();
    const following = deadline(undefined, undefined, source.signal);
    source.abort("because");
    assert.equal(following.signal.reason, "because");
    const early = new AbortController();
    early.abort("already");
    const late = deadline(1_000, early.signal);
    assert.equal(late.signal.reason, "already");
    const other = new AbortController();
    const detached = deadline(20, other.signal);
    detached.dispose();
    other.abort("ignored");
    assert.equal(await abortedWithin(detached.signal, 100), "still waiting");
  });

  test("does not keep a resigned candidate without a rival from campaigning again", async () => {
    await using store = new MemoryStore();
    await using candidate = new Candidate(store, "leader", { ttl: 200 });
    const elected = new StreamReader(candidate.campaign());
    assert.equal(await elected.next(), false);
    assert.equal(await elected.next(), true);
    await collecting(async () => {
      candidate.resign();
      assert.equal(await elected.next(), false);
      assert.equal(await elected.next(NEVER_MS), true, "elected again");
    });
  });

  test("does not stop a lock wait given an inline AbortSignal.timeout()", async () => {
    await using store = new MemoryStore();
    await using _held = await store.lock("job");
    // The held lock renews itself, so only the timeout can end the wait; a
    // timeout that never fires is told by NEVER_MS, not by a guess at how
    // late a loaded machine fires it.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const error = await collecting(() =>
      Promise.race([
        store.lock("job", { signal: AbortSignal.timeout(100) }).then(
          () => "acquired",
          (error) => error,
        ),
        new Promise((resolve) => {
          timer = setTimeout(resolve, NEVER_MS, "still waiting");
        }),
      ])
    );
    clearTimeout(timer);
    assert.ok(error instanceof DOMException, String(error));
    assert.equal(error.name, "TimeoutError");
  });
});
