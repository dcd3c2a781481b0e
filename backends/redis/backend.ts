/**
 * The Redis backend as the registry knows it: `redis://[user:pass@]host:port/DB`,
 * `rediss://` for TLS, several hosts for Sentinel (`?master=NAME`) or a
 * cluster (`newStore("redis", ["host:port"], options)`). The URL's path is
 * the database number.
 *
 * @module
 */

import type { BackendDescriptor } from "../../core/registry.ts";
import { pathSetting } from "../../core/url.ts";
import { lazyOpen } from "../lazy.ts";
import { REDIS_SETTINGS } from "./settings.ts";

/** The Redis backend. */
export const redisBackend: BackendDescriptor = {
  name: "redis",
  schemes: { redis: {}, rediss: { tls: true } },
  settings: REDIS_SETTINGS,
  fromUrl: (url) => ({
    endpoints: url.hosts.length > 0 ? url.hosts : undefined,
    db: pathSetting(url.path),
  }),
  fromEndpoints: (endpoints) => ({ endpoints }),
  open: lazyOpen("redis", ["ioredis"], async () => {
    const { RedisStore } = await import("./mod.ts");
    return (settings) => RedisStore.connect(settings);
  }),
};
