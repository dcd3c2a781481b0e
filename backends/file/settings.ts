/**
 * The `file:` backend's own settings: the schema its options interface, its
 * checks, its defaults and its docs table come from.
 *
 * @module
 */

import type { SettingsSchema } from "../../core/config.ts";

/** The engine's page size: the unit of `cacheSize`. */
export const PAGE_BYTES = 4096;

/**
 * The largest page cache: the engine's WebAssembly memory is at most 4 GiB
 * (32-bit addresses) and uses up to 1.25 times the cache, so 2 GiB leaves
 * room for transactions. A larger number used to wrap into a tiny cache.
 */
export const MAX_CACHE_BYTES = 2 * 1024 * 1024 * 1024;

/** The settings of a file store besides the common ones. */
export const FILE_SETTINGS = {
  path: {
    kind: "string",
    required: true,
    doc:
      "The database file (a URL's `file:PATH`); created when missing, in a directory that exists.",
  },
  cacheSize: {
    kind: "number",
    min: PAGE_BYTES,
    max: MAX_CACHE_BYTES,
    defaultDoc: "256 MiB",
    doc:
      "The page cache's size in bytes, filled only as pages are read. The engine's memory stays within about 1.25 times this, whatever the file's size.",
  },
  durable: {
    kind: "boolean",
    default: true,
    doc:
      "Sync every commit before it resolves. With `false`, commits resolve at once and are synced within a second: a crash may lose that second, and never damages the file.",
  },
  isolated: {
    kind: "boolean",
    default: false,
    doc:
      "Join the file as another process would, through its owner's socket, instead of sharing this process's open database with its other handles. The first process (or isolated handle) to open a file owns it. For tests of what several processes see.",
  },
  engine: {
    kind: "value",
    type: "EngineSource",
    expected: "a Uint8Array, an ArrayBuffer, a URL or a WebAssembly.Module",
    // connect() checks it first, with a message that names each kind.
    check: () => true,
    defaultDoc: "the `.wasm` beside the library",
    doc:
      "The engine's WebAssembly module, for a program bundled without the library's `valkeyrie_engine.wasm` beside it: its bytes (a `Uint8Array` or an `ArrayBuffer`), a `file:`, `http:` or `https:` URL to read them from, or the module compiled (`WebAssembly.Module`). Each module is compiled once per process; the handle that opens the file for this process decides which engine runs it.",
  },
} as const satisfies SettingsSchema;
