// Importing the package's main module loads none of the npm clients: each is
// loaded only when a store of its backend is opened. Checked in a fresh
// process of the runtime running the tests.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import process from "node:process";
import { describe, test } from "node:test";

const CLIENTS = [
  "ioredis",
  "etcd3",
  "consul",
  "@aws-sdk/client-dynamodb",
];

// Node runs the npm build; Deno and Bun run the sources.
const runtime = "Deno" in globalThis
  ? { argv: [process.execPath, "run", "-A"], main: "mod.ts" }
  : process.versions.bun
  ? { argv: [process.execPath], main: "mod.ts" }
  : { argv: [process.execPath], main: "dist/mod.js" };

function loadedAfter(action?: string): string[] {
  const [command, ...args] = runtime.argv;
  const output = execFileSync(command, [
    ...args,
    "tests/fixtures/loaded_clients.mjs",
    runtime.main,
    ...(action ? [action] : []),
  ], { encoding: "utf8", timeout: 60_000 });
  return JSON.parse(output.trim().split("\n").pop()!);
}

describe("lazy loading of backends", () => {
  test("importing mod.ts loads none of the npm clients", () => {
    assert.deepEqual(loadedAfter(), []);
  });

  test("opening a memory store loads none of them either", () => {
    assert.deepEqual(loadedAfter("memory"), []);
  });

  for (const client of CLIENTS) {
    test(`the check sees ${client} once it is loaded`, () => {
      assert.deepEqual(loadedAfter(`client:${client}`), [client]);
    });
  }
});
