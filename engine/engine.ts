/**
 * The engine's WebAssembly module and its hand-written bindings: the module
 * is instantiated once per process, its host imports dispatch to the
 * {@linkcode Host} of each open file, keys and values are copied through
 * linear memory, and memory views are re-created after the memory grows.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { InvalidConfigurationError, StoreError } from "../core/errors.ts";
import { describe } from "../core/values.ts";
import type { Entry } from "../core/driver.ts";
import type { Host } from "./host.ts";

/** The module file, beside this one (and beside the npm bundles). */
const WASM_URL = new URL("./valkeyrie_engine.wasm", import.meta.url);

/**
 * The engine's WebAssembly module as a program hands it in (the file
 * store's `engine` option): its bytes, where to read them (a `file:`,
 * `http:` or `https:` URL), or the module compiled already.
 */
export type EngineSource = Uint8Array | ArrayBuffer | URL | WebAssembly.Module;

/** The protocols a {@linkcode EngineSource} URL may have. */
const URL_PROTOCOLS = ["file:", "http:", "https:"];

/** The exports the bindings call: a module without them is not the engine. */
const REQUIRED_EXPORTS = [
  "memory",
  "vk_result",
  "vk_input",
  "vk_error",
  "vk_error_len",
  "vk_open",
  "vk_close",
  "vk_drop",
  "vk_get",
  "vk_scan",
  "vk_snapshot",
  "vk_release",
  "vk_begin",
  "vk_revision",
  "vk_check",
  "vk_put",
  "vk_delete",
  "vk_delete_tree",
  "vk_sweep",
  "vk_next_expiry",
  "vk_commit",
  "vk_sync",
  "vk_synced",
  "vk_verify",
  "vk_stats",
] as const;

/** The imports the bindings provide (module `host`). */
const HOST_IMPORTS = new Set([
  "host_len",
  "host_read",
  "host_write",
  "host_set_len",
  "host_sync",
]);

/**
 * Checks that `value` can be an {@linkcode EngineSource}, touching nothing.
 *
 * @param value The setting as given.
 * @param setting The setting's name, for the message.
 * @returns The value, when it is a Uint8Array, an ArrayBuffer, a `URL` of a
 * known protocol or a `WebAssembly.Module`.
 * @throws {InvalidConfigurationError} When it is anything else.
 */
export function checkEngineSource(
  value: unknown,
  setting = "engine",
): EngineSource {
  if (
    value instanceof Uint8Array || value instanceof ArrayBuffer ||
    value instanceof WebAssembly.Module
  ) {
    return value;
  }
  if (value instanceof URL) {
    if (URL_PROTOCOLS.includes(value.protocol)) return value;
    throw new InvalidConfigurationError(
      `The file setting ${
        JSON.stringify(setting)
      } must be a file:, http: or https: URL, not a ${value.protocol} URL`,
    );
  }
  const hint = typeof value === "string"
    ? " (for a path or an address, pass a URL: pathToFileURL(path) or new URL(...))"
    : "";
  throw new InvalidConfigurationError(
    `The file setting ${
      JSON.stringify(setting)
    } must be the engine's WebAssembly module: a Uint8Array, an ArrayBuffer, a URL or a WebAssembly.Module, not ${
      describe(value)
    }${hint}`,
  );
}

/** Engine error codes (see `engine/src/error.rs`). */
export const ENGINE_ERRORS = {
  io: 1,
  corrupt: 2,
  foreign: 3,
  poisoned: 4,
  invalid: 5,
} as const;

/** An error of the engine, with its code. */
export class EngineError extends StoreError {
  /** Always `"EngineError"`. */
  override name: string = "EngineError";
  /** Always `"ENGINE_ERROR"`. */
  override readonly code: string = "ENGINE_ERROR";
  /** The engine's own error code (see {@linkcode ENGINE_ERRORS}). */
  readonly engineCode: number;
  /**
   * Creates the error.
   *
   * @param code The engine's code.
   * @param message What the engine said.
   * @param options The host's error in `cause`.
   */
  constructor(code: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.engineCode = code;
  }
}

