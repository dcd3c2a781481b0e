/**
 * Consul: our `ConsulStore` against the `consul` npm client used directly,
 * both talking to the Consul API double (`tests/consul_double/`, run in a
 * process of its own): no Consul can be installed here, so these numbers
 * measure the clients over HTTP, not a real Consul's Raft and storage. Set
 * `CONSUL_HTTP_ADDR` to measure a real agent instead.
 *
 * The raw side: `kv.get(key)` and `kv.set(key, value)`; a list is
 * `kv.get({ key: dir/, recurse: true })`; a compare-and-set is a `/v1/txn`
 * with a `cas` operation on the index the last round returned (a plain
 * `kv.set({ cas })` answers only true or false, so the next round would need
 * a read); a watch is the client's own `consul.watch` over `kv.get`, a
 * blocking query.
 *
 * @module
 */

import { Agent } from "node:http";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import process from "node:process";
import Consul from "consul";
import { openStore } from "../../mod.ts";
import {
  freePort,
  startProcess,
  tempDir,
} from "../../tests/services/process.ts";
import { packageVersion, type Side, storeSide, type Target } from "./side.ts";

interface KvEntry {
  Value: Buffer | string | null;
  ModifyIndex: number;
}

// The parts of the client used here; its typings leave out `buffer`.
interface ConsulClient {
  kv: {
    get(options: Record<string, unknown>): Promise<unknown>;
    set(options: Record<string, unknown>): Promise<unknown>;
  };
  transaction: { create(ops: unknown[]): Promise<unknown> };
  watch(options: Record<string, unknown>): {
    on(event: "change", listener: (data: KvEntry | undefined) => void): void;
    on(event: "error", listener: (error: Error) => void): void;
    end(): void;
  };
  destroy(): void;
}

/** Starts the Consul double (or uses `CONSUL_HTTP_ADDR`) and both sides. */
export async function consulTarget(): Promise<Target> {
  const real = process.env.CONSUL_HTTP_ADDR?.replace(/^https?:\/\//, "");
  let stop = () => Promise.resolve();
  let address = real;
  if (!address) {
    const port = await freePort();
    // In a process of its own, so the server does not share the benchmark's
    // event loop with the clients it serves.
    const service = await startProcess({
      name: "consul-double",
      command: process.execPath,
      args: [
        "run",
        "-A",
        join(process.cwd(), "tests", "consul_double", "main.ts"),
        JSON.stringify({ port }),
      ],
      dir: tempDir("consul"),
      port,
    });
    stop = () => service.stop();
    address = `127.0.0.1:${port}`;
  }
  const store = await openStore(`consul://${address}`);
  const [host, port] = address.split(":");
  const client = new (Consul as unknown as new (
    options: Record<string, unknown>,
  ) => ConsulClient)({
    host,
    port: Number(port),
    agent: new Agent({ keepAlive: true }),
  });
  const raw: Side = {
    get: (key) => client.kv.get({ key, buffer: true }),
    put: async (key, value) => {
      await client.kv.set({ key, value: toBuffer(value) });
    },
    async list(dir) {
      const entries = await client.kv.get({
        key: `${dir}/`,
        recurse: true,
        buffer: true,
      }) as KvEntry[] | undefined;
      return entries?.length ?? 0;
    },
    async cas(key, value) {
      const encoded = toBuffer(value).toString("base64");
      await client.kv.set({ key, value: toBuffer(value) });
      let index = (await client.kv.get({ key }) as KvEntry).ModifyIndex;
      return async () => {
        const result = await client.transaction.create([
          { KV: { Verb: "cas", Key: key, Value: encoded, Index: index } },
        ]) as { Results: Array<{ KV: KvEntry }> };
        index = result.Results[0].KV.ModifyIndex;
      };
    },
    async watch(key, onValue) {
      await client.kv.set({ key, value: "" });
      const watch = client.watch({
        method: client.kv.get,
        options: { key, buffer: true },
      });
      let first = true;
      await new Promise<void>((resolve, reject) => {
        watch.on("change", (entry) => {
          if (first) {
            first = false;
            return resolve();
          }
          const value = entry?.Value;
          if (value) {
            onValue(typeof value === "string" ? Buffer.from(value) : value);
          }
        });
        watch.on("error", reject);
      });
      return () => {
        watch.end();
        return Promise.resolve();
      };
    },
  };
  return {
    backend: "consul",
    store,
    ours: storeSide(store),
    raw,
    keys: { ours: "bench/ours", raw: "bench/raw" },
    about: {
      server: real
        ? `Consul at ${real}`
        : "the Consul API double of tests/consul_double (not a real Consul)",
      client: `consul ${await packageVersion("consul")}`,
      get: "GET /v1/kv/KEY",
      put: "PUT /v1/kv/KEY",
      list: "GET /v1/kv/DIR/?recurse",
      cas: "PUT /v1/txn with a cas operation",
      watch: "consul.watch over kv.get (blocking queries)",
    },
    async close() {
      await store.close();
      client.destroy();
      await stop();
    },
  };
}

function toBuffer(value: Uint8Array): Buffer {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}
