// The engine across processes: a child writing durable commits is killed
// with SIGKILL at random moments, many times, and every commit it reported
// durable is there after reopening; a second process shares the file with
// its owner, and owns it once the owner was killed.
// ENGINE_KILLS=n kills more often (24 by default).
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, describe, test } from "node:test";
import { EmbeddedStore } from "../../backends/file/mod.ts";
import { envNumber } from "./support.ts";

// Node runs the npm build; Deno and Bun run the sources.
const runtime = "Deno" in globalThis
  ? { argv: [process.execPath, "run", "-A"], main: "backends/file/mod.ts" }
  : process.versions.bun
  ? { argv: [process.execPath], main: "backends/file/mod.ts" }
  : { argv: [process.execPath], main: "dist/file.js" };

const KILLS = envNumber("ENGINE_KILLS", 24);
const dir = mkdtempSync(join(tmpdir(), "valkeyrie-engine-process-"));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Child {
  process: ChildProcess;
  /** Lines printed so far. */
  lines: string[];
  /** Resolves when a line matching `match` was printed. */
  line(match: (line: string) => boolean, ms?: number): Promise<string>;
  exited: Promise<number | null>;
}

function child(path: string, mode: string, start = 0): Child {
  const [command, ...args] = runtime.argv;
  const proc = spawn(command, [
    ...args,
    "tests/fixtures/engine_writer.mjs",
    runtime.main,
    path,
    mode,
    String(start),
  ], { stdio: ["ignore", "pipe", "inherit"] });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let partial = "";
  proc.stdout!.on("data", (chunk: Uint8Array) => {
    partial += new TextDecoder().decode(chunk);
    const parts = partial.split("\n");
    partial = parts.pop()!;
    lines.push(...parts);
    for (const wake of waiters.splice(0)) wake();
  });
  const exited = new Promise<number | null>((resolve) =>
    proc.on("exit", (code) => resolve(code))
  );
  return {
    process: proc,
    lines,
    exited,
    async line(match, ms = 30_000) {
      const deadline = Date.now() + ms;
      while (true) {
        const found = lines.find(match);
        if (found !== undefined) return found;
        if (Date.now() > deadline) {
          proc.kill("SIGKILL");
          throw new Error(`the child printed ${JSON.stringify(lines)}`);
        }
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
  };
}

describe("the engine across processes", () => {
  test(`every commit a child reported durable survives ${KILLS} SIGKILLs`, async () => {
    const path = join(dir, "killed.db");
    const durable = new Set<number>();
    let start = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const writer = child(path, "write", start);
      try {
        await writer.line((line) => line === "open");
        // Kill at a random moment while commits are in flight.
        await new Promise((resolve) =>
          setTimeout(resolve, 20 + Math.random() * 150)
        );
      } finally {
        writer.process.kill("SIGKILL");
        await writer.exited;
      }
      for (const line of writer.lines) {
        if (/^\d+$/.test(line)) durable.add(Number(line));
      }
      start += 100_000;
      const store = await EmbeddedStore.connect({ path });
      try {
        for (const n of durable) {
          const pair = await store.get(`k/${n}`);
          assert.equal(
            pair && new TextDecoder().decode(pair.value),
            `value-${n}`,
            `durable write ${n} lost after kill ${kill}`,
          );
        }
        const report = await store.verify();
        assert.ok(report.ok, JSON.stringify(report));
      } finally {
        await store.close();
      }
    }
    assert.ok(durable.size > KILLS, `only ${durable.size} durable writes seen`);
  });

  test("a second process shares the file while its owner lives, and owns it once the owner is killed", async () => {
    const path = join(dir, "shared-by-two.db");
    const holder = child(path, "hold");
    try {
      await holder.line((line) => line === "open");
      const store = await EmbeddedStore.connect({ path });
      await store.put("while", "the owner lives");
      holder.process.kill("SIGKILL");
      await holder.exited;
      await store.put("after", "the owner died");
      assert.equal(
        new TextDecoder().decode((await store.get("while"))!.value),
        "the owner lives",
      );
      await store.close();
    } finally {
      holder.process.kill("SIGKILL");
      await holder.exited;
    }
  });

  test("opening a file this process holds through another path shares it", async () => {
    const path = join(dir, "shared.db");
    const a = await EmbeddedStore.connect({ path });
    const b = await EmbeddedStore.connect({
      path: join(dir, ".", "shared.db"),
    });
    await a.put("k", "v");
    assert.equal(await b.exists("k"), true);
    await a.close();
    await b.close();
  });
});
