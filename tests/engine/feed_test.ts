// The database's change feed: a listener that subscribes while a commit is
// syncing (the commit began with no listener, so it collected no changes)
// read the state before that commit, and must still hear it. A watch of a
// client that moved to a new owner subscribed just so, and missed the
// change for good.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { watchKeyLocally } from "../../core/local_feed.ts";
import type { Entry } from "../../core/driver.ts";
import { MemoryHost } from "../../engine/host.ts";
import { openDb } from "./support.ts";

/** A memory file whose syncs wait until the test lets them go. */
class HeldSyncHost extends MemoryHost {
  #waiting: Array<() => void> = [];
  #held = false;

  hold(): void {
    this.#held = true;
  }

  /** Resolves once a sync is waiting. */
  async syncing(): Promise<void> {
    while (this.#waiting.length === 0) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  release(): void {
    this.#held = false;
    for (const go of this.#waiting.splice(0)) go();
  }

  override syncAsync(): Promise<void> {
    if (!this.#held) return super.syncAsync();
    return new Promise<void>((resolve) => this.#waiting.push(resolve))
      .then(() => super.syncAsync());
  }
}

describe("the database's change feed", () => {
  test("a watch that starts while a commit without listeners syncs hears that commit", async () => {
    const host = new HeldSyncHost();
    const db = await openDb(host);
    try {
      await db.put("k", new TextEncoder().encode("before"));
      host.hold();
      const put = db.put("k", new TextEncoder().encode("after"));
      const tree = db.write((tx) => tx.deleteTree(null, "gone/"));
      await host.syncing();
      const states: (Entry | null)[] = [];
      const stop = new AbortController();
      watchKeyLocally(db, "k", {
        state: (entry) => states.push(entry),
        error: (error) => assert.fail(String(error)),
      }, stop.signal);
      host.release();
      const index = await put;
      await tree;
      stop.abort();
      const last = states.at(-1);
      assert.ok(last, "the watch heard nothing");
      assert.equal(new TextDecoder().decode(last.value), "after");
      assert.equal(last.lastIndex, index);
    } finally {
      await db.close();
    }
  });

  test("a listener that was there from the start hears a commit once, as before", async () => {
    const db = await openDb(new MemoryHost());
    try {
      const heard: string[] = [];
      const stop = db.listen((changes) => {
        for (const change of changes) heard.push(change.key);
      });
      await db.put("a", new Uint8Array([1]));
      await db.delete("a");
      stop();
      await db.put("b", new Uint8Array([2]));
      assert.deepEqual(heard, ["a", "a"]);
    } finally {
      await db.close();
    }
  });
});
