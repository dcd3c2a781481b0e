/**
 * The `file:` backend: the embedded engine, a copy-on-write B+tree written
 * in Rust and compiled to WebAssembly, storing the whole store contract in
 * one file. The same `.wasm` runs in Deno, Bun and Node, with no native
 * addon, and writes the same bytes everywhere.
 *
 * Every commit is durable (one `fdatasync`) before its promise resolves;
 * writes issued in the same tick share one commit. One process at a time
 * opens a file; handles of the same process share it.
 *
 * @example
 * ```ts
 * import { EmbeddedStore } from "@valkeyrie/valkeyrie/file";
 *
 * const dir = await Deno.makeTempDir();
 * await using store = await EmbeddedStore.connect({ path: `${dir}/app.db` });
 * await store.put("greeting", "hello");
 * console.log(new TextDecoder().decode((await store.get("greeting"))!.value));
 * ```
 *
 * @module
 */

import { BaseStore } from "../../core/store.ts";
import { ConfigReader } from "../../core/config.ts";
import type { StoreOptions } from "../../core/types.ts";
import { FILE_SETTINGS, PAGE_BYTES } from "./settings.ts";
import { InvalidConfigurationError } from "../../core/errors.ts";
import { DEFAULT_CACHE_PAGES } from "../../engine/database.ts";
import {
  checkEngineSource,
  type EngineSource,
  type IntegrityReport,
  loadEngine,
} from "../../engine/engine.ts";
import { FileDriver } from "./driver.ts";
import { openShared } from "./shared.ts";

export type { EngineSource, IntegrityReport };

/** Options of {@linkcode EmbeddedStore}. */
export interface EmbeddedStoreOptions
  extends Pick<StoreOptions, "prefix" | "signal"> {
  // Written by scripts/settings.ts from the settings schema: edit the schema.
  /**
   * The database file (a URL's `file:PATH`); created when missing, in a
   * directory that exists.
   *
   * Required.
   */
  path: string;
  /**
   * The page cache's size in bytes, filled only as pages are read. The
   * engine's memory stays within about 1.25 times this, whatever the file's
   * size.
   *
   * A number, 4,096–2,147,483,648. Default: 256 MiB.
   */
  cacheSize?: number;
  /**
   * Sync every commit before it resolves. With `false`, commits resolve at
   * once and are synced within a second: a crash may lose that second, and
   * never damages the file.
   *
   * Default: `true`.
   */
  durable?: boolean;
  /**
   * Join the file as another process would, through its owner's socket,
   * instead of sharing this process's open database with its other handles.
   * The first process (or isolated handle) to open a file owns it. For tests
   * of what several processes see.
   *
   * Default: `false`.
   */
  isolated?: boolean;
  /**
   * The engine's WebAssembly module, for a program bundled without the
   * library's `valkeyrie_engine.wasm` beside it: its bytes (a `Uint8Array`
   * or an `ArrayBuffer`), a `file:`, `http:` or `https:` URL to read them
   * from, or the module compiled (`WebAssembly.Module`). Each module is
   * compiled once per process; the handle that opens the file for this
   * process decides which engine runs it.
   *
   * Default: the `.wasm` beside the library.
   */
  engine?: EngineSource;
}

/**
 * A store in a file, through the embedded engine.
 *
 * @example Two handles share one file
 * ```ts
 * import { EmbeddedStore } from "@valkeyrie/valkeyrie/file";
 *
 * const path = `${await Deno.makeTempDir()}/shared.db`;
 * await using a = await EmbeddedStore.connect({ path });
 * await using b = await EmbeddedStore.connect({ path });
 * await a.put("k", "v");
 * console.log(await b.exists("k")); // true
 * ```
 */
export class EmbeddedStore extends BaseStore {
  readonly #driver: FileDriver;

  private constructor(driver: FileDriver, prefix: string | undefined) {
    super(driver, { prefix });
    this.#driver = driver;
  }

  /**
   * Opens (or creates) the database file at `options.path`.
   *
   * By default the engine is the `.wasm` beside the library, unless this
   * process already loaded one (then that one is used); `options.engine`
   * hands in another, for a bundled program.
   *
   * @param options The file and its settings.
   * @returns The store.
   *
   * @example The engine embedded in the bundle by esbuild's `--loader:.wasm=binary`
   * ```ts ignore
   * import { EmbeddedStore } from "@valkeyrie/valkeyrie/file";
   * import engine from "./node_modules/@valkeyrie/valkeyrie/dist/valkeyrie_engine.wasm";
   *
   * await using store = await EmbeddedStore.connect({ path: "app.db", engine });
   * ```
   */
  static async connect(options: EmbeddedStoreOptions): Promise<EmbeddedStore> {
    // Checked first: its own message names the kinds it may be.
    const source = options?.engine === undefined
      ? undefined
      : checkEngineSource(options.engine);
    const config = new ConfigReader("file", { ...options }, FILE_SETTINGS);
    const path = config.get("path");
    if (!path) {
      throw new InvalidConfigurationError(
        "The file backend needs a path (file:./data.db)",
      );
    }
    const cacheSize = config.get("cacheSize");
    config.signal?.throwIfAborted();
    // A module handed in is loaded before the file is touched, whether this
    // process will own the file or reach its owner: bytes that are not the
    // engine fail here, not when this process takes the file over.
    const engine = source === undefined ? undefined : await loadEngine(source);
    config.signal?.throwIfAborted();
    const shared = await openShared(path, {
      cachePages: cacheSize === undefined
        ? DEFAULT_CACHE_PAGES
        : Math.floor(cacheSize / PAGE_BYTES),
      durable: config.get("durable"),
      engine,
    }, config.get("isolated"));
    const driver = new FileDriver(shared);
    try {
      return new EmbeddedStore(driver, config.prefix);
    } catch (error) {
      await driver.close();
      throw error;
    }
  }

  /**
   * Runs the integrity check: reads every page of the file, verifies its
   * checksum and the tree's order, and finds pages leaked from the free
   * space. For tests and operators; it reads the whole file.
   *
   * @returns What it found; `ok` is `false` when anything is wrong.
   */
  verify(): Promise<IntegrityReport> {
    return this.#driver.verify();
  }
}
