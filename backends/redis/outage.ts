/**
 * Bounding the wait for a Redis Cluster that is down as a whole.
 *
 * While a node fails over, ioredis retries the commands for its slots (see
 * `CLUSTER_MAX_REDIRECTIONS`), and they give up after about ten seconds. But
 * when no node at all answers, the cluster client queues every command and
 * reconnects for ever: a call would hang. So once the cluster has been down
 * for {@linkcode CLUSTER_OUTAGE_LIMIT_MS}, the queued commands fail with
 * `NotReachableError`, and so do those issued later, at the latest a second
 * after they were issued, until the cluster is back. That is how long a
 * command waits for a single server to come back, too.
 *
 * @module
 */

import { clearInterval, setInterval } from "node:timers";
import type { Cluster } from "ioredis";
import { NotReachableError } from "../../core/errors.ts";

/**
 * How long commands wait for a cluster none of whose nodes answers: as long
 * as ioredis lets them wait for a single server (20 reconnections).
 */
export const CLUSTER_OUTAGE_LIMIT_MS = 10_000;

/** How often the queue is emptied while the cluster stays down. */
const CHECK_INTERVAL_MS = 1_000;

/** The part of the cluster client that empties its queue. */
interface QueueOwner {
  /**
   * Rejects every queued command with `error`: ioredis's own, which it calls
   * when it gives up reconnecting. Not in its types.
   */
  flushQueue?(error: Error): void;
}

/**
 * Makes commands fail with `NotReachableError` instead of waiting on while
 * `cluster` stays down for longer than {@linkcode CLUSTER_OUTAGE_LIMIT_MS}.
 *
 * @param cluster The cluster client.
 * @param what The cluster, for messages.
 * @returns What stops it, before the client is closed.
 */
export function boundOutages(cluster: Cluster, what: string): () => void {
  let downSince: number | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  let stopped = false;
  const check = () => {
    if (stopped || cluster.status === "ready" || cluster.status === "end") {
      downSince = undefined;
      clearInterval(timer);
      timer = undefined;
      return;
    }
    downSince ??= Date.now();
    // Never what keeps a process alive: ioredis's reconnection does that.
    timer ??= setInterval(check, CHECK_INTERVAL_MS).unref();
    const down = Date.now() - downSince;
    if (down < CLUSTER_OUTAGE_LIMIT_MS) return;
    (cluster as unknown as QueueOwner).flushQueue?.(
      new NotReachableError(
        `${what} is not reachable: no node has answered for ${
          Math.round(down / 1000)
        } s`,
      ),
    );
  };
  const statuses = ["close", "reconnecting", "connecting", "end", "ready"];
  for (const status of statuses) cluster.on(status, check);
  return () => {
    stopped = true;
    check();
    for (const status of statuses) cluster.off(status, check);
  };
}
