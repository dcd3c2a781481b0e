// The linearizability checker must be able to fail: it rejects hand-made
// histories no order explains, accepts tricky legal ones, and flags stores
// broken on purpose when a random workload runs against them.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { openStore } from "../../mod.ts";
import { droppedWrites, staleReads } from "./broken_stores.ts";
import type { KvInput, KvOperation, KvOutcome } from "./history.ts";
import { HistoryRecorder, outcomeOfError } from "./history.ts";
import { checkLinearizable, describeResult } from "./linearizability.ts";
import { runWorkload, storeClient } from "./workload.ts";
import type { Store } from "../../core/types.ts";

/** A hand-made history: operations in the order given, times as given. */
function history(
  ...ops: [string, KvInput, number, number | null, KvOutcome][]
): KvOperation[] {
  return ops.map(([client, input, invokedAt, completedAt, outcome], id) => ({
    id,
    client,
    input,
    invokedAt,
    completedAt: completedAt ?? Infinity,
    outcome,
  }));
}

const put = (value: string, key = "k"): KvInput => ({
  type: "put",
  key,
  value,
});
const get = (key = "k"): KvInput => ({ type: "get", key });
const cas = (value: string, expected: bigint | null, key = "k"): KvInput => ({
  type: "cas",
  key,
  value,
  expected,
});
const wrote = (lastIndex: bigint): KvOutcome => ({ status: "ok", lastIndex });
const read = (value: string | null, lastIndex = 0n): KvOutcome => ({
  status: "ok",
  read: value === null ? null : { value, lastIndex },
});
const unknown: KvOutcome = { status: "unknown", error: "TimeoutError" };

function rejects(operations: KvOperation[], why: RegExp) {
  const result = checkLinearizable(operations);
  assert.equal(result.linearizable, false, "should be rejected");
  assert.match(describeResult(result), why);
}

function accepts(operations: KvOperation[]) {
  const result = checkLinearizable(operations);
  assert.equal(result.linearizable, true, describeResult(result));
}

describe("checkLinearizable rejects", () => {
  test("a stale read after a completed write", () => {
    rejects(
      history(
        ["a", put("v1"), 0, 1, wrote(1n)],
        ["a", put("v2"), 2, 3, wrote(2n)],
        ["b", get(), 4, 5, read("v1", 1n)],
      ),
      /#2 b .*"v1"/,
    );
  });

  test("a lost write", () => {
    rejects(
      history(
        ["a", put("v1"), 0, 1, wrote(1n)],
        ["b", get(), 2, 3, read(null)],
      ),
      /k=v1@1; then this operation fits no order/,
    );
  });

  test("two successful CAS from the same version", () => {
    rejects(
      history(
        ["a", put("v1"), 0, 1, wrote(1n)],
        ["b", cas("v2", 1n), 2, 5, wrote(2n)],
        ["c", cas("v3", 1n), 3, 6, wrote(3n)],
      ),
      /not linearizable/,
    );
  });

  test("a read of a value never written", () => {
    rejects(
      history(
        ["a", put("v1"), 0, 1, wrote(1n)],
        ["b", get(), 2, 3, read("v9", 1n)],
      ),
      /"v9"/,
    );
  });

  test("a read of the right value at a version it never had", () => {
    rejects(
      history(
        ["a", put("v1"), 0, 1, wrote(1n)],
        ["b", get(), 2, 3, read("v1", 7n)],
      ),
      /not linearizable/,
    );
  });

  test("a CAS refused although its version was current", () => {
    rejects(
      history(
        ["a", put("v1"), 0, 1, wrote(1n)],
        ["b", cas("v2", 1n), 2, 3, { status: "failed", reason: "modified" }],
      ),
      /"modified"/,
    );
  });

  test("an unknown write seen and then unseen", () => {
    rejects(
      history(
        ["a", put("v1"), 0, null, unknown],
        ["b", get(), 2, 3, read("v1", 4n)],
        ["b", get(), 4, 5, read(null)],
      ),
      /not linearizable/,
    );
  });

  test("two commits that each pass per key but not jointly", () => {
    const atomic = (value: string, absent: string): KvInput => ({
      type: "atomic",
      checks: [{ key: absent, lastIndex: null }],
      writes: [
        { type: "put", key: "x", value },
        { type: "put", key: "y", value },
      ],
    });
    const operations = history(
      ["a", atomic("A", "x"), 0, 2, wrote(5n)],
      ["b", atomic("B", "y"), 0, 2, wrote(6n)],
      ["c", get("x"), 3, 4, read("B", 6n)],
      ["c", get("y"), 5, 6, read("A", 5n)],
    );
    const result = checkLinearizable(operations);
    assert.equal(result.partitions.length, 1, "x and y checked together");
    assert.deepEqual(result.partitions[0].keys, ["x", "y"]);
    assert.equal(result.linearizable, false);
  });
});