interface Exports {
  memory: WebAssembly.Memory;
  vk_result(): number;
  vk_input(len: number): number;
  vk_error(): number;
  vk_error_len(): number;
  vk_open(file: number, cachePages: number): number;
  vk_close(db: number): number;
  vk_drop(db: number): number;
  vk_get(db: number, snapshot: number, klen: number, now: number): number;
  vk_scan(
    db: number,
    snapshot: number,
    plen: number,
    alen: number,
    now: number,
    maxBytes: number,
    maxCount: number,
  ): number;
  vk_snapshot(db: number): number;
  vk_release(db: number, id: number): number;
  vk_begin(db: number): number;
  vk_revision(db: number): number;
  vk_check(db: number, klen: number, now: number): number;
  vk_put(
    db: number,
    klen: number,
    vlen: number,
    revision: number,
    expires: number,
    now: number,
  ): number;
  vk_delete(db: number, klen: number, now: number): number;
  vk_delete_tree(
    db: number,
    klen: number,
    dlen: number,
    now: number,
    collect: number,
  ): number;
  vk_sweep(db: number, now: number, max: number): number;
  vk_next_expiry(db: number): number;
  vk_commit(db: number, durable: number, revision: number): number;
  vk_sync(db: number): number;
  vk_synced(db: number, ok: number): number;
  vk_verify(db: number): number;
  vk_stats(db: number): number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Small values are copied out of linear memory into slices of a shared
 * 64 KiB buffer, as Node's Buffer pool does: one ArrayBuffer per value
 * would cost more than the read itself. A value is still the caller's own
 * copy; larger values get their own buffer.
 */
const POOL_BYTES = 64 * 1024;
const POOLED_MAX = 1024;
let pool = new Uint8Array(POOL_BYTES);
let poolUsed = 0;

function copyOut(memory: Uint8Array, start: number, end: number): Uint8Array {
  const len = end - start;
  if (len > POOLED_MAX) return memory.slice(start, end);
  if (poolUsed + len > POOL_BYTES) {
    pool = new Uint8Array(POOL_BYTES);
    poolUsed = 0;
  }
  const value = pool.subarray(poolUsed, poolUsed + len);
  value.set(memory.subarray(start, end));
  // Keep slices 8-byte aligned, as typed array views may need.
  poolUsed = (poolUsed + len + 7) & ~7;
  return value;
}

/** The result of {@linkcode EngineDb.verify}: the integrity check. */
export interface IntegrityReport {
  /** Whether nothing is wrong. */
  ok: boolean;
  /** Pages in the file. */
  pages: number;
  /** Pages free for reuse. */
  freePages: number;
  /** Pages marked in use that nothing refers to (counted when nothing is damaged). */
  leakedPages: number;
  /**
   * Pages marked in use that the check could not reach because pages above
   * them are damaged (counted instead of leaked pages when there is damage).
   */
  unreachablePages: number;
  /**
   * The damaged pages found, in the order the check reached them (for a
   * damaged large value, its first page). The check goes on past each.
   */
  damagedPages: number[];
  /** Keys in the database (expired ones not yet reclaimed included). */
  keys: number;
  /** What is wrong, if anything. */
  errors: string[];
  /**
   * What opening the file found and worked around, if anything: a commit
   * slot repaired from a flipped bit, a damaged god byte, a newest commit
   * that did not verify (not durable when the process stopped) so the one
   * before it was opened. None of these makes `ok` false.
   */
  recovery: string[];
}

/** Numbers about an open database. */
export interface EngineStats {
  txn: number;
  revision: number;
  keys: number;
  pages: number;
  freePages: number;
  pendingPages: number;
  cachedPages: number;
  cachePages: number;
  cacheMisses: number;
  fileBytes: number;
  snapshots: number;
}

/** The engine module of this process. */
export class Engine {
  readonly #x: Exports;
  #u8: Uint8Array;
  #view: DataView;
  readonly #hosts = new Map<number, Host>();
  #nextFile = 1;
  /** The last error a host threw, for the engine's error message. */
  #hostError: unknown;
  /** Where the output buffer's (pointer, length) pair is. */
  readonly #result: number;
  /** The input buffer: it moves only when `vk_input` grows it. */
  #inputPtr = 0;
  #inputCap = 0;

