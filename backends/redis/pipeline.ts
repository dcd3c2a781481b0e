/**
 * Batches of commands sent as one pipeline per server: the batch calls
 * (`getMany`, `putMany`, `deleteMany`) and the reads of a scan's page cost
 * one round trip per server, however many hash slots their keys cover.
 *
 * Each command takes names of one hash slot. On a single server every
 * command goes into one pipeline. On a cluster the commands are grouped by
 * the master of their slot, as the client last learnt the layout, and each
 * group is pipelined on that master's own connection, past the cluster
 * client's routing (ioredis's cluster pipelines refuse commands of slots
 * with different replica sets, and follow a redirection only when every
 * command of the pipeline was refused alike). A command the master did not
 * run — its slot moved (`MOVED`, `ASK`), the cluster is failing over
 * (`TRYAGAIN`, `CLUSTERDOWN`), the connection closed — is sent again alone
 * through the cluster client, which follows redirections and waits out a
 * failover as it does for any single command. A batch of one command goes
 * that way from the start, as a single call would.
 *
 * @module
 */

import type { ChainableCommander, Cluster, Redis } from "ioredis";
import { isConnectionClosed } from "./errors.ts";
import type { Topology } from "./topology.ts";

/** One command of a batch, on names of one hash slot. */
export interface Call {
  /** A name the command takes: its slot picks the server. */
  readonly slotKey: string;
  /** Adds the command to a pipeline. */
  queue(pipeline: ChainableCommander): void;
  /**
   * Sends the command alone through `client`; `error` is why its pipelined
   * run failed, if it did (a script the server lost is then sent in full).
   */
  run(client: Redis | Cluster, error?: Error): Promise<unknown>;
}

/**
 * Runs `calls`, one pipeline per server at once, and resolves their replies
 * in order. Rejects with the first error no retry mends; the other commands
 * may have run by then (a batch is not atomic).
 */
export async function runPipelined(
  topology: Topology,
  calls: readonly Call[],
): Promise<unknown[]> {
  const client = topology.client;
  if (calls.length === 0) return [];
  if (calls.length === 1) return [await calls[0].run(client)];
  const replies = new Array<unknown>(calls.length);
  await Promise.all(
    topology.byNode(calls.map((call) => call.slotKey)).map(
      async ({ node, indexes }) => {
        if (node === undefined) {
          // No connection to the slot's master yet: routed one by one.
          await Promise.all(indexes.map(async (i) => {
            replies[i] = await calls[i].run(client);
          }));
          return;
        }
        const pipeline = node.pipeline();
        for (const i of indexes) calls[i].queue(pipeline);
        let results: [Error | null, unknown][] | null;
        try {
          results = await pipeline.exec();
        } catch (error) {
          if (!(error instanceof Error)) throw error;
          results = indexes.map(() => [error, undefined]);
        }
        await Promise.all(indexes.map(async (i, n) => {
          const [error, reply] = results?.[n] ?? [NO_REPLY, undefined];
          if (error === null) {
            replies[i] = reply;
            return;
          }
          if (!retriable(error, topology.isCluster)) throw error;
          replies[i] = await calls[i].run(client, error);
        }));
      },
    ),
  );
  return replies;
}

const NO_REPLY = new Error("Redis gave no reply to a pipelined command");

// Errors that say the command did not run where it was sent, so sending it
// again through the routing client neither loses nor repeats it (a write
// cut off by a closed connection may have run; running it again writes the
// same bytes under a newer version, or deletes again).
function retriable(error: Error, cluster: boolean): boolean {
  if (error.message.startsWith("NOSCRIPT")) return true;
  if (!cluster) return false;
  return /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /.test(error.message) ||
    isConnectionClosed(error);
}
