/**
 * The ZooKeeper backend as the registry knows it:
 * `zk://h1:2181,h2:2181/chroot?sessionTimeout=...` or `zks://` for TLS
 * (`newStore("zookeeper", ["h1:2181"], options)`). The URL's path is the
 * chroot, its user and password the digest credentials.
 *
 * @module
 */

import type { BackendDescriptor } from "../../core/registry.ts";
import { pathSetting } from "../../core/url.ts";
import { lazyOpen } from "../lazy.ts";
import { ZOOKEEPER_SETTINGS } from "./settings.ts";

/** The ZooKeeper backend. */
export const zookeeperBackend: BackendDescriptor = {
  name: "zookeeper",
  schemes: { zk: {}, zks: { tls: true } },
  settings: ZOOKEEPER_SETTINGS,
  fromUrl: (url) => {
    const chroot = pathSetting(url.path);
    return {
      endpoints: url.hosts.length > 0 ? url.hosts : undefined,
      chroot: chroot === undefined ? undefined : `/${chroot}`,
    };
  },
  fromEndpoints: (endpoints) => ({ endpoints }),
  open: lazyOpen("zookeeper", [], async () => {
    const { ZookeeperStore } = await import("./mod.ts");
    return (settings) => ZookeeperStore.connect(settings);
  }),
};
