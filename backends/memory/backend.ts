/**
 * The `memory:` backend as the registry knows it: `memory:` or
 * `memory:NAME` (`newStore("memory", ["NAME"])`), the name picking a
 * database shared by the handles of one process.
 *
 * @module
 */

import type { BackendDescriptor } from "../../core/registry.ts";
import { InvalidConfigurationError } from "../../core/errors.ts";
import { oneEndpoint } from "../../core/url.ts";
import { MEMORY_SETTINGS } from "./settings.ts";

/** The `memory:` backend. */
export const memoryBackend: BackendDescriptor = {
  name: "memory",
  settings: MEMORY_SETTINGS,
  fromUrl: (url) => {
    if (url.hosts.length > 0) {
      throw new InvalidConfigurationError(
        `A memory: URL names a database, not a host: memory:${url.hosts[0]}`,
      );
    }
    return { name: url.path || undefined };
  },
  fromEndpoints: (endpoints) => ({ name: oneEndpoint("memory", endpoints) }),
  open: async (settings) =>
    new (await import("./mod.ts")).MemoryStore(settings),
};
