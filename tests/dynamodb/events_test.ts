// Store events of DynamoDB stores: with a TCP proxy between a store and
// DynamoDB Local, a cut link's requests are retried (by the SDK, as the
// store call's, and by the stream reader), DynamoDB answering again is a
// reconnection, and the watch resumes with the change written meanwhile;
// a transaction cancelled by a conflicting one is a retry of its call.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { NotReachableError } from "../../mod.ts";
import { eventually, StreamReader, text } from "../../testing/harness.ts";
import { localClient, spyOn, useDynamoDB } from "../services/dynamodb.ts";
import { startTcpProxy, type TcpProxy } from "../services/tcp_proxy.ts";
import { collectEvents, eventTypes } from "../fixtures/events.ts";

const local = useDynamoDB("events");

describe("DynamoDB store events", () => {
  let proxy: TcpProxy;
  before(async () => {
    proxy = await startTcpProxy(local.service.port);
  });
  after(async () => {
    await proxy?.close();
  });

  test("a cut link's requests are retried, DynamoDB reconnects and the watch resumes", async () => {
    const direct = await local.open();
    const store = await local.open({
      endpoint: `http://127.0.0.1:${proxy.port}`,
      streamPollInterval: 50,
    });
    assert.ok(store.streaming);
    const { seen } = collectEvents(store);
    const watch = new StreamReader(store.watch("ev/k"));
    assert.equal(await watch.next(), null);
    await proxy.cut();
    // The SDK tries a request again after a refused connection: the retry
    // is the store call's.
    await assert.rejects(store.get("ev/other"), NotReachableError);
    assert.ok(
      seen.some((e) =>
        e.type === "retry" && e.operation === "get" && e.attempt === 1
      ),
      eventTypes(seen),
    );
    // The stream reader's polls fail too, and are tried again.
    await eventually(
      "a retried read of the stream",
      30_000,
      () =>
        Promise.resolve(
          seen.some((e) => e.type === "retry" && e.operation === "watch"),
        ),
    );
    await direct.put("ev/k", "while cut");
    await proxy.resume();
    assert.equal(text(await watch.next(30_000)), "while cut");
    await eventually(
      "reconnect and watch-resume",
      30_000,
      () =>
        Promise.resolve(
          seen.some((e) => e.type === "reconnect") &&
            seen.some((e) => e.type === "watch-resume"),
        ),
    );
    const reconnect = seen.find((e) => e.type === "reconnect")!;
    assert.deepEqual(reconnect, {
      type: "reconnect",
      server: `127.0.0.1:${proxy.port}`,
      backend: "dynamodb",
    });
    const resumed = seen.find((e) => e.type === "watch-resume")!;
    assert.deepEqual(resumed, {
      type: "watch-resume",
      key: "ev/k",
      backend: "dynamodb",
    });
    assert.ok(seen.every((e) => e.backend === "dynamodb"), eventTypes(seen));
    // Nothing failed for good: no error event.
    assert.ok(!seen.some((e) => e.type === "error"), eventTypes(seen));
    await watch.cancel();
  });

  test("a transaction cancelled by a conflicting one is a retry of its call", async () => {
    const client = localClient(local.service);
    let conflicts = 1;
    const conflict = new TransactionCanceledException({
      message: "Transaction cancelled [TransactionConflict, None]",
      $metadata: {},
      CancellationReasons: [{ Code: "TransactionConflict" }, { Code: "None" }],
    });
    spyOn(client, async (request, send) => {
      if (request.command === "TransactWriteItemsCommand" && conflicts > 0) {
        conflicts--;
        throw conflict;
      }
      await send();
    });
    const store = await local.open({ client });
    const { seen } = collectEvents(store);
    const result = await store.atomic().put("conflict/a", "a").put(
      "conflict/b",
      "b",
    ).commit();
    assert.equal(result.ok, true);
    assert.deepEqual(seen, [{
      type: "retry",
      operation: "atomic",
      attempt: 1,
      error: conflict,
      backend: "dynamodb",
    }]);
  });
});
