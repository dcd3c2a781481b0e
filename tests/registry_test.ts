// The registry (valkeyrie's AddStore/NewStore) and openStore by URL, through
// the public entry point.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  backends,
  InvalidConfigurationError,
  newStore,
  openStore,
  register,
  type Store,
  UnknownBackendError,
  unregister,
} from "../mod.ts";
import { MemoryStore } from "../backends/memory/mod.ts";

describe("registry", () => {
  test("lists the built-in backends", () => {
    assert.ok(backends().includes("memory"));
    assert.deepEqual(backends(), [...backends()].sort());
  });

  test("registers, opens and unregisters a third-party backend", async () => {
    const calls: Array<[string[], Record<string, unknown>]> = [];
    register("scratch", (endpoints, config) => {
      calls.push([endpoints, config as Record<string, unknown>]);
      return new MemoryStore({ prefix: config.prefix });
    });
    try {
      assert.ok(backends().includes("scratch"));
      const byUrl = await openStore("scratch://h1:1,h2:2/db?x=1", {
        prefix: "p",
      });
      assert.equal(byUrl.backend, "memory");
      await byUrl.close();
      assert.deepEqual(calls[0][0], ["h1:1", "h2:2"]);
      assert.deepEqual((calls[0][1].url as { params: unknown }).params, {
        x: "1",
      });
      const byName = await newStore("scratch", ["h"], {});
      await byName.close();
      assert.deepEqual(calls[1][0], ["h"]);
      assert.equal(calls[1][1].url, undefined);
    } finally {
      unregister("scratch");
    }
    assert.ok(!backends().includes("scratch"));
    await assert.rejects(openStore("scratch://h"), UnknownBackendError);
    unregister("scratch"); // no error the second time
  });

  test("unknown backends and schemes are UnknownBackendError", async () => {
    await assert.rejects(newStore("nope", []), UnknownBackendError);
    await assert.rejects(openStore("nope://x"), /No backend for URL scheme/);
  });

  test("bad URLs, names, endpoints and settings are InvalidConfigurationError", async () => {
    await assert.rejects(openStore("not a url"), InvalidConfigurationError);
    await assert.rejects(
      openStore(42 as unknown as string),
      InvalidConfigurationError,
    );
    assert.throws(
      () => register("Bad Name", () => new MemoryStore()),
      InvalidConfigurationError,
    );
    await assert.rejects(
      newStore("memory", "x" as unknown as string[]),
      InvalidConfigurationError,
    );
    await assert.rejects(
      openStore("memory:", { colour: "blue" }),
      /Unknown memory setting "colour"/,
    );
    await assert.rejects(
      openStore("memory:", { prefix: 5 as unknown as string }),
      InvalidConfigurationError,
    );
    await assert.rejects(
      openStore("memory:", { connectTimeout: -1 }),
      /connectTimeout/,
    );
  });

  test("an aborted signal stops opening", async () => {
    const reason = new Error("no");
    await assert.rejects(
      openStore("memory:", { signal: AbortSignal.abort(reason) }),
      (error) => error === reason,
    );
  });

  test("memory: URLs name shared databases; memory: alone is private", async () => {
    const stores: Store[] = [
      await openStore("memory:shared-by-name"),
      await openStore("memory:shared-by-name"),
      await openStore("memory:"),
    ];
    try {
      await stores[0].put("k", "v");
      assert.equal(await stores[1].exists("k"), true);
      assert.equal(await stores[2].exists("k"), false);
    } finally {
      for (const store of stores) await store.close();
    }
  });
});
