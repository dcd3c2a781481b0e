// StoreLimits.maxAtomicBytes: an atomic() whose keys and values would pass
// the backend's request limit is refused as the step is added, before any
// I/O, and the limit is read from the store; on etcd (1.5 MiB requests) two
// values of 1 MiB in one operation are refused and nothing is written.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MemoryDriver } from "../../backends/memory/driver.ts";
import {
  BaseStore,
  InvalidArgumentError,
  openStore,
  type Store,
} from "../../mod.ts";
import type { StoreLimits } from "../../mod.ts";
import { type EtcdService, startEtcd } from "../services/etcd.ts";

class SmallRequests extends MemoryDriver {
  override readonly limits: StoreLimits = Object.freeze({
    ...new MemoryDriver("probe").limits,
    maxAtomicBytes: 100,
  });
}

describe("maxAtomicBytes", () => {
  test("keys and values count each time a key is checked or written", async () => {
    let commits = 0;
    class Counting extends SmallRequests {
      override commit(...args: Parameters<MemoryDriver["commit"]>) {
        commits++;
        return super.commit(...args);
      }
    }
    await using store = new BaseStore(new Counting("atomic-bytes"));
    assert.equal(store.limits.maxAtomicBytes, 100);
    const operation = store.atomic()
      .check("k", null) // 1 byte
      .put("k", "x".repeat(50)); // 51 bytes
    assert.throws(
      () => operation.put("other", "y".repeat(44)), // 49 bytes: 101 in all
      (error: Error) =>
        error instanceof InvalidArgumentError &&
        /at most 100 bytes/.test(error.message) &&
        /makes 101/.test(error.message),
    );
    // The refused step left nothing behind: what fits still commits.
    operation.put("other", "y".repeat(43));
    assert.equal((await operation.commit()).ok, true);
    assert.equal(commits, 1);
  });

  test("a backend without the limit takes what its other limits allow", async () => {
    await using store = await openStore("memory:atomic-bytes-none");
    assert.equal(store.limits.maxAtomicBytes, undefined);
    const big = "z".repeat(1024 * 1024);
    const result = await store.atomic().put("a", big).put("b", big).commit();
    assert.equal(result.ok, true);
  });
});

describe("maxAtomicBytes on etcd", () => {
  let etcd: EtcdService;
  let store: Store;
  before(async () => {
    etcd = await startEtcd();
    store = await openStore(etcd.url, { prefix: "atomic-bytes" });
  });
  after(async () => {
    await store?.close();
    await etcd?.stop();
  });

  test("two values of 1 MiB in one operation are refused before any I/O", async () => {
    const max = store.limits.maxAtomicBytes!;
    assert.ok(max > 1024 * 1024 && max < 1.5 * 1024 * 1024, String(max));
    const value = new Uint8Array(1024 * 1024);
    const operation = store.atomic().put("a", value);
    assert.throws(() => operation.put("b", value), InvalidArgumentError);
    assert.equal(await store.get("a"), null);
    // Just under the limit is accepted by etcd itself.
    const rest = max - value.length - "atomic-bytes/a".length -
      "atomic-bytes/b".length;
    operation.put("b", new Uint8Array(rest));
    assert.equal((await operation.commit()).ok, true);
    assert.equal((await store.get("b"))!.value.length, rest);
  });
});
