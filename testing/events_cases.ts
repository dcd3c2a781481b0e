// CONTRACT.md "Second wave", Change events with resume: watchEvents sends the
// tree as puts, synced, then one event per change in commit order per key;
// with fromIndex it replays what the backend kept or starts with reset, and
// either way a consumer that applies the events ends with the current tree.
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../core/errors.ts";
import type { KVPair, Store, WatchEvent } from "../core/types.ts";
import {
  caseDefiner,
  type ConformanceTarget,
  show,
  StreamReader,
  type TestRunner,
  text,
} from "./harness.ts";
import { expiryBound, TTL_MS } from "./ttl_cases.ts";

/** A consumer's view of a tree, kept by applying events. */
class View {
  readonly values = new Map<string, string>();
  synced: bigint | undefined;

  apply(event: WatchEvent): void {
    if (event.type === "put") {
      this.values.set(event.pair.key, text(event.pair)!);
    } else if (event.type === "delete") this.values.delete(event.key);
    else if (event.type === "reset") this.values.clear();
    else this.synced = event.lastIndex;
  }

  /** Applies events up to and including the next `synced`. */
  async sync(reader: StreamReader<WatchEvent>): Promise<WatchEvent[]> {
    const events: WatchEvent[] = [];
    while (true) {
      const event = await reader.next();
      events.push(event);
      this.apply(event);
      if (event.type === "synced") return events;
    }
  }

  /** Applies events until `done` holds for the view. */
  async until(
    reader: StreamReader<WatchEvent>,
    done: (view: View) => boolean,
  ): Promise<void> {
    while (!done(this)) this.apply(await reader.next());
  }

  same(pairs: KVPair[]): boolean {
    return pairs.length === this.values.size &&
      pairs.every((p) => this.values.get(p.key) === text(p));
  }
}

/**
 * The next event that is not `synced`: a backend that re-lists the tree
 * after each change (Consul's blocking queries) may say `synced` again
 * between changes, which is no change.
 */
async function nextChange(
  reader: StreamReader<WatchEvent>,
  ms?: number,
): Promise<WatchEvent> {
  while (true) {
    const event = await reader.next(ms);
    if (event.type !== "synced") return event;
  }
}

async function listed(store: Store, prefix: string): Promise<KVPair[]> {
  return await store.list(prefix);
}

