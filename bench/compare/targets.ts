/**
 * Every network backend's benchmark target (its server, our store and the
 * raw client on it), each loaded only when asked for.
 *
 * @module
 */

import type { Target } from "./side.ts";

/** Starts a backend's target by name. */
export const TARGETS: Record<string, () => Promise<Target>> = {
  redis: async () => (await import("./redis.ts")).redisTarget(),
  etcd: async () => (await import("./etcd.ts")).etcdTarget(),
  zookeeper: async () => (await import("./zookeeper.ts")).zookeeperTarget(),
  consul: async () => (await import("./consul.ts")).consulTarget(),
  dynamodb: async () => (await import("./dynamodb.ts")).dynamodbTarget(),
};
