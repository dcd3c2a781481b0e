/**
 * Registers the built-in backends. Each one is a lazy loader: a backend's
 * module, and the npm client it wraps, is imported only when a store of it
 * is opened.
 *
 * @module
 */

import { register, type StoreFactory } from "../core/registry.ts";
import type { Store } from "../core/types.ts";

type Loader = () => Promise<{ open: StoreFactory }>;

// One line per backend: the name (also its URL scheme, see core/registry.ts
// for the aliases) and how to load its store class.
const BUILTINS: Record<string, Loader> = {
  memory: async () => (await import("./memory/mod.ts")).MemoryStore,
  etcd: async () => (await import("./etcd/mod.ts")).EtcdStore,
  consul: async () => (await import("./consul/mod.ts")).ConsulStore,
  redis: async () => (await import("./redis/mod.ts")).RedisStore,
  zookeeper: async () => (await import("./zookeeper/mod.ts")).ZookeeperStore,
  dynamodb: async () => (await import("./dynamodb/mod.ts")).DynamoDBStore,
  file: async () => (await import("./file/mod.ts")).EmbeddedStore,
};

for (const [name, load] of Object.entries(BUILTINS)) {
  register(
    name,
    async (endpoints, config): Promise<Store> =>
      (await load()).open(endpoints, config),
  );
}