export function eventCases(
  runner: TestRunner,
  target: ConformanceTarget,
): void {
  const test = caseDefiner(runner, target);

  test("watchEvents sends the tree as puts in key order, synced, then one event per change", async (c) => {
    const s = c.a;
    await s.put(c.k("t", "b"), "b");
    const a = await s.put(c.k("t", "a", "deep"), "a");
    await s.put(c.k("outside"), "x");
    const reader = new StreamReader(s.watchEvents(c.k("t")));
    const view = new View();
    const first = await view.sync(reader);
    assert.deepEqual(first.map((e) => e.type), ["put", "put", "synced"]);
    assert.deepEqual(
      first.slice(0, 2).map((e) => e.type === "put" && e.pair.key),
      [c.k("t", "a", "deep"), c.k("t", "b")],
    );
    const put0 = first[0] as Extract<WatchEvent, { type: "put" }>;
    assert.equal(put0.pair.lastIndex, a);
    const synced = first[2] as Extract<WatchEvent, { type: "synced" }>;
    assert.ok(synced.lastIndex >= a, `synced ${synced.lastIndex} >= ${a}`);

    const written = await s.put(c.k("t", "c"), "c");
    const event = await nextChange(reader);
    assert.equal(event.type, "put");
    if (event.type === "put") {
      assert.equal(event.pair.key, c.k("t", "c"));
      assert.equal(text(event.pair), "c");
      assert.equal(event.pair.lastIndex, written);
    }
    await s.put(c.k("elsewhere"), "not under the prefix");
    await s.delete(c.k("t", "b"));
    const deleted = await nextChange(reader);
    assert.equal(deleted.type, "delete");
    assert.equal(deleted.type === "delete" && deleted.key, c.k("t", "b"));
    await reader.cancel();
  });

  test("watchEvents hears another handle's writes and an atomic() once per key, in order per key", async (c) => {
    const b = await c.open();
    const reader = new StreamReader(c.a.watchEvents(c.k("t")));
    const view = new View();
    assert.deepEqual((await view.sync(reader)).map((e) => e.type), ["synced"]);
    for (let i = 0; i < 10; i++) await b.put(c.k("t", "n"), `v${i}`);
    const op = await b.atomic()
      .put(c.k("t", "x"), "x")
      .put(c.k("t", "y"), "y")
      .commit();
    assert.ok(op.ok);
    await view.until(reader, (v) => v.values.has(c.k("t", "y")));
    assert.equal(view.values.get(c.k("t", "n")), "v9");
    assert.equal(view.values.get(c.k("t", "x")), "x");
    await reader.cancel();
  });

  test("events of one key come in commit order and never go back", async (c) => {
    const s = c.a;
    const reader = new StreamReader(s.watchEvents(c.k("t")));
    await new View().sync(reader);
    const writes: bigint[] = [];
    for (let i = 0; i < 20; i++) {
      writes.push(await s.put(c.k("t", "k"), `v${i}`));
    }
    let last = -1n;
    let value = "";
    while (value !== "v19") {
      const event = await nextChange(reader);
      assert.equal(event.type, "put");
      if (event.type !== "put") break;
      assert.ok(event.pair.lastIndex > last, "lastIndex grows");
      assert.ok(writes.includes(event.pair.lastIndex), "a lastIndex put gave");
      last = event.pair.lastIndex;
      value = text(event.pair)!;
    }
    assert.equal(last, writes.at(-1));
    await reader.cancel();
  });

  test("fromIndex resumes: replayed changes or reset, and the view ends as the tree", async (c) => {
    const s = c.a;
    await s.put(c.k("t", "keep"), "1");
    await s.put(c.k("t", "gone"), "2");
    const first = new StreamReader(s.watchEvents(c.k("t")));
    const view = new View();
    await view.sync(first);
    await first.cancel();
    const from = view.synced!;
    await s.put(c.k("t", "new"), "3");
    await s.delete(c.k("t", "gone"));
    await s.put(c.k("t", "keep"), "changed");
    const resumed = new StreamReader(
      s.watchEvents(c.k("t"), { fromIndex: from }),
    );
    const events = await view.sync(resumed);
    assert.ok(view.same(await listed(s, c.k("t"))), show(events));
    if (events[0].type !== "reset") {
      // Replayed history: the delete is there, not only a smaller tree.
      assert.ok(
        events.some((e) => e.type === "delete" && e.key === c.k("t", "gone")),
        show(events),
      );
    }
    // A resume from the future or from 0 still ends as the tree.
    for (const fromIndex of [0n, from + 10n ** 15n]) {
      const again = new View();
      const reader = new StreamReader(s.watchEvents(c.k("t"), { fromIndex }));
      await again.sync(reader);
      assert.ok(
        again.same(await listed(s, c.k("t"))),
        `fromIndex ${fromIndex}`,
      );
      await reader.cancel();
    }
    await resumed.cancel();
  });

  test("an expired key is a delete event, on time", async (c) => {
    const s = c.a;
    const reader = new StreamReader(s.watchEvents(c.k("t")));
    await new View().sync(reader);
    await s.put(c.k("t", "short"), "x", { ttl: TTL_MS });
    assert.equal((await nextChange(reader)).type, "put");
    const gone = await nextChange(reader, expiryBound(s) + 5_000);
    assert.deepEqual(
      gone.type === "delete" ? gone.key : gone,
      c.k("t", "short"),
    );
    await reader.cancel();
  });

  test("bad fromIndex is InvalidArgumentError; an abort errors the stream", async (c) => {
    const s = c.a;
    for (const fromIndex of [1, -1n, "5"]) {
      assert.throws(
        () => s.watchEvents(c.k("t"), { fromIndex: fromIndex as bigint }),
        InvalidArgumentError,
      );
    }
    const controller = new AbortController();
    const reader = new StreamReader(
      s.watchEvents(c.k("t"), { signal: controller.signal }),
    );
    await new View().sync(reader);
    const reason = new Error("stop");
    controller.abort(reason);
    await assert.rejects(reader.next(), (e) => e === reason);
  });
}
