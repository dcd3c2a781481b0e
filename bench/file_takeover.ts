/**
 * How long a `file:` store shared by processes stalls when the process that
 * owns the file is SIGKILLed: this process writes in a loop through the
 * public API while another process (the owner, which opened the file first)
 * is killed mid-run; the longest gap between two acknowledged writes is the
 * takeover's cost as a writer sees it (detecting the death, taking the file
 * over, replaying nothing lost). Each round uses a fresh file.
 *
 *     deno run -A bench/file_takeover.ts [--rounds 10] [--runtime deno|node|bun]
 *
 * The owner runs tests/fixtures/store_agent.mjs (Deno by default). A
 * benchmark, not a test: it prints min / median / max over the rounds, and
 * the gap between writes without a kill, measured in the same rounds, for
 * comparison.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { EmbeddedStore } from "../backends/file/mod.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "10" },
    runtime: { type: "string", default: "deno" },
  },
});
const ROUNDS = Number(values.rounds);
const WRITES_BEFORE = 200;
const WRITES_AFTER = 200;

function owner(path: string): Promise<ChildProcess> {
  const commands: Record<string, string[]> = {
    deno: [
      "deno",
      "run",
      "-A",
      "tests/fixtures/store_agent.mjs",
      "backends/file/mod.ts",
    ],
    bun: ["bun", "tests/fixtures/store_agent.mjs", "backends/file/mod.ts"],
    node: ["node", "tests/fixtures/store_agent.mjs", "dist/file.js"],
  };
  const [bin, ...args] = commands[values.runtime];
  const child = spawn(bin, [...args, path], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error("owner never opened")),
      60_000,
    );
    child.stdout!.once("data", (chunk: Uint8Array) => {
      clearTimeout(timer);
      const line = JSON.parse(new TextDecoder().decode(chunk).split("\n")[0]);
      if (line.ok) resolve(child);
      else reject(new Error(line.error));
    });
    child.once("exit", (code) => reject(new Error(`owner exited ${code}`)));
  });
}

function stats(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const f = (n: number) => n.toFixed(1);
  return `${f(sorted[0])} / ${f(sorted[Math.floor(sorted.length / 2)])} / ${
    f(sorted[sorted.length - 1])
  } ms`;
}

const takeovers: number[] = [];
const steady: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const dir = mkdtempSync(join(tmpdir(), "file-takeover-"));
  const path = join(dir, "shared.db");
  const child = await owner(path);
  const store = await EmbeddedStore.connect({ path });
  try {
    let last = performance.now();
    let longestBefore = 0;
    for (let i = 0; i < WRITES_BEFORE; i++) {
      await store.put(`k/${i % 16}`, `v${i}`);
      const now = performance.now();
      longestBefore = Math.max(longestBefore, now - last);
      last = now;
    }
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    let longestAfter = 0;
    for (let i = 0; i < WRITES_AFTER; i++) {
      await store.put(`k/${i % 16}`, `w${i}`);
      const now = performance.now();
      longestAfter = Math.max(longestAfter, now - last);
      last = now;
    }
    takeovers.push(longestAfter);
    steady.push(longestBefore);
  } finally {
    child.kill("SIGKILL");
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(
  `file: owner SIGKILLed mid-run, ${ROUNDS} rounds, owner on ${values.runtime}, writer on ${
    "Deno" in globalThis ? "deno" : process.versions.bun ? "bun" : "node"
  }`,
);
console.log("| gap between two acknowledged writes | min / median / max |");
console.log("| --- | --- |");
console.log(`| across the owner's death (takeover) | ${stats(takeovers)} |`);
console.log(`| longest without a kill | ${stats(steady)} |`);
