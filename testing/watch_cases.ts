// CONTRACT.md "Watches": the current state first, a chunk per write (also of
// the same bytes), null on delete, on across delete and re-create, snapshots
// of a tree after every change with bursts folded, cancel and abort.
import assert from "node:assert/strict";
import type { KVPair } from "../core/types.ts";
import {
  caseDefiner,
  type ConformanceTarget,
  keys,
  show,
  SLACK_MS,
  sleep,
  StreamReader,
  type TestRunner,
  text,
} from "./harness.ts";

export function watchCases(
  runner: TestRunner,
  target: ConformanceTarget,
): void {
  const test = caseDefiner(runner, target);

  // valkeyrie's testWatch, with identical values.
  test("watch sends the current pair, then every write, also of the same bytes", async (c) => {
    const s = c.a;
    await s.put(c.k("w"), "v0");
    const watch = new StreamReader(s.watch(c.k("w")));
    const first = (await watch.next())!;
    assert.equal(first.key, c.k("w"));
    assert.equal(text(first), "v0");
    let last = first.lastIndex;
    for (const value of ["v1", "v1", "v1", "v2"]) {
      await s.put(c.k("w"), value);
      const pair = (await watch.next())!;
      assert.equal(text(pair), value);
      assert.ok(pair.lastIndex > last, `${pair.lastIndex} after ${last}`);
      assert.deepEqual(pair, await s.get(c.k("w")));
      last = pair.lastIndex;
    }
    await watch.cancel();
  });

  test("watch of a missing key starts with null and goes on across delete and re-create", async (c) => {
    const s = c.a;
    const watch = new StreamReader(s.watch(c.k("later")));
    assert.equal(await watch.next(), null);
    await s.put(c.k("later"), "born");
    assert.equal(text(await watch.next()), "born");
    await s.delete(c.k("later"));
    assert.equal(await watch.next(), null);
    await s.put(c.k("later"), "reborn");
    assert.equal(text(await watch.next()), "reborn");
    await s.atomic().delete(c.k("later")).commit();
    assert.equal(await watch.next(), null);
    await watch.cancel();
  });

  test("watch hears writes made through another handle", async (c) => {
    const b = await c.open();
    const watch = new StreamReader(c.a.watch(c.k("x")));
    assert.equal(await watch.next(), null);
    await b.put(c.k("x"), "from b");
    assert.equal(text(await watch.next()), "from b");
    await b.atomicPut(c.k("x"), "cas", (await b.get(c.k("x")))!);
    assert.equal(text(await watch.next()), "cas");
    await b.deleteTree(c.k("x"));
    assert.equal(await watch.next(), null);
    await watch.cancel();
  });

  test("watch ignores other keys, children and string-prefix siblings", async (c) => {
    const s = c.a;
    const watch = new StreamReader(s.watch(c.k("one")));
    assert.equal(await watch.next(), null);
    await s.put(c.k("one", "child"), "c");
    await s.put(c.k("one-sibling"), "s");
    await s.put(c.k("onex"), "x");
    await s.put(c.k("one"), "mine");
    assert.equal(text(await watch.next()), "mine");
    await watch.cancel();
  });

  test("a burst of writes ends with a chunk of the final value", async (c) => {
    const s = c.a;
    const watch = new StreamReader(s.watch(c.k("burst")));
    assert.equal(await watch.next(), null);
    for (let i = 0; i < 25; i++) await s.put(c.k("burst"), `v${i}`);
    const final = await s.get(c.k("burst"));
    let previous = 0n;
    const last = await watch.until((pair) => {
      assert.ok(pair === null || pair.lastIndex > previous, "in order");
      previous = pair?.lastIndex ?? previous;
      return pair?.lastIndex === final!.lastIndex;
    });
    assert.equal(text(last), "v24");
    await watch.cancel();
  });

  // valkeyrie's testWatchTree, which reacts to a child delete.
  test("watchTree sends the tree, then a snapshot after a put, a value change and a delete", async (c) => {
    const s = c.a;
    await s.put(c.k("tree", "a"), "a");
    await s.put(c.k("tree", "b", "deep"), "b");
    const watch = new StreamReader(s.watchTree(c.k("tree")));
    const first = await watch.next();
    assert.deepEqual(first, await s.list(c.k("tree")));
    await s.put(c.k("tree", "c"), "c");
    assert.deepEqual(keys(await watch.next()), [
      c.k("tree", "a"),
      c.k("tree", "b", "deep"),
      c.k("tree", "c"),
    ]);
    await s.put(c.k("tree", "b", "deep"), "changed");
    const changed = await watch.next();
    assert.equal(
      text(changed.find((p) => p.key === c.k("tree", "b", "deep"))!),
      "changed",
    );
    assert.deepEqual(changed, await s.list(c.k("tree")));
    await s.put(c.k("tree", "a"), "a");
    const same = await watch.next();
    assert.deepEqual(same, await s.list(c.k("tree")), "same bytes count too");
    await s.delete(c.k("tree", "a"));
    assert.deepEqual(keys(await watch.next()), [
      c.k("tree", "b", "deep"),
      c.k("tree", "c"),
    ]);
    await watch.cancel();
  });

  test("watchTree of an empty prefix starts with [] and sees the first key", async (c) => {
    const s = c.a;
    const watch = new StreamReader(s.watchTree(c.k("empty")));
    assert.deepEqual(await watch.next(), []);
    await s.put(c.k("empty", "x", "y", "z"), "deep");
    assert.deepEqual(keys(await watch.next()), [c.k("empty", "x", "y", "z")]);
    await s.put(c.k("empty"), "the prefix key is not in its tree");
    await s.put(c.k("empty", "w"), "w");
    assert.deepEqual(keys(await watch.next()), [
      c.k("empty", "w"),
      c.k("empty", "x", "y", "z"),
    ]);
    await watch.cancel();
  });

  test("watchTree folds a burst and its last snapshot equals the final state", async (c) => {
    const s = c.a;
    const b = await c.open();
    const watch = new StreamReader(s.watchTree(c.k("fold")));
    assert.deepEqual(await watch.next(), []);
    // A second watch of the same handle, read after the burst until it
    // shows the final state, tells when the backend's feed has delivered it.
    const pace = new StreamReader(s.watchTree(c.k("fold")));
    assert.deepEqual(await pace.next(), []);
    // Nobody reads during the burst: the changes must fold, not pile up.
    for (let i = 0; i < 40; i++) {
      await (i % 2 ? b : s).put(c.k("fold", `k${i % 10}`), `v${i}`);
      if (i % 7 === 0) await b.delete(c.k("fold", `k${(i + 3) % 10}`));
    }
    await s.atomic()
      .put(c.k("fold", "tx1"), "1")
      .put(c.k("fold", "tx2"), "2")
      .delete(c.k("fold", "k0"))
      .commit();
    const final = await s.list(c.k("fold"));
    // Once the feed has delivered every change (the pacing watch has seen
    // the final state, however long a loaded machine took), and after some
    // slack for watches whose feeds are their own, a folding watch holds
    // one snapshot, the final one, while a queue would hold dozens.
    await pace.until((l) => show(l) === show(final));
    await sleep(SLACK_MS);
    const first = await watch.next();
    assert.equal(show(first), show(final), "the first read is the final state");
    const quiet = await watch.maybe(300);
    assert.ok(
      quiet === undefined || show(quiet) === show(final),
      "no snapshot after the final state differs from it",
    );
    await watch.cancel();
    await pace.cancel();
  });

  test("watchTree sees writes of another handle and an atomic() as changes", async (c) => {
    const b = await c.open();
    const watch = new StreamReader(c.a.watchTree(c.k("tx")));
    assert.deepEqual(await watch.next(), []);
    await b.atomic()
      .put(c.k("tx", "one"), "1")
      .put(c.k("tx", "two"), "2")
      .commit();
    const snapshot = await watch.until((l) => l.length === 2);
    assert.deepEqual(snapshot, await b.list(c.k("tx")));
    await b.deleteTree(c.k("tx"));
    assert.deepEqual(await watch.until((l) => l.length === 0), []);
    await watch.cancel();
  });

  test("cancelling a watch ends it and the store carries on", async (c) => {
    const s = c.a;
    const stream = s.watch(c.k("c"));
    const watch = new StreamReader(stream);
    assert.equal(await watch.next(), null);
    await watch.cancel();
    const tree = new StreamReader(s.watchTree(c.k("c")));
    assert.deepEqual(await tree.next(), []);
    await tree.cancel();
    await s.put(c.k("c"), "after");
    assert.equal(text(await s.get(c.k("c"))), "after");
    // A fresh watch after many cancelled ones still hears changes.
    for (let i = 0; i < 20; i++) {
      const w = new StreamReader(s.watchTree(c.k("c")));
      await w.next();
      await w.cancel();
    }
    const again = new StreamReader(s.watch(c.k("c")));
    assert.equal(text(await again.next()), "after");
    await s.put(c.k("c"), "heard");
    assert.equal(text(await again.next()), "heard");
    await again.cancel();
  });

  test("aborting a watch's signal errors the stream with the reason", async (c) => {
    const s = c.a;
    const controller = new AbortController();
    const reason = new Error("stop watching");
    const key = new StreamReader(
      s.watch(c.k("a"), { signal: controller.signal }),
    );
    const tree = new StreamReader(
      s.watchTree(c.k("a"), { signal: controller.signal }),
    );
    assert.equal(await key.next(), null);
    assert.deepEqual(await tree.next(), []);
    controller.abort(reason);
    assert.equal(await key.failure(), reason);
    assert.equal(await tree.failure(), reason);
    assert.throws(
      () => s.watch(c.k("a"), { signal: controller.signal }),
      reason,
    );
    assert.throws(
      () => s.watchTree(c.k("a"), { signal: controller.signal }),
      reason,
    );
  });

  test("several watches of one key each get every change", async (c) => {
    const s = c.a;
    const watches = Array.from(
      { length: 3 },
      () => new StreamReader(s.watch(c.k("many"))),
    );
    const trees = Array.from(
      { length: 2 },
      () => new StreamReader(s.watchTree(c.k())),
    );
    for (const w of watches) assert.equal(await w.next(), null);
    for (const t of trees) assert.deepEqual(await t.next(), []);
    await s.put(c.k("many"), "1");
    for (const w of watches) assert.equal(text(await w.next()), "1");
    for (const t of trees) {
      assert.deepEqual(keys(await t.next()), [c.k("many")]);
    }
    await watches[0].cancel();
    await s.put(c.k("many"), "2");
    for (const w of watches.slice(1)) assert.equal(text(await w.next()), "2");
    for (const w of watches.slice(1)) await w.cancel();
    for (const t of trees) await t.cancel();
  });

  test("pairs from watches are plain pairs with Uint8Array values", async (c) => {
    const s = c.a;
    await s.put(c.k("shape"), "v");
    const watch = new StreamReader(s.watch(c.k("shape")));
    const pair = (await watch.next()) as KVPair;
    assert.deepEqual(Object.keys(pair).sort(), ["key", "lastIndex", "value"]);
    assert.equal(Object.getPrototypeOf(pair.value), Uint8Array.prototype);
    await watch.cancel();
    await sleep(0);
  });
}
