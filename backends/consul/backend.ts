/**
 * The Consul backend as the registry knows it:
 * `consul://HOST:PORT/PREFIX?token=...` or `consuls://` for TLS
 * (`newStore("consul", ["HOST:PORT"], options)`). A store talks to one
 * agent; the URL's path is the key prefix.
 *
 * @module
 */

import type { BackendDescriptor } from "../../core/registry.ts";
import { pathSetting } from "../../core/url.ts";
import { lazyOpen } from "../lazy.ts";
import { CONSUL_SETTINGS } from "./settings.ts";

/** The Consul backend. */
export const consulBackend: BackendDescriptor = {
  name: "consul",
  schemes: { consul: {}, consuls: { tls: true } },
  settings: CONSUL_SETTINGS,
  fromUrl: (url) => ({
    endpoints: url.hosts.length ? url.hosts : undefined,
    prefix: pathSetting(url.path),
  }),
  fromEndpoints: (endpoints) => ({ endpoints }),
  open: lazyOpen("consul", ["consul"], async () => {
    const { ConsulStore } = await import("./mod.ts");
    return (settings) => ConsulStore.connect(settings);
  }),
};
