// The file store's `engine` option: the engine's WebAssembly module handed in
// as bytes, an ArrayBuffer, a file: or http: URL, or a compiled module; a
// setting of the wrong kind is an InvalidConfigurationError before any file
// is touched, bytes that are not the engine a StoreError saying so; and each
// module is instantiated once per process, two different modules never
// sharing an engine.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, test } from "node:test";
import { openStore } from "../../mod.ts";
import { EmbeddedStore, type EngineSource } from "../../backends/file/mod.ts";
import { loadEngine } from "../../engine/engine.ts";

const dir = mkdtempSync(join(tmpdir(), "valkeyrie-file-wasm-engine-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The module in the source tree: tests/../wasm, or dist-test/../wasm. */
const WASM = new URL("../../engine/valkeyrie_engine.wasm", import.meta.url);
const bytes = new Uint8Array(readFileSync(WASM));

/**
 * The engine with a custom section appended: another module (other bytes,
 * another SHA-256) that runs the same.
 */
function variant(tag: string): Uint8Array<ArrayBuffer> {
  const name = new TextEncoder().encode(tag);
  const section = [0, name.length + 1, name.length, ...name];
  const out = new Uint8Array(bytes.length + section.length);
  out.set(bytes);
  out.set(section, bytes.length);
  return out;
}

const decode = (value: Uint8Array) => new TextDecoder().decode(value);
let files = 0;
const freshPath = () => join(dir, `store-${++files}.db`);

/** Puts and gets a key in a new file through `engine`. */
async function roundTrip(engine: EngineSource): Promise<string> {
  const store = await EmbeddedStore.connect({ path: freshPath(), engine });
  try {
    await store.put("greeting", "hello");
    return decode((await store.get("greeting"))!.value);
  } finally {
    await store.close();
  }
}

describe("the file store's engine option", () => {
  let server: Server;
  let base: string;
  before(async () => {
    server = createServer((request, response) => {
      if (request.url === "/engine.wasm") {
        response.writeHead(200, { "content-type": "application/wasm" });
        response.end(bytes);
      } else {
        response.writeHead(404);
        response.end("no such file");
      }
    });
    await new Promise<void>((resolve) =>
      server.listen(0, "127.0.0.1", resolve)
    );
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test("takes the module's bytes, an ArrayBuffer, a file: URL or a compiled module", async () => {
    const buffer = bytes.slice().buffer;
    assert.equal(await roundTrip(bytes), "hello", "Uint8Array");
    assert.equal(await roundTrip(buffer), "hello", "ArrayBuffer");
    assert.equal(await roundTrip(WASM), "hello", "file: URL");
    assert.equal(
      await roundTrip(await WebAssembly.compile(bytes)),
      "hello",
      "WebAssembly.Module",
    );
  });

  test("reads an http: URL, and a failed fetch is a StoreError naming it", async () => {
    assert.equal(await roundTrip(new URL(`${base}/engine.wasm`)), "hello");
    const path = freshPath();
    await assert.rejects(
      EmbeddedStore.connect({ path, engine: new URL(`${base}/missing.wasm`) }),
      (error: Error) => {
        assert.equal(error.name, "StoreError");
        assert.match(error.message, /missing\.wasm answered 404/);
        return true;
      },
    );
    assert.equal(existsSync(path), false, "no file was created");
  });

  test("openStore passes it through, and a URL's ?engine= is refused", async () => {
    const path = freshPath();
    const store = await openStore(`file:${path}`, { engine: variant("url") });
    try {
      await store.put("k", "v");
      assert.equal(decode((await store.get("k"))!.value), "v");
    } finally {
      await store.close();
    }
    const other = freshPath();
    await assert.rejects(
      openStore(`file:${other}?engine=./engine.wasm`),
      (error: Error) => {
        assert.equal(error.name, "InvalidConfigurationError");
        assert.match(
          error.message,
          /"engine" must be .*not "\.\/engine\.wasm"/,
        );
        assert.match(error.message, /pathToFileURL/);
        return true;
      },
    );
    assert.equal(existsSync(other), false);
  });

  test("a setting of the wrong kind is an InvalidConfigurationError, and no file is touched", async () => {
    const wrong: [unknown, RegExp][] = [
      ["./engine.wasm", /not "\.\/engine\.wasm"/],
      [42, /not 42/],
      [{}, /not a plain object/],
      [[1, 2], /not a Array/],
      [new Uint16Array(4), /not a Uint16Array/],
      [new URL("data:application/wasm;base64,AGFzbQ=="), /not a data: URL/],
      [null, /not null/],
    ];
    for (const [engine, message] of wrong) {
      const path = join(dir, "missing-dir", "x.db");
      const inDir = freshPath();
      for (const target of [path, inDir]) {
        await assert.rejects(
          EmbeddedStore.connect({ path: target, engine: engine as URL }),
          (error: Error) => {
            assert.equal(
              error.name,
              "InvalidConfigurationError",
              String(engine),
            );
            assert.match(error.message, /"engine" must be/);
            assert.match(error.message, message);
            return true;
          },
        );
        assert.equal(existsSync(target), false, String(engine));
      }
    }
  });

  test("bytes that are not WebAssembly, or not the engine, are a clear StoreError", async () => {
    const cases: [EngineSource, RegExp][] = [
      [
        new TextEncoder().encode("<html>not found</html>"),
        /not a WebAssembly module \(22 bytes, starting 3c 68 74 6d; a module starts 00 61 73 6d\)/,
      ],
      [new Uint8Array(), /not a WebAssembly module \(0 bytes;/],
      // An empty but valid module: WebAssembly, not the engine.
      [
        new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]),
        /not valkeyrie's engine \(it lacks memory, vk_result, .*vk_stats\)/,
      ],
      // The engine's header, then garbage: compiling fails.
      [
        new Uint8Array([...bytes.subarray(0, 8), 0xff, 0xff, 0xff]),
        /^Could not load the engine's WebAssembly module: /,
      ],
    ];
    for (const [engine, message] of cases) {
      const path = freshPath();
      await assert.rejects(
        EmbeddedStore.connect({ path, engine }),
        (error: Error) => {
          assert.equal(error.name, "StoreError");
          assert.match(error.message, message);
          return true;
        },
      );
      assert.equal(existsSync(path), false, "no file was created");
    }
    // A failed load is not cached: the same kind of setting loads next time.
    assert.equal(await roundTrip(bytes), "hello");
  });

  test("a file: URL that does not exist is a StoreError naming the cause", async () => {
    const path = freshPath();
    await assert.rejects(
      EmbeddedStore.connect({
        path,
        engine: pathToFileURL(join(dir, "nowhere.wasm")),
      }),
      (error: Error) => {
        assert.equal(error.name, "StoreError");
        assert.match(
          error.message,
          /^Could not load the engine's WebAssembly module: .*ENOENT/,
        );
        return true;
      },
    );
    assert.equal(existsSync(path), false);
  });

  test("each module is instantiated once; different modules get different engines", async () => {
    const a = variant("a");
    const b = variant("b");
    const engineA = await loadEngine(a);
    assert.equal(await loadEngine(a), engineA, "the same bytes");
    assert.equal(await loadEngine(a.slice()), engineA, "a copy of them");
    assert.equal(await loadEngine(a.slice().buffer), engineA, "as a buffer");
    const engineB = await loadEngine(b);
    assert.notEqual(engineB, engineA, "other bytes, another engine");
    assert.equal(await loadEngine(WASM), await loadEngine(bytes), "URL, bytes");
    assert.notEqual(await loadEngine(bytes), engineA);
    const module = await WebAssembly.compile(a);
    const engineM = await loadEngine(module);
    assert.equal(await loadEngine(module), engineM, "the same module");
    assert.notEqual(engineM, engineA, "a module handed in runs as given");
    // Stores of different modules, open at once, each work.
    const [sa, sb] = await Promise.all([
      EmbeddedStore.connect({ path: freshPath(), engine: a }),
      EmbeddedStore.connect({ path: freshPath(), engine: b }),
    ]);
    try {
      await Promise.all([sa.put("k", "from a"), sb.put("k", "from b")]);
      assert.equal(decode((await sa.get("k"))!.value), "from a");
      assert.equal(decode((await sb.get("k"))!.value), "from b");
    } finally {
      await Promise.all([sa.close(), sb.close()]);
    }
  });

  test("handles of one file share the first opener's database, with or without the option", async () => {
    const path = freshPath();
    const first = await EmbeddedStore.connect({ path, engine: variant("1") });
    const second = await EmbeddedStore.connect({ path });
    const third = await EmbeddedStore.connect({ path, engine: variant("3") });
    try {
      await first.put("k", "one file");
      for (const store of [second, third]) {
        assert.equal(decode((await store.get("k"))!.value), "one file");
      }
    } finally {
      await Promise.all([first.close(), second.close(), third.close()]);
    }
  });

  test("a handle given a module that reaches the owner takes the file over when it closes", async () => {
    const path = freshPath();
    const owner = await EmbeddedStore.connect({
      path,
      isolated: true,
      engine: variant("owner"),
    });
    const client = await EmbeddedStore.connect({
      path,
      isolated: true,
      engine: variant("client"),
    });
    try {
      await client.put("k", "before");
      await owner.close();
      await client.put("k", "after");
      assert.equal(decode((await client.get("k"))!.value), "after");
      assert.equal((await client.verify()).ok, true);
    } finally {
      await client.close();
    }
  });
});
