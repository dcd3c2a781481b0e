/**
 * The `memory:` backend: the whole store contract in this process, with no
 * server. Handles opened with the same name share one database
 * (`memory:cache`); `memory:` alone opens a private one. The data lives until
 * the last handle of its name closes.
 *
 * It is the reference backend: the conformance kit is proven on it first.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "@valkeyrie/valkeyrie/memory";
 *
 * await using store = new MemoryStore();
 * await store.put("greeting", "hello");
 * console.log(new TextDecoder().decode((await store.get("greeting"))!.value));
 * ```
 *
 * @module
 */

import { BaseStore } from "../../core/store.ts";
import { ConfigReader } from "../../core/config.ts";
import type { StoreOptions } from "../../core/types.ts";
import { MEMORY_SETTINGS } from "./settings.ts";
import { MemoryDriver } from "./driver.ts";

/** Options of {@linkcode MemoryStore}. */
export interface MemoryStoreOptions extends Pick<StoreOptions, "prefix"> {
  // Written by scripts/settings.ts from the settings schema: edit the schema.
  /**
   * The database's name: handles in this process with the same name share
   * data. Empty opens a private database (the URL's `memory:NAME`).
   *
   * Default: `""`: a private database.
   */
  name?: string;
}

/**
 * A store in this process's memory.
 *
 * @example Two handles on one database
 * ```ts
 * import { MemoryStore } from "@valkeyrie/valkeyrie/memory";
 *
 * await using a = new MemoryStore({ name: "shared" });
 * await using b = new MemoryStore({ name: "shared" });
 * await a.put("k", "v");
 * console.log(await b.exists("k")); // true
 * ```
 */
export class MemoryStore extends BaseStore {
  /**
   * Opens a handle.
   *
   * @param options The database's name and a key prefix.
   */
  constructor(options: MemoryStoreOptions = {}) {
    const config = new ConfigReader("memory", { ...options }, MEMORY_SETTINGS);
    super(new MemoryDriver(config.get("name") ?? ""), options);
  }
}