  private constructor(module: WebAssembly.Module) {
    const hostCall = (file: number, call: (host: Host) => void): number => {
      const host = this.#hosts.get(file);
      try {
        if (!host) throw new Error(`No host file ${file}`);
        call(host);
        return 0;
      } catch (error) {
        this.#hostError = error;
        return -1;
      }
    };
    const instance = new WebAssembly.Instance(module, {
      host: {
        host_len: (file: number): number => {
          let len = -1;
          hostCall(file, (host) => (len = host.len()));
          return len;
        },
        host_read: (file: number, offset: number, ptr: number, len: number) =>
          hostCall(file, (host) => host.read(offset, this.bytes(ptr, len))),
        host_write: (
          file: number,
          offset: number,
          ptr: number,
          len: number,
        ) => hostCall(file, (host) => host.write(offset, this.bytes(ptr, len))),
        host_set_len: (file: number, len: number) =>
          hostCall(file, (host) => host.setLen(len)),
        host_sync: (file: number) => hostCall(file, (host) => host.sync()),
      },
    });
    this.#x = instance.exports as unknown as Exports;
    this.#u8 = new Uint8Array(this.#x.memory.buffer);
    this.#view = new DataView(this.#x.memory.buffer);
    this.#result = this.#x.vk_result();
  }

  /**
   * Instantiates the module, uncached (see {@linkcode loadEngine}, which
   * instantiates each module once per process).
   *
   * @param source The module, its bytes or where they are (default: beside
   * this file).
   */
  static async instantiate(source: EngineSource = WASM_URL): Promise<Engine> {
    checkEngineSource(source);
    if (source instanceof WebAssembly.Module) return Engine.of(source);
    const bytes = source instanceof URL
      ? await readUrl(source)
      : asBytes(source);
    return Engine.of(await compileBytes(bytes));
  }

  /**
   * Instantiates a compiled module once it is checked to be the engine.
   *
   * @param module The module.
   * @returns The engine.
   * @throws {StoreError} When the module is not the engine (it lacks the
   * engine's exports, or imports what the bindings do not provide).
   */
  static of(module: WebAssembly.Module): Engine {
    const exports = new Set(
      WebAssembly.Module.exports(module).map((e) => e.name),
    );
    const missing = REQUIRED_EXPORTS.filter((name) => !exports.has(name));
    const foreign = WebAssembly.Module.imports(module)
      .filter((i) => i.module !== "host" || !HOST_IMPORTS.has(i.name))
      .map((i) => `${i.module}.${i.name}`);
    if (missing.length > 0 || foreign.length > 0) {
      throw new StoreError(
        `The WebAssembly module is not valkeyrie's engine (${
          [
            missing.length > 0 ? `it lacks ${missing.join(", ")}` : "",
            foreign.length > 0 ? `it imports ${foreign.join(", ")}` : "",
          ].filter(Boolean).join("; ")
        }): hand in engine/valkeyrie_engine.wasm of this version of the library`,
      );
    }
    return new Engine(module);
  }

  /** The exports (for {@linkcode EngineDb}). */
  get exports(): Exports {
    return this.#x;
  }

  /** A view of linear memory, re-created after the memory grew. */
  bytes(ptr: number, len: number): Uint8Array {
    this.refresh();
    return this.#u8.subarray(ptr, ptr + len);
  }

  /** A DataView of linear memory, re-created after the memory grew. */
  view(): DataView {
    this.refresh();
    return this.#view;
  }

