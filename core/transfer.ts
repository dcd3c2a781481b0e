/**
 * Moving data: `dump` a tree to portable NDJSON, `restore` it into any
 * store, `copy` between two stores directly, and with `follow` keep the copy
 * in step with live changes until stopped (a cut-over with no downtime).
 *
 * The dump format is one JSON object per line:
 *
 * ```text
 * {"key":"config/greeting","value":"aGk="}
 * {"key":"sessions/ada","value":"eA==","ttl":59532}
 * ```
 *
 * `key` is the key relative to the store's prefix, `value` the bytes in
 * standard base64, `ttl` (only for keys with one) the milliseconds that were
 * left when the key was read. Keys come in key order. Memory stays bounded
 * by one batch however big the tree: `dump` and `copy` read with `scan`,
 * `restore` and `copy` write with `putMany`.
 *
 * @module
 */

import { InvalidArgumentError } from "./errors.ts";
import { expiresAt } from "./expiry.ts";
import type { KVPair, PutEntry, SignalOptions, Store } from "./types.ts";

/** Keys per batch when `batchSize` is not given. */
const DEFAULT_BATCH = 256;

/** Options of {@linkcode dump}, {@linkcode restore} and {@linkcode copy}. */
export interface TransferOptions extends SignalOptions {
  /** Keys read or written per round trip (default 256). */
  batchSize?: number;
  /** Called after every batch with the number of keys done so far. */
  onProgress?: (keys: number) => void;
}

/** Options of {@linkcode copy}. */
export interface CopyOptions extends TransferOptions {
  /** Copy only the tree under this prefix (default: everything). */
  prefix?: string;
  /**
   * Keep copying live changes (puts, deletes, expiries) after the first
   * pass, until `signal` aborts; `copy` then resolves only when stopped.
   */
  follow?: boolean;
  /** With `follow`: called each time the target has caught up. */
  onSynced?: (keys: number) => void;
}

/** One line of a dump. */
export interface DumpRecord {
  /** The key, relative to the store's prefix. */
  key: string;
  /** The value, standard base64. */
  value: string;
  /** Milliseconds left to live when read, for keys with a TTL. */
  ttl?: number;
}

function batchOf(options: TransferOptions | undefined): number {
  const size = options?.batchSize ?? DEFAULT_BATCH;
  if (!Number.isSafeInteger(size) || size < 1 || size > 10_000) {
    throw new InvalidArgumentError(
      `batchSize must be a whole number from 1 to 10000, not ${size}`,
    );
  }
  return size;
}

/** What a pair becomes when written elsewhere; `undefined` once expired. */
function entryOf(pair: KVPair, now: number): PutEntry | undefined {
  const expiry = expiresAt(pair);
  if (expiry === undefined) return { key: pair.key, value: pair.value };
  const ttl = Math.ceil(expiry - now);
  return ttl > 0 ? { key: pair.key, value: pair.value, ttl } : undefined;
}

/**
 * Encodes bytes as standard base64.
 *
 * @param bytes The bytes.
 * @returns The base64 text.
 */
function toBase64(bytes: Uint8Array): string {
  let binary = "";
  // In slices: one call per byte is slow, one for 16 MiB overflows the stack.
  for (let at = 0; at < bytes.length; at += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(at, at + 0x8000));
  }
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * Reads the tree under `prefix` (everything by default) as dump lines, each
 * ending in `\n`, in key order, one `scan` page at a time.
 *
 * @param store The store to read.
 * @param prefix The tree to dump.
 * @param options Batch size, progress, signal.
 * @returns The lines, as a stream (pipe it through a `TextEncoderStream` to
 * write bytes).
 *
 * @example
 * ```ts
 * import { dump, openStore } from "@valkeyrie/valkeyrie";
 *
 * await using store = await openStore("memory:dump-example");
 * await store.put("config/greeting", "hi");
 * for await (const line of dump(store, "config")) console.log(line.trim());
 * // {"key":"config/greeting","value":"aGk="}
 * ```
 */
export function dump(
  store: Store,
  prefix = "",
  options?: TransferOptions,
): ReadableStream<string> {
  const batchSize = batchOf(options);
  const pairs = store.scan(prefix, { batchSize, signal: options?.signal });
  let done = 0;
  return new ReadableStream<string>({
    async pull(controller) {
      let lines = "";
      let count = 0;
      const now = Date.now();
      while (count < batchSize) {
        const next = await pairs.next();
        if (next.done) break;
        const entry = entryOf(next.value, now);
        if (entry === undefined) continue;
        const record: DumpRecord = {
          key: entry.key,
          value: toBase64(next.value.value),
        };
        if (entry.ttl !== undefined) record.ttl = entry.ttl;
        lines += JSON.stringify(record) + "\n";
        count++;
      }
      if (count > 0) {
        controller.enqueue(lines);
        done += count;
        options?.onProgress?.(done);
      } else controller.close();
    },
    async cancel() {
      await pairs.return?.();
    },
  }, { highWaterMark: 0 });
}

/** Turns a stream of text or bytes into lines. */
async function* linesOf(
  input: AsyncIterable<string | Uint8Array>,
): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let rest = "";
  for await (const chunk of input) {
    rest += typeof chunk === "string"
      ? chunk
      : decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = rest.indexOf("\n")) >= 0) {
      yield rest.slice(0, end);
      rest = rest.slice(end + 1);
    }
  }
  rest += decoder.decode();
  if (rest.length > 0) yield rest;
}

