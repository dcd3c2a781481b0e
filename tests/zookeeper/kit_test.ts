// The conformance kit on a real ZooKeeper 3.8, opened by URL as users do.
import { after, before, describe, test } from "node:test";
import { openStore } from "../../mod.ts";
import { conformance } from "../../testing/mod.ts";
import {
  startZookeeper,
  type ZookeeperService,
} from "../services/zookeeper.ts";

let server: ZookeeperService;

describe("zookeeper", () => {
  before(async () => {
    server = await startZookeeper();
  });
  after(async () => {
    await server?.stop();
  });

  conformance({ describe, test }, {
    name: "zookeeper",
    // The server's tick is 200 ms (see the starter): the store is told, so
    // it declares how late ZooKeeper may expire a dead holder's session.
    open: (options) => openStore(`${server.url}/kit?tickTime=200`, options),
    openUnreachable: (connectTimeout) =>
      openStore("zk://127.0.0.1:1", { connectTimeout }),
  });
});
