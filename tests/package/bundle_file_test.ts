// A `file:`-only app bundled by esbuild into one file, in a directory outside
// the repository with no .wasm beside it, runs in Node, Bun and Deno: opened
// without the engine it fails saying how to hand the module in (the bug
// this reproduces), and with the module handed in — embedded in the bundle
// by `--loader:.wasm=binary`, read from a file: URL, or compiled by the app
// — it puts and gets keys. The bundle holds none of the network clients.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";

/** The repository: tests/.. or dist-test/.. */
const root = fileURLToPath(new URL("../..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "valkeyrie-bundle-file-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Bound on each child: esbuild, or one run of the bundle. */
const CHILD_MS = 120_000;

const source = (file: string) => JSON.stringify(join(root, file));

// The app, as a user would write it: the store's own module and the
// registry, nothing else of the library. It takes the directory for its
// stores and where a copy of the .wasm is (not beside the bundle).
const APP = `
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { EmbeddedStore } from ${source("backends/file/mod.ts")};
import { fileBackend } from ${source("backends/file/backend.ts")};
import { openStore, register } from ${source("core/registry.ts")};
import embedded from ${source("engine/valkeyrie_engine.wasm")};

register(fileBackend);
const [dir, wasmPath] = process.argv.slice(2);
const runtime = "Deno" in globalThis ? "deno" : process.versions.bun ? "bun" : "node";

async function roundTrip(name, open) {
  try {
    const store = await open(join(dir, runtime + "-" + name + ".db"));
    try {
      await store.put("greeting", "hello from " + runtime);
      const entry = await store.get("greeting");
      console.log(name + ": " + new TextDecoder().decode(entry.value));
    } finally {
      await store.close();
    }
  } catch (error) {
    console.log(name + ": " + error.name + ": " + error.message);
  }
}

// First, as the issue has it: nothing handed in, no .wasm beside the bundle.
await roundTrip("none", (path) => EmbeddedStore.connect({ path }));
await roundTrip("bytes", (path) => EmbeddedStore.connect({ path, engine: embedded }));
await roundTrip("url", (path) =>
  openStore("file:" + path, { engine: pathToFileURL(wasmPath) }));
await roundTrip("module", (path) =>
  EmbeddedStore.connect({
    path,
    engine: new WebAssembly.Module(readFileSync(wasmPath)),
  }));
`;

function run(command: string, args: string[]) {
  const result = spawnSync(command, args, {
    cwd: dir,
    encoding: "utf8",
    timeout: CHILD_MS,
    killSignal: "SIGKILL",
    env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  });
  assert.equal(
    result.status,
    0,
    `${command} ${args.join(" ")} exited ${result.status} (${
      result.signal ?? result.error?.message ?? "no signal"
    }):\n${result.stdout}\n${result.stderr.slice(-4000)}`,
  );
  return result.stdout;
}

const bin = (name: string) => join(root, "node_modules", ".bin", name);
const runtimes: [string, string[]][] = [
  ["node", [
    !("Deno" in globalThis) && !process.versions.bun
      ? process.execPath
      : "node",
  ]],
  ["bun", [process.versions.bun ? process.execPath : bin("bun")]],
  ["deno", [
    "Deno" in globalThis ? process.execPath : bin("deno"),
    "run",
    "-A",
  ]],
];

describe("a bundled file: app", () => {
  const bundle = join(dir, "app", "app.mjs");
  const assets = join(dir, "assets");
  const stores = join(dir, "stores");

  before(() => {
    for (const sub of ["app", "assets", "stores"]) {
      mkdirSync(join(dir, sub));
    }
    writeFileSync(join(dir, "app.mjs"), APP);
    copyFileSync(
      join(root, "engine", "valkeyrie_engine.wasm"),
      join(assets, "engine.wasm"),
    );
    run(bin("esbuild"), [
      join(dir, "app.mjs"),
      "--bundle",
      "--platform=node",
      "--format=esm",
      // Without a target the binary loader decodes with
      // Uint8Array.fromBase64, which Node 20 lacks.
      "--target=node20",
      "--loader:.wasm=binary",
      `--outfile=${bundle}`,
      "--log-level=warning",
    ]);
  });

  test("holds the engine and no network client, and nothing lies beside it", () => {
    const text = readFileSync(bundle, "utf8");
    for (const client of ["ioredis", "@grpc/grpc-js", "@aws-sdk"]) {
      assert.equal(text.includes(client), false, `${client} is bundled`);
    }
    // The binary loader embeds the module as base64 (4 characters per 3 bytes).
    const wasmBytes = statSync(join(root, "engine", "valkeyrie_engine.wasm"))
      .size;
    const size = statSync(bundle).size;
    assert.ok(size > (wasmBytes * 4) / 3, `the module is embedded (${size})`);
    assert.deepEqual(
      existsSync(join(dir, "app", "valkeyrie_engine.wasm")),
      false,
    );
    console.log(
      `bundle: ${size} bytes (${
        (size / 1024).toFixed(1)
      } KiB; the engine's ${wasmBytes}-byte module is ${
        Math.ceil(wasmBytes / 3) * 4
      } of them as base64)`,
    );
  });

  for (const [runtime, command] of runtimes) {
    test(`runs in ${runtime}: without the module it says how to hand it in; with it, it works`, () => {
      const [program, ...args] = command;
      const out = run(program, [
        ...args,
        bundle,
        stores,
        join(assets, "engine.wasm"),
      ]).trim().split("\n");
      assert.equal(out.length, 4, out.join("\n"));
      assert.match(
        out[0],
        /^none: StoreError: Could not open database .*: Could not load the engine's WebAssembly module: .*ENOENT.*hand the module in with the file store's `engine` option/,
      );
      assert.deepEqual(out.slice(1), [
        `bytes: hello from ${runtime}`,
        `url: hello from ${runtime}`,
        `module: hello from ${runtime}`,
      ]);
    });
  }
});
