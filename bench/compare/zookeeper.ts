/**
 * ZooKeeper: our `ZookeeperStore` (which speaks the protocol itself) against
 * `node-zookeeper-client`, the npm client users otherwise reach for.
 *
 * The raw side: `getData` and `setData(path, data, -1)` (a missing node is
 * created with `mkdirp` on the first write); a list is `getChildren` and a
 * `getData` of every child, sent together; a compare-and-set is
 * `setData(path, data, version)` with the version the last round returned;
 * a watch is `getData` with a watcher, armed again by the `getData` that
 * reads the new value after each event (ZooKeeper watches fire once).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import { openStore } from "../../mod.ts";
import { fourLetter, startZookeeper } from "../../tests/services/zookeeper.ts";
import { packageVersion, type Side, storeSide, type Target } from "./side.ts";

interface Stat {
  version: number;
}

type Callback<T> = (error: Error | null, result: T, stat: Stat) => void;

// The parts of node-zookeeper-client used here (it ships no typings).
interface ZkClient {
  connect(): void;
  close(): void;
  once(event: "connected", listener: () => void): void;
  getData(path: string, callback: Callback<Uint8Array>): void;
  getData(
    path: string,
    watcher: (event: unknown) => void,
    callback: Callback<Uint8Array>,
  ): void;
  setData(
    path: string,
    data: Uint8Array,
    version: number,
    callback: (error: Error | null, stat: Stat) => void,
  ): void;
  getChildren(path: string, callback: Callback<string[]>): void;
  mkdirp(path: string, data: Uint8Array, callback: Callback<string>): void;
}

interface ZkModule {
  createClient(
    connect: string,
    options: { sessionTimeout: number },
  ): ZkClient;
  Exception: { NO_NODE: number };
}

const zookeeper = createRequire(import.meta.url)(
  "node-zookeeper-client",
) as ZkModule;

/** Starts ZooKeeper and both sides on it. */
export async function zookeeperTarget(): Promise<Target> {
  const server = await startZookeeper();
  const store = await openStore(server.url);
  const client = zookeeper.createClient(`127.0.0.1:${server.port}`, {
    sessionTimeout: 10_000,
  });
  await new Promise<void>((resolve) => {
    client.once("connected", resolve);
    client.connect();
  });
  const getData = (path: string) =>
    new Promise<{ data: Uint8Array; stat: Stat }>((resolve, reject) =>
      client.getData(
        path,
        (error, data, stat) => error ? reject(error) : resolve({ data, stat }),
      )
    );
  const setData = (path: string, data: Uint8Array, version: number) =>
    new Promise<Stat>((resolve, reject) =>
      client.setData(
        path,
        Buffer.from(data.buffer, data.byteOffset, data.byteLength),
        version,
        (error, stat) => error ? reject(error) : resolve(stat),
      )
    );
  const put = async (path: string, data: Uint8Array): Promise<Stat> => {
    try {
      return await setData(path, data, -1);
    } catch (error) {
      if ((error as { code?: number }).code !== zookeeper.Exception.NO_NODE) {
        throw error;
      }
      await new Promise((resolve, reject) =>
        client.mkdirp(
          path,
          Buffer.from(data.buffer, data.byteOffset, data.byteLength),
          (error, created) => error ? reject(error) : resolve(created),
        )
      );
      return await setData(path, data, -1);
    }
  };
  const raw: Side = {
    get: (key) => getData(`/${key}`),
    put: async (key, value) => {
      await put(`/${key}`, value);
    },
    async list(dir) {
      const children = await new Promise<string[]>((resolve, reject) =>
        client.getChildren(
          `/${dir}`,
          (error, names) => error ? reject(error) : resolve(names),
        )
      );
      const values = await Promise.all(
        children.map((name) => getData(`/${dir}/${name}`)),
      );
      return values.length;
    },
    async cas(key, value) {
      let version = (await put(`/${key}`, value)).version;
      return async () => {
        version = (await setData(`/${key}`, value, version)).version;
      };
    },
    async watch(key, onValue) {
      const path = `/${key}`;
      await put(path, new Uint8Array());
      let stopped = false;
      const arm = () =>
        new Promise<void>((resolve, reject) =>
          client.getData(path, () => {
            if (!stopped) arm().catch(() => {});
          }, (error, data) => {
            if (error) return reject(error);
            if (!stopped) onValue(data);
            resolve();
          })
        );
      await arm();
      return () => {
        stopped = true;
        return Promise.resolve();
      };
    },
  };
  const version = (await fourLetter(server.port, "srvr")).split("\n")[0];
  return {
    backend: "zookeeper",
    store,
    ours: storeSide(store),
    raw,
    keys: { ours: "bench/ours", raw: "benchraw" },
    about: {
      server: version.replace(/^Zookeeper version: /, "ZooKeeper "),
      client: `node-zookeeper-client ${await packageVersion(
        "node-zookeeper-client",
      )}`,
      get: "getData",
      put: "setData(path, data, -1)",
      list: "getChildren, then getData of each child (sent together)",
      cas: "setData(path, data, version of the last round)",
      watch: "getData with a watcher, re-armed by the getData after each event",
    },
    async close() {
      await store.close();
      client.close();
      await server.stop();
    },
  };
}
