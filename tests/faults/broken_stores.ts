/**
 * Deliberately broken stores, to show the linearizability checker catches
 * real kinds of bugs: each wraps a correct store and breaks one promise.
 *
 * @module
 */

import type { KVPair, Store } from "../../core/types.ts";

/** `store` with some methods replaced; everything else is the store's. */
function override(store: Store, methods: Partial<Store>): Store {
  return new Proxy(store, {
    get(target, property) {
      if (Object.hasOwn(methods, property)) {
        return methods[property as keyof Store];
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * A stale-read cache: a `get` that reads a key keeps the pair and serves it
 * to the next `servings` gets of that key, whatever was written meanwhile.
 */
export function staleReads(store: Store, servings = 4): Store {
  const cache = new Map<string, { pair: KVPair | null; left: number }>();
  return override(store, {
    async get(key, options) {
      const cached = cache.get(key);
      if (cached && cached.left > 0) {
        cached.left--;
        return cached.pair;
      }
      const pair = await store.get(key, options);
      cache.set(key, { pair, left: servings });
      return pair;
    },
  });
}

/**
 * Drops every `every`-th `put` while reporting success, with a made-up
 * `lastIndex` that no real write has.
 */
export function droppedWrites(store: Store, every = 10): Store {
  let puts = 0;
  return override(store, {
    put(key, value, options) {
      puts++;
      if (puts % every === 0) {
        return Promise.resolve(1_000_000_000n + BigInt(puts));
      }
      return store.put(key, value, options);
    },
  });
}
