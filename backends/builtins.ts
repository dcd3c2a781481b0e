/**
 * Registers the built-in backends. Each one is a lazy loader: a backend's
 * module, and the npm client it wraps, is imported only when a store of it
 * is opened.
 *
 * @module
 */

import { register, type StoreFactory } from "../core/registry.ts";
import type { Store } from "../core/types.ts";

function lazy(
  load: () => Promise<{ open: StoreFactory }>,
): StoreFactory {
  return async (endpoints, config): Promise<Store> =>
    (await load()).open(endpoints, config);
}

register(
  "memory",
  lazy(async () => (await import("./memory/mod.ts")).MemoryStore),
);

register(
  "file",
  lazy(async () => (await import("./file/mod.ts")).EmbeddedStore),
);