function recordOf(line: string, number: number): PutEntry {
  const bad = (why: string) =>
    new InvalidArgumentError(`dump line ${number} ${why}`);
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    throw bad("is not JSON");
  }
  if (typeof record !== "object" || record === null) {
    throw bad("is not an object");
  }
  const { key, value, ttl } = record as Record<string, unknown>;
  if (typeof key !== "string") throw bad("has no string key");
  if (typeof value !== "string") throw bad("has no base64 value");
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(value);
  } catch {
    throw bad("has a value that is not base64");
  }
  if (ttl === undefined) return { key, value: bytes };
  if (!Number.isSafeInteger(ttl) || (ttl as number) < 1) {
    throw bad(`has a ttl that is not a positive whole number: ${ttl}`);
  }
  return { key, value: bytes, ttl: ttl as number };
}

/**
 * Writes the keys of a dump into `store`, a `putMany` per batch. Each batch
 * is checked whole (JSON, base64, keys, sizes) before it is written; a bad
 * line rejects with an `InvalidArgumentError` that names it, after the
 * batches before it were written. Keys with a `ttl` get that TTL again,
 * counted from the restore. Blank lines are skipped.
 *
 * @param store The store to write.
 * @param input The dump: a stream or iterable of text or UTF-8 bytes.
 * @param options Batch size, progress, signal.
 * @returns How many keys were written.
 *
 * @example
 * ```ts
 * import { openStore, restore } from "@valkeyrie/valkeyrie";
 *
 * await using store = await openStore("memory:restore-example");
 * await restore(store, ['{"key":"config/greeting","value":"aGk="}\n']);
 * console.log(new TextDecoder().decode((await store.get("config/greeting"))!.value));
 * // hi
 * ```
 */
export async function restore(
  store: Store,
  input: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>,
  options?: TransferOptions,
): Promise<number> {
  const batchSize = batchOf(options);
  const signal = options?.signal;
  let batch: PutEntry[] = [];
  let done = 0;
  let number = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    await store.putMany(batch, { signal });
    done += batch.length;
    batch = [];
    options?.onProgress?.(done);
  };
  const source = Symbol.asyncIterator in input
    ? input as AsyncIterable<string | Uint8Array>
    : (async function* () {
      yield* input as Iterable<string | Uint8Array>;
    })();
  for await (const line of linesOf(source)) {
    number++;
    signal?.throwIfAborted();
    if (line.trim() === "") continue;
    batch.push(recordOf(line, number));
    if (batch.length === batchSize) await flush();
  }
  await flush();
  return done;
}

/**
 * Copies the tree under `options.prefix` (everything by default) from one
 * store to another, keys and TTLs, a `scan` page and a `putMany` at a time;
 * keys already in the target are overwritten, others left alone.
 *
 * With `follow`, it copies through `watchEvents` instead: the whole tree,
 * then every put, delete and expiry as it happens, until `signal` aborts
 * (then it resolves). Should the source's feed start over (`reset`), keys
 * that vanished meanwhile are deleted from the target too. Following keeps
 * each key's version in memory (not its value) for the watch.
 *
 * @param from The source.
 * @param to The target.
 * @param options What to copy and how.
 * @returns How many keys were written.
 *
 * @example
 * ```ts
 * import { copy, openStore } from "@valkeyrie/valkeyrie";
 *
 * await using from = await openStore("memory:copy-from");
 * await using to = await openStore("memory:copy-to");
 * await from.put("config/greeting", "hi");
 * console.log(await copy(from, to)); // 1
 * ```
 */
export async function copy(
  from: Store,
  to: Store,
  options?: CopyOptions,
): Promise<number> {
  const batchSize = batchOf(options);
  const prefix = options?.prefix ?? "";
  const signal = options?.signal;
  if (options?.follow) {
    return await follow(from, to, prefix, batchSize, options);
  }
  let done = 0;
  let batch: PutEntry[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await to.putMany(batch, { signal });
    done += batch.length;
    batch = [];
    options?.onProgress?.(done);
  };
  for await (const pair of from.scan(prefix, { batchSize, signal })) {
    const entry = entryOf(pair, Date.now());
    if (entry === undefined) continue;
    batch.push(entry);
    if (batch.length === batchSize) await flush();
  }
  await flush();
  return done;
}

async function follow(
  from: Store,
  to: Store,
  prefix: string,
  batchSize: number,
  options: CopyOptions,
): Promise<number> {
  const signal = options.signal;
  const events = from.watchEvents(prefix, { signal }).getReader();
  let done = 0;
  let batch: PutEntry[] = [];
  // Between a reset and the next synced: the keys the source still has.
  let present: Set<string> | undefined;
  let synced = false;
  const flush = async () => {
    if (batch.length === 0) return;
    await to.putMany(batch, { signal });
    done += batch.length;
    batch = [];
    options.onProgress?.(done);
  };
  try {
    while (true) {
      let next;
      try {
        next = await events.read();
      } catch (error) {
        if (signal?.aborted) break;
        throw error;
      }
      if (next.done) break;
      const event = next.value;
      if (event.type === "put") {
        const entry = entryOf(event.pair, Date.now());
        present?.add(event.pair.key);
        if (entry === undefined) continue;
        batch.push(entry);
        // Live changes are written at once; the first pass in batches.
        if (synced || batch.length === batchSize) await flush();
      } else if (event.type === "delete") {
        await flush();
        await to.delete(event.key, { signal });
      } else if (event.type === "reset") {
        await flush();
        present = new Set();
      } else {
        await flush();
        if (present !== undefined) {
          const gone: string[] = [];
          for await (
            const pair of to.scan(prefix, { keysOnly: true, signal })
          ) {
            if (!present.has(pair.key)) gone.push(pair.key);
          }
          await to.deleteMany(gone, { signal });
          present = undefined;
        }
        synced = true;
        options.onSynced?.(done);
      }
    }
  } catch (error) {
    if (!signal?.aborted) throw error;
  } finally {
    await events.cancel().catch(() => {});
  }
  return done;
}
