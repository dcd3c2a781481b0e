/**
 * etcd: our `EtcdStore` against etcd3 used directly (its builder API, with
 * its default settings).
 *
 * The raw side: `get(key).buffer()` and `put(key).value(bytes)`; a list is
 * one prefix range (`getAll().prefix(dir/).buffers()`); a compare-and-set is
 * a transaction comparing the key's mod revision with the one the last round
 * left (`if(key, "Mod", "==", rev).then(put)`); a watch is etcd3's
 * `watch().key(key)`, whose events carry the value.
 *
 * @module
 */

import { Etcd3 } from "etcd3";
import { openStore } from "../../mod.ts";
import { startEtcd } from "../../tests/services/etcd.ts";
import { execFileSync } from "node:child_process";
import { Buffer } from "node:buffer";
import { packageVersion, type Side, storeSide, type Target } from "./side.ts";

/** Starts etcd and both sides on it. */
export async function etcdTarget(): Promise<Target> {
  const server = await startEtcd();
  const store = await openStore(server.url);
  const client = new Etcd3({ hosts: server.endpoint });
  const raw: Side = {
    get: (key) => client.get(key).buffer(),
    put: async (key, value) => {
      await client.put(key).value(toBuffer(value));
    },
    async list(dir) {
      return Object.keys(await client.getAll().prefix(`${dir}/`).buffers())
        .length;
    },
    async cas(key, value) {
      const bytes = toBuffer(value);
      let revision = (await client.put(key).value(bytes).exec()).header
        .revision;
      return async () => {
        const response = await client.if(key, "Mod", "==", revision)
          .then(client.put(key).value(bytes)).commit();
        if (!response.succeeded) throw new Error("raw etcd CAS failed");
        revision = response.header.revision;
      };
    },
    async watch(key, onValue) {
      const watcher = await client.watch().key(key).create();
      watcher.on("put", (kv) => onValue(kv.value));
      return () => watcher.cancel();
    },
  };
  return {
    backend: "etcd",
    store,
    ours: storeSide(store),
    raw,
    keys: { ours: "bench/ours", raw: "bench/raw" },
    about: {
      server: execFileSync("etcd", ["--version"], { encoding: "utf8" })
        .split("\n")[0],
      client: `etcd3 ${await packageVersion(
        "etcd3",
      )}, @grpc/grpc-js ${await packageVersion(
        "@grpc/grpc-js",
      )}`,
      get: "Range of one key",
      put: "Put",
      list: "Range of the prefix dir/",
      cas: "Txn: mod revision == last, then Put",
      watch: "Watch of the key (events carry the value)",
    },
    async close() {
      await store.close();
      client.close();
      await server.stop();
    },
  };
}

function toBuffer(value: Uint8Array): Buffer {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}
