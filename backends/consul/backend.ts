/**
 * The Consul backend as the registry knows it:
 * `consul://HOST:PORT/PREFIX?token=...` or `consuls://` for TLS
 * (`newStore("consul", ["HOST:PORT"], options)`). A store talks to one
 * agent; the URL's path is the key prefix.
 *
 * @module
 */

import type { BackendDescriptor } from "../../core/registry.ts";
import { InvalidConfigurationError } from "../../core/errors.ts";
import { pathSetting } from "../../core/url.ts";
import { lazyOpen } from "../lazy.ts";

/** The Consul backend. */
export const consulBackend: BackendDescriptor = {
  name: "consul",
  schemes: { consul: {}, consuls: { tls: true } },
  fromUrl: (url) => ({
    address: agent(url.hosts),
    prefix: pathSetting(url.path),
  }),
  fromEndpoints: (endpoints) => ({ address: agent(endpoints) }),
  open: lazyOpen("consul", ["consul"], async () => {
    const { ConsulStore } = await import("./mod.ts");
    return (settings) => ConsulStore.connect(settings);
  }),
};

function agent(hosts: string[]): string | undefined {
  if (hosts.length > 1) {
    throw new InvalidConfigurationError(
      `A Consul store talks to one agent, not ${hosts.length}: give the address of the local agent`,
    );
  }
  return hosts[0];
}
