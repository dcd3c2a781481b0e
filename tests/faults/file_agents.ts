/**
 * Workload clients whose calls go to agent processes holding one `file:`
 * store each (tests/fixtures/agents.ts), for linearizability runs of the
 * embedded engine across processes.
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
