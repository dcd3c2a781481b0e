/**
 * What the comparative benchmark measures on each side: the same operations
 * through our `Store` and through the raw npm client, behind one interface.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import type { KVPair, Store } from "../../mod.ts";

/** One way of talking to a server: our store, or the raw client. */
export interface Side {
  /** Reads `key` (its value, and on our side its version). */
  get(key: string): Promise<unknown>;
  /** Writes `value` at `key`. */
  put(key: string, value: Uint8Array): Promise<unknown>;
  /** Reads every key under the directory `dir`; resolves how many. */
  list(dir: string): Promise<number>;
  /**
   * Prepares a compare-and-set loop on `key`: resolves a function doing one
   * round trip that succeeds only if the key is as the last round left it.
   */
  cas(key: string, value: Uint8Array): Promise<() => Promise<void>>;
  /**
   * Starts watching `key`: `onValue` gets every value the key takes. Resolves
   * once the watch is in place, with a function that ends it.
   */
  watch(
    key: string,
    onValue: (value: Uint8Array) => void,
  ): Promise<() => Promise<void>>;
}

/** A server under test: both sides on it, and what to say about it. */
export interface Target {
  /** `redis`, `etcd`, ... */
  readonly backend: string;
  /** Our store itself, for benchmarks of calls the raw side has no twin of. */
  readonly store: Store;
  /** Our store on the server. */
  readonly ours: Side;
  /** The raw npm client on the server, written as a good user would. */
  readonly raw: Side;
  /** Key names: ours and raw keys live apart on the same server. */
  readonly keys: { ours: string; raw: string };
  /** Server and client versions, and how each raw operation is made. */
  readonly about: Record<string, string>;
  /** Stops both clients and the server. */
  close(): Promise<void>;
}

/** Our `Store` as a {@linkcode Side}: the public API, nothing else. */
export function storeSide(store: Store): Side {
  return {
    get: (key) => store.get(key),
    put: (key, value) => store.put(key, value),
    list: async (dir) => (await store.list(dir)).length,
    async cas(key, value) {
      let pair: KVPair = await store.atomicPut(
        key,
        value,
        await store.get(key),
      );
      return async () => {
        pair = await store.atomicPut(key, value, pair);
      };
    },
    async watch(key, onValue) {
      const stream = store.watch(key);
      const reader = stream.getReader();
      // The first chunk is the current state: the watch is in place then.
      await reader.read();
      const pump = (async () => {
        while (true) {
          const { done, value } = await reader.read();
          if (done) return;
          if (value) onValue(value.value);
        }
      })().catch(() => {});
      return async () => {
        await reader.cancel();
        await pump;
      };
    },
  };
}

/** The installed version of an npm package. */
export async function packageVersion(name: string): Promise<string> {
  const text = await readFile(
    new URL(`../../node_modules/${name}/package.json`, import.meta.url),
    "utf8",
  );
  return JSON.parse(text).version;
}