describe("checkLinearizable accepts", () => {
  test("overlapping operations in either order", () => {
    for (const seen of ["v1", null]) {
      accepts(history(
        ["a", put("v1"), 0, 10, wrote(1n)],
        ["b", get(), 1, 2, read(seen, 1n)],
        ["c", get(), 3, 4, read(seen, 1n)],
        ["d", get(), 11, 12, read("v1", 1n)],
      ));
    }
    // Two overlapping writes: later reads may see either, not both orders.
    for (const [last, index] of [["v1", 1n], ["v2", 2n]] as const) {
      accepts(history(
        ["a", put("v1"), 0, 10, wrote(1n)],
        ["b", put("v2"), 1, 9, wrote(2n)],
        ["c", get(), 11, 12, read(last, index)],
      ));
    }
  });

  test("an unknown write that took effect long after it was invoked", () => {
    accepts(history(
      ["a", put("v1"), 0, null, unknown],
      ["b", get(), 5, 6, read(null)],
      ["b", put("v2"), 6, 7, wrote(2n)],
      ["b", get(), 8, 9, read("v2", 2n)],
      ["c", get(), 10, 11, read("v1", 9n)],
      ["c", get(), 12, 13, read("v1", 9n)],
    ));
  });

  test("an unknown write that never took effect", () => {
    accepts(history(
      ["a", put("v1"), 0, 1, wrote(1n)],
      ["a", put("v2"), 2, null, unknown],
      ["b", get(), 5, 6, read("v1", 1n)],
      ["b", get(), 7, 8, read("v1", 1n)],
    ));
  });

  test("an unknown CAS either way, and refusals that fit", () => {
    for (const seen of [["v2", 2n], ["v1", 1n]] as const) {
      accepts(history(
        ["a", put("v1"), 0, 1, wrote(1n)],
        ["b", cas("v2", 1n), 2, null, unknown],
        ["c", get(), 5, 6, read(seen[0], seen[1])],
        ["c", cas("v3", 0n), 7, 8, { status: "failed", reason: "modified" }],
        ["c", cas("v3", null), 9, 10, { status: "failed", reason: "exists" }],
      ));
    }
    accepts(history(
      ["a", cas("v1", 3n), 0, 1, { status: "failed", reason: "notFound" }],
      ["a", cas("v1", null), 2, 3, wrote(4n)],
      ["b", { type: "casDelete", key: "k", expected: 4n }, 4, 5, {
        status: "ok",
      }],
      ["b", get(), 6, 7, read(null)],
    ));
  });

  test("a commit whose versions are learnt from later reads", () => {
    accepts(history(
      [
        "a",
        {
          type: "atomic",
          checks: [{ key: "x", lastIndex: null }, {
            key: "y",
            lastIndex: null,
          }],
          writes: [{ type: "put", key: "x", value: "1" }, {
            type: "delete",
            key: "y",
          }],
        },
        0,
        1,
        wrote(3n),
      ],
      ["b", get("x"), 2, 3, read("1", 3n)],
      ["b", cas("2", 3n, "x"), 4, 5, wrote(4n)],
      [
        "c",
        {
          type: "atomic",
          checks: [{ key: "x", lastIndex: 3n }],
          writes: [{ type: "put", key: "y", value: "3" }],
        },
        6,
        7,
        { status: "failed", reason: "checkFailed" },
      ],
      ["c", get("y"), 8, 9, read(null)],
    ));
  });
});

describe("the recorder", () => {
  test("sorts errors into failed and unknown outcomes", async () => {
    let tick = 0;
    const recorder = new HistoryRecorder(() => tick++);
    const modified = new Error("changed");
    modified.name = "KeyModifiedError";
    await recorder.record("a", get(), () => Promise.reject(modified));
    await recorder.record(
      "a",
      get(),
      () => Promise.reject(new DOMException("late", "TimeoutError")),
    );
    const [first, second] = recorder.operations;
    assert.deepEqual(
      [first.outcome.status, first.invokedAt, first.completedAt],
      ["failed", 0, 1],
    );
    assert.equal(second.outcome.status, "unknown");
    assert.equal(second.completedAt, Infinity);
    assert.deepEqual(
      outcomeOfError(new Error("KeyExistsError: there")),
      { status: "failed", reason: "exists", error: "KeyExistsError: there" },
    );
  });
});

describe("a random workload on a memory store", () => {
  const run = async (wrap: (store: Store) => Store) => {
    await using store = await openStore("memory:");
    const broken = wrap(store);
    const operations = await runWorkload({
      clients: Array.from({ length: 8 }, () => storeClient(broken)),
      keys: ["a", "b", "c", "d"],
      atomicKeys: ["a", "b"],
      operations: 400,
      seed: 7,
    });
    return checkLinearizable(operations);
  };

  test("is linearizable on the real store", async () => {
    const result = await run((store) => store);
    assert.equal(result.linearizable, true, describeResult(result));
    assert.equal(result.operations, 400);
  });

  test("is flagged through a stale-read cache", async () => {
    const result = await run((store) => staleReads(store));
    assert.equal(result.linearizable, false);
  });

  test("is flagged when every 10th write is dropped", async () => {
    const result = await run((store) => droppedWrites(store));
    assert.equal(result.linearizable, false);
  });
});
