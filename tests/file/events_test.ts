// Store events of a `file:` store that reaches the file through another
// process: when that owner is SIGKILLed, this process takes the file over,
// and its store tells so — the call cut off is sent again (`retry`), the new
// owner is found (`reconnect`: this process) and the watch goes on
// (`watch-resume`). The owner is an agent of tests/fixtures/agents.ts (Node
// agents run the npm build in dist/, which must be built first).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, describe, test } from "node:test";
import { EmbeddedStore } from "../../backends/file/mod.ts";
import { eventually, StreamReader, text } from "../../testing/harness.ts";
import { here, startAgent } from "../fixtures/agents.ts";
import { collectEvents, eventTypes } from "../fixtures/events.ts";

const dir = mkdtempSync(join(tmpdir(), "valkeyrie-file-events-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** How long one answer or event may take: a bound on waiting, not a speed claim. */
const WAIT_MS = 30_000;

describe(`file: store events (${here})`, () => {
  test("a client whose owner is SIGKILLed takes the file over: the cut call is retried, and the reconnection and the resumed watch are events", async () => {
    const path = join(dir, "owner-killed.db");
    // The agent opens the file first, so it owns it; this process is its
    // client.
    const owner = await startAgent(here, path, WAIT_MS);
    const store = await EmbeddedStore.connect({ path });
    const { seen } = collectEvents(store);
    const types = () => eventTypes(seen);
    const watch = new StreamReader(store.watch("ev/k"));
    try {
      assert.equal(await watch.next(WAIT_MS), null);
      await owner.call("put", { key: "ev/k", value: "before" });
      assert.equal(text(await watch.next(WAIT_MS)), "before");
      // A read sent to the stopped owner waits for an answer that never
      // comes: the owner's death cuts it off, and it is sent again.
      // (process.kill, not ChildProcess.kill: Deno's does not send SIGSTOP.)
      process.kill(owner.process.pid!, "SIGSTOP");
      const read = store.get("ev/k");
      await owner.kill();
      assert.equal(text(await read), "before");
      await store.put("ev/k", "after");
      // The watch started again on this process's database reports the
      // state again (the stream drops the repeat), then the change.
      assert.equal(text(await watch.next(WAIT_MS)), "after");
      await eventually(
        "reconnect and watch-resume",
        WAIT_MS,
        () =>
          Promise.resolve(
            seen.some((e) => e.type === "reconnect") &&
              seen.some((e) => e.type === "watch-resume"),
          ),
      );
      assert.deepEqual(seen.find((e) => e.type === "reconnect"), {
        type: "reconnect",
        server: "this process",
        backend: "file",
      }, types());
      assert.deepEqual(seen.find((e) => e.type === "watch-resume"), {
        type: "watch-resume",
        key: "ev/k",
        backend: "file",
      }, types());
      const retry = seen.find((e) => e.type === "retry");
      assert.ok(
        retry?.type === "retry" && retry.operation === "get" &&
          retry.attempt === 1 && retry.backend === "file",
        types(),
      );
      // One loss of the owner: one reconnection, one resumption.
      assert.equal(seen.filter((e) => e.type === "reconnect").length, 1);
      assert.equal(seen.filter((e) => e.type === "watch-resume").length, 1);
    } finally {
      await watch.cancel();
      await owner.kill();
      await store.close();
    }
  });
});
