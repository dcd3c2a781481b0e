/**
 * Workload clients whose calls go to agent processes holding one store each
 * (tests/fixtures/agents.ts): a `file:` store for runs of the embedded
 * engine across processes, or any URL's, so that the clients of a network
 * backend's run are in more than one process.
 *
 * @module
 */

import { type Agent, here, startAgent } from "../fixtures/agents.ts";
import type { KvClient } from "./workload.ts";

/**
 * Starts an agent in this test's runtime on the store file `path`. A call not
 * answered within `answerMs` rejects with a `TimeoutError` (its outcome is
 * unknown).
 */
export function startFileAgent(
  path: string,
  answerMs = 30_000,
): Promise<Agent> {
  return startAgent(here, path, answerMs);
}

/**
 * Starts an agent in this test's runtime that opens `url` with `options`.
 * Each call is bounded by `callMs` in the agent (as the parent's clients
 * are) and answered within `callMs` + 5 s, or rejects with a `TimeoutError`.
 */
export function startUrlAgent(
  url: string,
  options: Record<string, unknown>,
  callMs: number,
): Promise<Agent> {
  return startAgent(here, url, callMs + 5_000, { options, callMs });
}

/** A workload client whose calls go to `agent` (no atomicDelete, no atomic). */
export function agentClient(agent: Agent): KvClient {
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
