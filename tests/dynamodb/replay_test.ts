// watchEvents resumed with fromIndex on DynamoDB: the changes after the
// index are replayed from the table's stream (no reset), those within twice
// maxClockSkew before it come again in order per key, live changes follow
// the replay's synced; where the stream cannot hold the history (an index
// from before the stream, or from the future) the watch starts over with
// reset and the tree.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { WatchEvent } from "../../mod.ts";
import { StreamReader } from "../../testing/harness.ts";
import { useDynamoDB } from "../services/dynamodb.ts";

const local = useDynamoDB("replay");
const decoder = new TextDecoder();

// What a test compares: each event's type, key, value and index.
function shown(event: WatchEvent): string {
  switch (event.type) {
    case "put":
      return `put ${event.pair.key}=${
        decoder.decode(event.pair.value)
      }@${event.pair.lastIndex}`;
    case "delete":
      return `delete ${event.key}`;
    case "synced":
      return `synced@${event.lastIndex}`;
    case "reset":
      return "reset";
  }
}

// Reads events up to and with the first synced.
async function untilSynced(
  reader: StreamReader<WatchEvent>,
): Promise<string[]> {
  const events: string[] = [];
  for (let i = 0; i < 1_000; i++) {
    const event = await reader.next(30_000);
    events.push(shown(event));
    if (event.type === "synced") return events;
  }
  throw new Error(`no synced in ${events.join(", ")}`);
}

// Versions are the writer's clock in microseconds: waits (a bounded loop)
// until that clock has passed `version` by `ms`, so that the next write is
// that far above it.
async function clockPast(version: bigint, ms: number): Promise<void> {
  const target = version + BigInt(ms) * 1000n;
  for (let i = 0; i < 10_000; i++) {
    if (BigInt(Date.now()) * 1000n > target) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error("the clock did not move");
}

describe("DynamoDB watchEvents resumed from the stream", () => {
  test("the changes after fromIndex are replayed, then synced, then live changes", async () => {
    // A skew of 1 ms: the replay passes on versions above fromIndex − 2 ms.
    const store = await local.open({ maxClockSkew: 1, streamPollInterval: 50 });
    assert.ok(store.streaming);
    const gone = await store.put("r/gone", "1");
    await clockPast(gone, 5);
    const keep = await store.put("r/keep", "1");
    const first = new StreamReader(store.watchEvents("r"));
    const initial = await untilSynced(first);
    await first.cancel();
    assert.deepEqual(initial, [
      `put r/gone=1@${gone}`,
      `put r/keep=1@${keep}`,
      `synced@${keep}`,
    ]);
    await clockPast(keep, 5);
    const added = await store.put("r/new", "3");
    await store.delete("r/gone");
    const changed = await store.put("r/keep", "changed");
    await store.put("elsewhere", "not under r");

    const resumed = new StreamReader(
      store.watchEvents("r", { fromIndex: keep }),
    );
    // No reset: the stream held it all. The write at fromIndex itself is
    // within the margin and comes again; r/gone's put, 5 ms before, not.
    assert.deepEqual(await untilSynced(resumed), [
      `put r/keep=1@${keep}`,
      `put r/new=3@${added}`,
      "delete r/gone",
      `put r/keep=changed@${changed}`,
      `synced@${changed}`,
    ]);
    const live = await store.put("r/live", "4");
    assert.equal(shown(await resumed.next(30_000)), `put r/live=4@${live}`);
    await resumed.cancel();

    // Another handle resumes from the same index, as a restarted program
    // would, and hears the same.
    const other = await local.open({ maxClockSkew: 1, streamPollInterval: 50 });
    const again = new StreamReader(other.watchEvents("r", { fromIndex: keep }));
    const events = await untilSynced(again);
    assert.deepEqual(events.slice(0, 4), [
      `put r/keep=1@${keep}`,
      `put r/new=3@${added}`,
      "delete r/gone",
      `put r/keep=changed@${changed}`,
    ]);
    assert.ok(events.includes(`put r/live=4@${live}`), events.join(", "));
    await again.cancel();
  });

  test("an index from before the stream or from the future starts over with the tree", async () => {
    const store = await local.open({ maxClockSkew: 1, streamPollInterval: 50 });
    const written = await store.put("f/a", "1");
    for (const fromIndex of [1n, written + 10n ** 12n]) {
      const reader = new StreamReader(store.watchEvents("f", { fromIndex }));
      assert.deepEqual(await untilSynced(reader), [
        "reset",
        `put f/a=1@${written}`,
        `synced@${written}`,
      ], `fromIndex ${fromIndex}`);
      await reader.cancel();
    }
  });
});
