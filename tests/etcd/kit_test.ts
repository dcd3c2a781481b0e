// The conformance kit on a real etcd (one member on loopback), opened by URL
// as users do.
import { after, before, describe, test } from "node:test";
import { openStore } from "../../mod.ts";
import { conformance } from "../../testing/mod.ts";
import { type EtcdService, startEtcd } from "../services/etcd.ts";

let etcd: EtcdService;

describe("etcd", () => {
  before(async () => {
    etcd = await startEtcd();
  });
  after(async () => {
    await etcd?.stop();
  });

  conformance({ describe, test }, {
    name: "etcd",
    open: (options) => openStore(etcd.url, options),
    // Port 1 on loopback: nothing listens, connections are refused.
    openUnreachable: (connectTimeout) =>
      openStore("etcd://127.0.0.1:1", { connectTimeout }),
  });
});
