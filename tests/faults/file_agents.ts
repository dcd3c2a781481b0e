/**
 * Child processes holding one `file:` store each, for linearizability runs
 * of the embedded engine across processes. The children are the project's
 * tests/fixtures/file_agent.mjs (one JSON command per stdin line, one JSON
 * answer per stdout line); Deno and Bun children run the source, Node
 * children the npm build (dist/), as tests/file_processes_test.ts does.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import type { KvClient } from "./workload.ts";

/** A running agent process. */
export interface FileAgent {
  /** Sends a command; resolves its result, rejects its error or a timeout. */
  call(op: string, args?: Record<string, unknown>): Promise<unknown>;
  /** Asks the agent to close its store and exit; kills it if it does not. */
  stop(): Promise<void>;
}

function command(): string[] {
  if ("Deno" in globalThis) {
    return [
      process.execPath,
      "run",
      "-A",
      "tests/fixtures/file_agent.mjs",
      "backends/file/mod.ts",
    ];
  }
  if (process.versions.bun) {
    return [
      process.execPath,
      "tests/fixtures/file_agent.mjs",
      "backends/file/mod.ts",
    ];
  }
  return [process.execPath, "tests/fixtures/file_agent.mjs", "dist/file.js"];
}

/**
 * Starts an agent on the store file `path`. A call not answered within
 * `answerMs` rejects with a `TimeoutError` (its outcome is unknown).
 */
export async function startFileAgent(
  path: string,
  answerMs = 30_000,
): Promise<FileAgent> {
  const [bin, ...args] = command();
  const child: ChildProcess = spawn(bin, [...args, path], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const waiting = new Map<number, (message: Record<string, unknown>) => void>();
  let partial = "";
  child.stdout!.on("data", (chunk: Uint8Array) => {
    partial += new TextDecoder().decode(chunk);
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      const message = JSON.parse(line) as Record<string, unknown>;
      if (typeof message.id === "number") waiting.get(message.id)?.(message);
    }
  });
  child.stdin!.on("error", () => {});
  const exited = new Promise<void>((resolve) =>
    child.on("exit", () => resolve())
  );
  const answer = (id: number) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(id);
        const error = new Error(`agent: no answer to call ${id}`);
        error.name = "TimeoutError";
        reject(error);
      }, answerMs);
      waiting.set(id, (message) => {
        clearTimeout(timer);
        waiting.delete(id);
        resolve(message);
      });
      exited.then(() => {
        clearTimeout(timer);
        reject(new Error("agent exited"));
      });
    });
  const opened = await answer(0);
  if (!opened.ok) throw new Error(`file agent: ${opened.error}`);
  let nextId = 1;
  const call = async (op: string, args: Record<string, unknown> = {}) => {
    const id = nextId++;
    const answered = answer(id);
    child.stdin!.write(JSON.stringify({ id, op, ...args }) + "\n");
    const message = await answered;
    // The agent sends errors as "Name: message"; history.ts reads the name.
    if (!message.ok) throw new Error(String(message.error));
    return message.result;
  };
  return {
    call,
    async stop() {
      const stopping = call("exit").catch(() => {});
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await stopping;
      await exited;
      clearTimeout(killer);
    },
  };
}

/** A workload client whose calls go to `agent` (no atomicDelete, no atomic). */
export function agentClient(agent: FileAgent): KvClient {
  return {
    async get(key) {
      const pair = await agent.call("get", { key }) as
        | { value: string; lastIndex: string }
        | null;
      return pair && { value: pair.value, lastIndex: BigInt(pair.lastIndex) };
    },
    async put(key, value) {
      return BigInt(await agent.call("put", { key, value }) as string);
    },
    async delete(key) {
      await agent.call("delete", { key });
    },
    async cas(key, value, expected) {
      const lastIndex = expected === null ? null : String(expected);
      return BigInt(
        await agent.call("cas", { key, value, lastIndex }) as string,
      );
    },
  };
}