  /**
   * Re-creates the memory views if the memory grew (which detaches the old
   * buffer: its length becomes 0). Call after any call into the module.
   */
  refresh(): void {
    if (this.#u8.byteLength !== 0) return;
    this.#u8 = new Uint8Array(this.#x.memory.buffer);
    this.#view = new DataView(this.#x.memory.buffer);
  }

  /** The memory views as they are now (call {@linkcode refresh} first). */
  get u8(): Uint8Array {
    return this.#u8;
  }

  /** The DataView as it is now (call {@linkcode refresh} first). */
  get dataView(): DataView {
    return this.#view;
  }

  /** Where the output buffer's (pointer, length) pair is. */
  get resultAddress(): number {
    return this.#result;
  }

  /** Copies `key` into the input buffer; returns its length in bytes. */
  inputKey(key: string): number {
    const max = key.length * 3;
    if (max > this.#inputCap) return this.input(key)[0];
    this.refresh();
    return encodeText(
      key,
      this.#u8.subarray(this.#inputPtr, this.#inputPtr + max),
    );
  }

  /** Bytes of linear memory now in use. */
  get memoryBytes(): number {
    return this.#x.memory.buffer.byteLength;
  }

  /**
   * Opens the database stored in `host` (creating it in an empty file).
   *
   * @param host The file.
   * @param cachePages The page cache's size in 4 KiB pages.
   * @returns The open database.
   */
  open(host: Host, cachePages: number): EngineDb {
    const file = this.#nextFile++;
    this.#hosts.set(file, host);
    try {
      const db = this.check(this.#x.vk_open(file, cachePages));
      return new EngineDb(this, db, file);
    } catch (error) {
      this.#hosts.delete(file);
      throw error;
    }
  }

  /** Forgets a host file. */
  detach(file: number): void {
    this.#hosts.delete(file);
  }

  /** Throws the engine's error when `rc` is negative; returns `rc`. */
  check(rc: number): number {
    if (rc >= 0) return rc;
    const code = -rc;
    const message = decoder.decode(
      this.bytes(this.#x.vk_error(), this.#x.vk_error_len()),
    );
    const cause = code === ENGINE_ERRORS.io ? this.#hostError : undefined;
    this.#hostError = undefined;
    const detail = cause instanceof Error ? `: ${cause.message}` : "";
    throw new EngineError(
      code,
      message.charAt(0).toUpperCase() + message.slice(1) + detail,
      cause === undefined ? undefined : { cause },
    );
  }

  /** Copies a key (and value) into the input buffer; returns their lengths. */
  input(key: string, second?: Uint8Array | string): [number, number] {
    const max = key.length * 3 +
      (typeof second === "string" ? second.length * 3 : second?.length ?? 0);
    if (max > this.#inputCap) {
      this.#inputCap = Math.max(max, 2 * this.#inputCap, 4096);
      this.#inputPtr = this.#x.vk_input(this.#inputCap);
    }
    const target = this.bytes(this.#inputPtr, max);
    const klen = encodeText(key, target);
    let slen = 0;
    if (typeof second === "string") {
      slen = encodeText(second, target.subarray(klen));
    } else if (second) {
      target.set(second, klen);
      slen = second.length;
    }
    return [klen, slen];
  }

  /** The engine's output buffer, as the last call left it. */
  output(): Uint8Array {
    const view = this.view();
    return this.bytes(
      view.getUint32(this.#result, true),
      view.getUint32(this.#result + 4, true),
    );
  }
}

// ASCII keys (the common case) are copied without TextEncoder's overhead.
function encodeText(text: string, target: Uint8Array): number {
  const n = text.length;
  if (n < 64) {
    let i = 0;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) break;
      target[i] = c;
    }
    if (i === n) return n;
  }
  return encoder.encodeInto(text, target).written;
}

function decodeText(bytes: Uint8Array): string {
  const n = bytes.length;
  if (n < 64) {
    let ascii = true;
    for (let i = 0; i < n; i++) {
      if (bytes[i] >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, bytes as never);
  }
  return decoder.decode(bytes);
}

/** The bytes of an ArrayBuffer or a Uint8Array, as a Uint8Array. */
function asBytes(source: Uint8Array | ArrayBuffer): Uint8Array {
  return source instanceof Uint8Array ? source : new Uint8Array(source);
}

/** Reads the module's bytes from a `file:` or `http(s):` URL. */
async function readUrl(url: URL): Promise<Uint8Array> {
  if (url.protocol === "file:") return readFileSync(url);
  const response = await fetch(url);
  if (!response.ok) {
    await response.body?.cancel();
    throw new StoreError(
      `Fetching ${url.href} answered ${response.status} ${response.statusText}`,
    );
  }
  return new Uint8Array(await response.arrayBuffer());
}

/** WebAssembly's magic number, the first four bytes of every module. */
const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

/** Compiles `bytes`, first checking that they are WebAssembly at all. */
async function compileBytes(bytes: Uint8Array): Promise<WebAssembly.Module> {
  if (
    bytes.length < 8 || WASM_MAGIC.some((byte, i) => bytes[i] !== byte)
  ) {
    const start = Array.from(
      bytes.subarray(0, 4),
      (b) => b.toString(16).padStart(2, "0"),
    ).join(" ");
    throw new StoreError(
      `The bytes given as the engine are not a WebAssembly module (${bytes.length} bytes${
        start ? `, starting ${start}` : ""
      }; a module starts 00 61 73 6d): hand in the bytes of engine/valkeyrie_engine.wasm`,
    );
  }
  // compile() copies the bytes at once: changing them later changes nothing.
  return await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
}

/**
 * The engines of this process, each instantiated once: by URL, and by the
 * SHA-256 of the module's bytes (so one module read twice, or from a URL and
 * as bytes, is one engine, and two different modules are two).
 */
const engines = new Map<string, Promise<Engine>>();
/** Engines of modules handed in compiled, by the module. */
const compiled = new WeakMap<WebAssembly.Module, Promise<Engine>>();
/** The first engine this process loaded: what a caller naming none gets. */
let first: Promise<Engine> | undefined;

/** Caches `load()` under `key` until it fails; its errors are StoreErrors. */
function cached<K>(
  cache: {
    get(key: K): Promise<Engine> | undefined;
    set(key: K, value: Promise<Engine>): unknown;
    delete(key: K): unknown;
  },
  key: K,
  load: () => Promise<Engine>,
  hint = "",
): Promise<Engine> {
  let engine = cache.get(key);
  if (engine) return engine;
  engine = load().catch((error) => {
    cache.delete(key);
    if (error instanceof StoreError) throw error;
    throw new StoreError(
      `Could not load the engine's WebAssembly module: ${
        error instanceof Error ? error.message : String(error)
      }${hint}`,
      { cause: error },
    );
  });
  cache.set(key, engine);
  return engine;
}

function loadBytes(bytes: Uint8Array): Promise<Engine> {
  const digest = createHash("sha256").update(bytes).digest("hex");
  return cached(
    engines,
    `sha256:${digest}`,
    async () => Engine.of(await compileBytes(bytes)),
  );
}

function loadSource(source: EngineSource): Promise<Engine> {
  if (source instanceof WebAssembly.Module) {
    return cached(
      compiled,
      source,
      () => Promise.resolve().then(() => Engine.of(source)),
    );
  }
  if (source instanceof URL) {
    const hint = source === WASM_URL
      ? " (when the library is bundled, its .wasm is not beside the bundle: hand the module in with the file store's `engine` option)"
      : "";
    return cached(
      engines,
      `url:${source.href}`,
      async () => await loadBytes(await readUrl(source)),
      hint,
    );
  }
  return loadBytes(asBytes(source));
}

/**
 * The engine of `source` in this process, instantiated on first use and kept:
 * each module once (keyed by URL, by the bytes' SHA-256, or by the compiled
 * module), so handles sharing a module share one engine and two different
 * modules never get each other's.
 *
 * @param source The module, its bytes or where they are. Without it: the
 * first engine this process loaded, else the module beside this file.
 * @returns The engine.
 * @throws {InvalidConfigurationError} When `source` is of no known kind.
 * @throws {StoreError} (rejected) When the module cannot be read, is not
 * WebAssembly, or is not the engine.
 */
export function loadEngine(source?: EngineSource): Promise<Engine> {
  if (source === undefined) {
    const pending = first;
    return pending
      ? pending.catch(() => loadEngine(WASM_URL))
      : loadEngine(WASM_URL);
  }
  const engine = loadSource(checkEngineSource(source));
  if (!first) {
    first = engine;
    engine.catch(() => {
      if (first === engine) first = undefined;
    });
  }
  return engine;
}

/** A page of {@linkcode EngineDb.scan}. */
export interface ScanPage {
  /** The entries, in key order. */
  entries: Entry[];
  /** Whether more entries follow the last one. */
  more: boolean;
}

/**
 * One open database of the engine: the raw calls, with keys as strings and
 * values as bytes. Not safe to use after `close()` or `drop()`.
 */
export class EngineDb {
  readonly #engine: Engine;
  readonly #x: Exports;
  readonly #db: number;
  readonly #file: number;

  /**
   * Wraps an open database handle.
   *
   * @param engine The engine.
   * @param db The engine's handle.
   * @param file The host file's number.
   */
  constructor(engine: Engine, db: number, file: number) {
    this.#engine = engine;
    this.#x = engine.exports;
    this.#db = db;
    this.#file = file;
  }

  /** The entry at `key` in a snapshot (0: the visible state), or `null`. */
  get(key: string, now: number, snapshot = 0): Entry | null {
    const engine = this.#engine;
    const klen = engine.inputKey(key);
    const found = this.#x.vk_get(this.#db, snapshot, klen, now);
    if (found <= 0) {
      engine.check(found);
      return null;
    }
    // The hot path reads memory directly: one refresh, no more calls.
    engine.refresh();
    const view = engine.dataView;
    const result = engine.resultAddress;
    const at = view.getUint32(result, true);
    const end = at + view.getUint32(result + 4, true);
    const expires = view.getFloat64(at + 8, true);
    const entry: Entry = {
      key,
      value: copyOut(engine.u8, at + 16, end),
      lastIndex: view.getBigUint64(at, true),
    };
    if (expires !== 0) entry.expiresAt = expires;
    return entry;
  }

  /**
   * Live entries whose key starts with `prefix`, after `after` if given,
   * until about `maxBytes` of output or `maxCount` entries (0: no limit).
   */
  scan(
    prefix: string,
    after: string | undefined,
    now: number,
    maxBytes: number,
    snapshot = 0,
    maxCount = 0,
  ): ScanPage {
    const [plen, alen] = this.#engine.input(prefix, after ?? "");
    this.#engine.check(
      this.#x.vk_scan(
        this.#db,
        snapshot,
        plen,
        alen,
        now,
        maxBytes,
        maxCount,
      ),
    );
    const out = this.#engine.output();
    const view = this.#engine.view();
    const base = out.byteOffset;
    const more = view.getUint32(base, true) !== 0;
    const count = view.getUint32(base + 4, true);
    const entries: Entry[] = new Array(count);
    let at = 8;
    for (let i = 0; i < count; i++) {
      const klen = view.getUint32(base + at, true);
      const vlen = view.getUint32(base + at + 4, true);
      const lastIndex = view.getBigUint64(base + at + 8, true);
      const expires = view.getFloat64(base + at + 16, true);
      at += 24;
      const key = decodeText(out.subarray(at, at + klen));
      at += klen;
      const entry: Entry = {
        key,
        value: copyOut(out, at, at + vlen),
        lastIndex,
      };
      if (expires !== 0) entry.expiresAt = expires;
      entries[i] = entry;
      at += vlen;
    }
    return { entries, more };
  }

  /** Pins the visible state for a reader; returns its id. */
  snapshot(): number {
    return this.#engine.check(this.#x.vk_snapshot(this.#db));
  }

  /** Lets go of a snapshot. */
  release(id: number): void {
    this.#engine.check(this.#x.vk_release(this.#db, id));
  }

  /** Starts the write transaction. */
  begin(): void {
    this.#engine.check(this.#x.vk_begin(this.#db));
  }

  /** The revision of the transaction's last operation. */
  revision(): number {
    return this.#engine.check(this.#x.vk_revision(this.#db));
  }

  /** The live revision of `key` in the transaction, or `null`. */
  revisionOf(key: string, now: number): bigint | null {
    const [klen] = this.#engine.input(key);
    const rev = this.#engine.check(this.#x.vk_check(this.#db, klen, now));
    return rev === 0 ? null : BigInt(rev);
  }

  /**
   * Writes `value` at `key` with `revision` (numbered by the caller, above
   * {@linkcode revision}) and an expiry (0: none). Returns whether a live
   * key was replaced.
   */
  put(
    key: string,
    value: Uint8Array,
    revision: number,
    expires: number,
    now: number,
  ): boolean {
    const [klen, vlen] = this.#engine.input(key, value);
    const rc = this.#x.vk_put(this.#db, klen, vlen, revision, expires, now);
    return (rc < 0 ? this.#engine.check(rc) : rc) === 1;
  }

  /** Deletes `key`; whether a live key was deleted. */
  delete(key: string, now: number): boolean {
    const [klen] = this.#engine.input(key);
    return this.#engine.check(this.#x.vk_delete(this.#db, klen, now)) === 1;
  }

  /**
   * Deletes `key` (unless empty) and every key starting with `dir`; returns
   * the live keys deleted when `collect` is set, else `[]`.
   */
  deleteTree(
    key: string,
    dir: string,
    now: number,
    collect: boolean,
  ): string[] {
    const [klen, dlen] = this.#engine.input(key, dir);
    const n = this.#engine.check(
      this.#x.vk_delete_tree(this.#db, klen, dlen, now, collect ? 1 : 0),
    );
    return collect ? this.#keys(n) : [];
  }

  /** Deletes up to `max` expired keys; returns them. */
  sweep(now: number, max: number): string[] {
    return this.#keys(
      this.#engine.check(this.#x.vk_sweep(this.#db, now, max)),
    );
  }

  #keys(n: number): string[] {
    const out = this.#engine.output();
    const view = this.#engine.view();
    const keys: string[] = new Array(n);
    let at = 0;
    for (let i = 0; i < n; i++) {
      const len = view.getUint32(out.byteOffset + at, true);
      keys[i] = decodeText(out.subarray(at + 4, at + 4 + len));
      at += 4 + len;
    }
    return keys;
  }

  /** The earliest expiry of any key (ms since the epoch), or 0. */
  nextExpiry(): number {
    return this.#engine.check(this.#x.vk_next_expiry(this.#db));
  }

  /**
   * Commits the transaction. Returns whether it must be synced (then call
   * {@linkcode synced}); until then readers see the state before it.
   */
  commit(durable: boolean, revision = 0): boolean {
    return this.#engine.check(
      this.#x.vk_commit(this.#db, durable ? 1 : 0, revision),
    ) === 1;
  }

  /** Syncs through the host, blocking. */
  sync(): void {
    this.#engine.check(this.#x.vk_sync(this.#db));
  }

  /** Reports the outcome of the sync of the last commit. */
  synced(ok: boolean): void {
    this.#engine.check(this.#x.vk_synced(this.#db, ok ? 1 : 0));
  }

  /** Runs the integrity check over every page of the last commit. */
  verify(): IntegrityReport {
    this.#engine.check(this.#x.vk_verify(this.#db));
    return JSON.parse(decoder.decode(this.#engine.output()));
  }

  /** Numbers about the database. */
  stats(): EngineStats {
    this.#engine.check(this.#x.vk_stats(this.#db));
    return JSON.parse(decoder.decode(this.#engine.output()));
  }

  /** Closes cleanly: a final durable commit, and the file shrinks. */
  close(): void {
    try {
      this.#engine.check(this.#x.vk_close(this.#db));
    } finally {
      this.#engine.detach(this.#file);
    }
  }

  /** Forgets the database without writing anything, as a crash would. */
  drop(): void {
    this.#x.vk_drop(this.#db);
    this.#engine.detach(this.#file);
  }
}
