// Following a DynamoDB stream's shards: open shards from now on, a closed
// shard's children only after it is read to its end, from their start.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  initialPlan,
  nextPlan,
  type ShardInfo,
  type ShardState,
} from "../../backends/dynamodb/shards.ts";

describe("DynamoDB stream shards", () => {
  test("a reader starts at LATEST on the open shards and skips the closed ones", () => {
    const known = new Map<string, ShardState>();
    const shards: ShardInfo[] = [
      { id: "old", closed: true },
      { id: "a", parentId: "old", closed: false },
      { id: "b", parentId: "old", closed: false },
    ];
    assert.deepEqual(initialPlan(shards, known), [
      { id: "a", position: "LATEST" },
      { id: "b", position: "LATEST" },
    ]);
    assert.equal(known.get("old"), "done");
    assert.deepEqual(nextPlan(shards, known), []);
  });

  test("children of a shard wait until it is read to its end, then start from their beginning", () => {
    const known = new Map<string, ShardState>();
    initialPlan([{ id: "a", closed: false }], known);
    const split: ShardInfo[] = [
      { id: "a", closed: true },
      { id: "a1", parentId: "a", closed: false },
      { id: "a2", parentId: "a", closed: false },
    ];
    // DescribeStream shows the split before the reader reached the end of a.
    assert.deepEqual(nextPlan(split, known), []);
    known.set("a", "done");
    assert.deepEqual(nextPlan(split, known), [
      { id: "a1", position: "TRIM_HORIZON" },
      { id: "a2", position: "TRIM_HORIZON" },
    ]);
    assert.deepEqual(nextPlan(split, known), [], "each shard starts once");
  });

  test("a shard that opened and closed between two looks is read, before its child", () => {
    const known = new Map<string, ShardState>();
    initialPlan([{ id: "a", closed: false }], known);
    known.set("a", "done");
    const shards: ShardInfo[] = [
      { id: "a", closed: true },
      { id: "b", parentId: "a", closed: true },
      { id: "c", parentId: "b", closed: false },
    ];
    assert.deepEqual(nextPlan(shards, known), [
      { id: "b", position: "TRIM_HORIZON" },
    ]);
    known.set("b", "done");
    assert.deepEqual(nextPlan(shards, known), [
      { id: "c", position: "TRIM_HORIZON" },
    ]);
  });

  test("a shard whose parent was trimmed from the stream starts from its beginning", () => {
    const known = new Map<string, ShardState>();
    initialPlan([], known);
    assert.deepEqual(
      nextPlan([{ id: "n", parentId: "trimmed", closed: false }], known),
      [{ id: "n", position: "TRIM_HORIZON" }],
    );
  });
});
