// Tracing channels (core/tracing.ts): every call a store makes to its
// backend is published on `valkeyrie:<operation>` with its backend and key,
// its result or its error, and nothing is published once no one listens.
import assert from "node:assert/strict";
import { tracingChannel } from "node:diagnostics_channel";
import { describe, test } from "node:test";
import { MemoryDriver } from "../../backends/memory/driver.ts";
import {
  BaseStore,
  openStore,
  StoreError,
  type TraceContext,
} from "../../mod.ts";

/** Records the events of one operation's channel until `stop()`. */
function record(operation: string) {
  const events: Array<[string, TraceContext]> = [];
  const on = (name: string) => (message: unknown) =>
    events.push([name, { ...(message as TraceContext) }]);
  const handlers = {
    start: on("start"),
    end: on("end"),
    asyncStart: on("asyncStart"),
    asyncEnd: on("asyncEnd"),
    error: on("error"),
  };
  const channel = tracingChannel(`valkeyrie:${operation}`);
  channel.subscribe(handlers);
  return { events, stop: () => channel.unsubscribe(handlers) };
}

describe("tracing channels", () => {
  test("a get and a put are traced with backend, key and result", async () => {
    await using store = await openStore("memory:tracing-1");
    const puts = record("put");
    const gets = record("get");
    const index = await store.put("config/a", "1");
    const pair = await store.get("config/a");
    puts.stop();
    gets.stop();
    assert.deepEqual(puts.events.map(([name]) => name), [
      "start",
      "end",
      "asyncStart",
      "asyncEnd",
    ]);
    const [, done] = puts.events.at(-1)!;
    assert.equal(done.operation, "put");
    assert.equal(done.backend, "memory");
    assert.equal(done.key, "config/a");
    assert.equal(done.result, index);
    const [, read] = gets.events.at(-1)!;
    assert.equal(read.key, "config/a");
    assert.equal((read.result as { lastIndex: bigint }).lastIndex, index);
    assert.equal(pair!.lastIndex, index);
    // Unsubscribed: nothing more is recorded.
    await store.get("config/a");
    assert.equal(gets.events.length, 4);
  });

  test("a failed call publishes its error", async () => {
    class Failing extends MemoryDriver {
      override get(): Promise<null> {
        return Promise.reject(new Error("disk on fire"));
      }
    }
    await using store = new BaseStore(new Failing("tracing-2"));
    const gets = record("get");
    await assert.rejects(store.get("k"), StoreError);
    gets.stop();
    const failed = gets.events.find(([name]) => name === "error");
    assert.ok(failed, JSON.stringify(gets.events.map(([n]) => n)));
    assert.match(String((failed[1].error as Error).message), /disk on fire/);
  });

  test("a bulk call is traced once per chunk, each a round trip", async () => {
    await using store = await openStore("memory:tracing-3");
    const keys = Array.from({ length: 2_500 }, (_, i) => `k/${i}`);
    const puts = record("putMany");
    await store.putMany(keys.map((key) => ({ key, value: "v" })));
    puts.stop();
    // memory: 1,024 keys per chunk.
    assert.equal(puts.events.filter(([name]) => name === "start").length, 3);
  });
});
