// Bad input gets a clear StoreError and changes nothing: a signal that is
// not an AbortSignal, a ten-million-character key (its message stays
// short), memory: URL parameters (applied, and unknown ones refused, as on
// file:), a cacheSize beyond the engine's memory, and CLI numbers that are
// not finite (a usage error, exit 2, like any other wrong number).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, describe, test } from "node:test";
import {
  InvalidArgumentError,
  InvalidConfigurationError,
  InvalidKeyError,
  openStore,
} from "../../mod.ts";
import { type CliIO, EXIT, runCli } from "../../cli/mod.ts";

const dir = mkdtempSync(join(tmpdir(), "valkeyrie-bad-input-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("bad input", () => {
  for (const url of ["memory:bad-input", `file:${join(dir, "bad.db")}`]) {
    const backend = url.split(":")[0];
    test(`${backend}: a signal that is not an AbortSignal is an InvalidArgumentError, for every kind of call`, async () => {
      const store = await openStore(url);
      try {
        const signal = {} as AbortSignal;
        await assert.rejects(store.get("k", { signal }), InvalidArgumentError);
        await assert.rejects(
          store.put("k", "v", { signal }),
          InvalidArgumentError,
        );
        await assert.rejects(store.lock("k", { signal }), InvalidArgumentError);
        assert.throws(() => store.watch("k", { signal }), InvalidArgumentError);
        assert.equal(await store.get("k"), null, "nothing was written");
      } finally {
        await store.close();
      }
    });

    test(`${backend}: a ten-million-character key gives a short message`, async () => {
      const store = await openStore(url);
      try {
        const key = "a//" + "x".repeat(10_000_000);
        await assert.rejects(store.put(key, "v"), (error) => {
          assert.ok(error instanceof InvalidKeyError);
          assert.ok(
            error.message.length < 1_000,
            `${error.message.length} characters`,
          );
          assert.match(error.message, /10000003 characters/);
          return true;
        });
      } finally {
        await store.close();
      }
    });
  }

  test("thirty lock waiters sharing one signal cause no listener-leak warning", async () => {
    // Node warns past ten abort listeners on one signal (Deno and Bun do not
    // warn at all); every listener the library adds is removed again.
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on("warning", onWarning);
    const store = await openStore("memory:bad-input-waiters");
    try {
      const held = await store.lock("k");
      const shared = new AbortController();
      const waiters = Array.from(
        { length: 30 },
        () =>
          store.lock("k", { signal: shared.signal }).then((lock) =>
            lock.unlock()
          ),
      );
      await held.unlock();
      await Promise.all(waiters);
      // Warnings are emitted on a later tick.
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(
        warnings.filter((w) => w === "MaxListenersExceededWarning"),
        [],
      );
    } finally {
      process.off("warning", onWarning);
      await store.close();
    }
  });

  test("memory: URL parameters are applied, and unknown ones refused", async () => {
    const prefixed = await openStore("memory:bad-input-params?prefix=app");
    const raw = await openStore("memory:bad-input-params");
    try {
      await prefixed.put("k", "v");
      assert.deepEqual((await raw.list("")).map((p) => p.key), ["app/k"]);
      await assert.rejects(
        openStore("memory:bad-input-params?bogus=1"),
        InvalidConfigurationError,
      );
    } finally {
      await prefixed.close();
      await raw.close();
    }
  });

  test("file: a cacheSize beyond the engine's memory is refused, not wrapped", async () => {
    await assert.rejects(
      openStore(`file:${join(dir, "cache.db")}?cacheSize=1e30`),
      /"cacheSize" must be a positive number from 4096 to 2147483648/,
    );
  });

  test("the CLI gives a usage error (exit 2) for a TTL that is not a positive finite number", async () => {
    for (const ttl of ["0", "-5", "Infinity", "NaN", "abc"]) {
      let err = "";
      const io: CliIO = {
        out: () => {},
        err: (text) => (err += text),
        readStdin: () => Promise.resolve(new Uint8Array()),
        env: {},
      };
      const code = await runCli([
        "--store",
        "memory:",
        "put",
        "k",
        "v",
        "--ttl",
        ttl,
      ], io);
      assert.equal(code, EXIT.usage, `--ttl ${ttl}: ${err}`);
    }
  });
});
