/**
 * Registers the built-in backends. Each one is a lazy loader: a backend's
 * module, and the npm client it wraps, is imported only when a store of it
 * is opened.
 *
 * @module
 */

import { register, type StoreFactory } from "../core/registry.ts";
import { StoreError } from "../core/errors.ts";
import type { Store } from "../core/types.ts";

type Loader = () => Promise<{ open: StoreFactory }>;

interface Builtin {
  load: Loader;
  /**
   * The npm packages the backend's module imports: optional peer
   * dependencies of this package, installed by the user who needs them.
   */
  clients: string[];
}

// One line per backend: the name (also its URL scheme, see core/registry.ts
// for the aliases), how to load its store class, and the clients it needs.
const BUILTINS: Record<string, Builtin> = {
  memory: {
    load: async () => (await import("./memory/mod.ts")).MemoryStore,
    clients: [],
  },
  etcd: {
    load: async () => (await import("./etcd/mod.ts")).EtcdStore,
    clients: ["etcd3", "@grpc/grpc-js", "cockatiel"],
  },
  consul: {
    load: async () => (await import("./consul/mod.ts")).ConsulStore,
    clients: ["consul"],
  },
  redis: {
    load: async () => (await import("./redis/mod.ts")).RedisStore,
    clients: ["ioredis"],
  },
  zookeeper: {
    load: async () => (await import("./zookeeper/mod.ts")).ZookeeperStore,
    clients: [],
  },
  dynamodb: {
    load: async () => (await import("./dynamodb/mod.ts")).DynamoDBStore,
    clients: ["@aws-sdk/client-dynamodb", "@aws-sdk/client-dynamodb-streams"],
  },
  file: {
    load: async () => (await import("./file/mod.ts")).EmbeddedStore,
    clients: [],
  },
};

/**
 * The client package a failed import of a backend's module was missing, if
 * that is why it failed (each runtime words it its own way, all naming the
 * package).
 */
function missingClient(error: unknown, clients: string[]): string | undefined {
  const message = error instanceof Error ? error.message : String(error);
  if (
    !/cannot find|not found|could not resolve|failed to resolve/i.test(message)
  ) {
    return undefined;
  }
  return clients.find((client) => message.includes(client));
}

for (const [name, { load, clients }] of Object.entries(BUILTINS)) {
  register(
    name,
    async (endpoints, config): Promise<Store> => {
      let backend: { open: StoreFactory };
      try {
        backend = await load();
      } catch (error) {
        const client = missingClient(error, clients);
        if (client === undefined) throw error;
        throw new StoreError(
          `The ${name} backend needs the npm package ${client}, which is not installed: npm install ${
            clients.join(" ")
          }`,
          { cause: error },
        );
      }
      return backend.open(endpoints, config);
    },
  );
}
