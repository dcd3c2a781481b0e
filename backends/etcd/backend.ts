/**
 * The etcd backend as the registry knows it: `etcd://h1:2379,h2:2379/prefix`
 * or `etcds://...` for TLS (`newStore("etcd", ["h1:2379"], options)`). The
 * URL's path is the key prefix; its query parameters are settings
 * (`?requestTimeout=5000`).
 *
 * @module
 */

import type { BackendDescriptor } from "../../core/registry.ts";
import { pathSetting } from "../../core/url.ts";
import { lazyOpen } from "../lazy.ts";
import { ETCD_SETTINGS } from "./settings.ts";

/** The etcd backend. */
export const etcdBackend: BackendDescriptor = {
  name: "etcd",
  schemes: { etcd: {}, etcds: { tls: true } },
  settings: ETCD_SETTINGS,
  fromUrl: (url) => ({
    endpoints: url.hosts.length > 0 ? url.hosts : undefined,
    prefix: pathSetting(url.path),
  }),
  fromEndpoints: (endpoints) => ({ endpoints }),
  open: lazyOpen("etcd", ["etcd3", "@grpc/grpc-js", "cockatiel"], async () => {
    const { EtcdStore } = await import("./mod.ts");
    return (settings) => EtcdStore.connect(settings);
  }),
};
