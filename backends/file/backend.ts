/**
 * The `file:` backend (the embedded engine) as the registry knows it:
 * `file:./data.db`, `file:///abs/data.db?cacheSize=1048576&durable=false`,
 * or `newStore("file", ["./data.db"])`.
 *
 * @module
 */

import type { BackendDescriptor } from "../../core/registry.ts";
import { InvalidConfigurationError } from "../../core/errors.ts";
import { oneEndpoint } from "../../core/url.ts";
import type { EmbeddedStoreOptions } from "./mod.ts";
import { FILE_SETTINGS } from "./settings.ts";

/** The `file:` backend. */
export const fileBackend: BackendDescriptor = {
  name: "file",
  settings: FILE_SETTINGS,
  fromUrl: (url) => {
    if (url.hosts.length > 0 && url.hosts.join() !== "localhost") {
      throw new InvalidConfigurationError(
        `A file: URL names a local file, not a host (${url.hosts.join()})`,
      );
    }
    return { path: url.path || undefined };
  },
  fromEndpoints: (endpoints) => ({ path: oneEndpoint("file", endpoints) }),
  // connect() checks every setting, the path included.
  open: async (settings) =>
    await (await import("./mod.ts")).EmbeddedStore.connect(
      settings as unknown as EmbeddedStoreOptions,
    ),
};
