/**
 * The Redis driver: reads, writes, trees and atomic commits over one command
 * connection; watches and locks over the store's notifications.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type {
  AtomicStep,
  CommitOutcome,
  Driver,
  DriverLockOptions,
  DriverReadOptions,
  DriverSignalOptions,
  DriverWriteOptions,
  Entry,
  KeySink,
  LockLease,
  TreeSink,
} from "../../core/driver.ts";
import type { StoreLimits } from "../../core/types.ts";
import type { Endpoint } from "./connection.ts";
import { digest, readEntries, toBuffer, withCompanions } from "./entries.ts";
import { explain } from "./errors.ts";
import { acquireLock } from "./lock.ts";
import {
  COUNTER_KEY,
  decodeName,
  isStoreKey,
  startsWithPattern,
  VERSION_PREFIX,
  versionKey,
} from "./names.ts";
import { Notifications } from "./notifications.ts";
import { COMMIT, PRUNE, type ScriptArg } from "./scripts.ts";
import { watchKey, type WatchSource, watchTree } from "./watch.ts";

/**
 * What a Redis store accepts.
 */
export const REDIS_LIMITS: StoreLimits = Object.freeze({
  // Redis takes keys up to 512 MiB, but a key also travels in every
  // notification channel name and SCAN reply, and its bookkeeping names are
  // a few bytes longer: 64 KiB is far above any path and cheap to move.
  maxKeyBytes: 64 * 1024,
  // Redis takes strings up to 512 MiB (proto-max-bulk-len), but reads and
  // writes pass the value through Lua, which costs the server about 3 ms per
  // MiB while it serves no one else (measured on Redis 7.0): a 16 MiB value
  // holds it for about 50 ms.
  maxValueBytes: 16 * 1024 * 1024,
  // Reads see a TTL to the millisecond (Redis checks it on every access) and
  // watches and lock waiters learn the expiry time from PTTL, so only
  // network and timer delays remain.
  ttlGranularityMs: 100,
  // A commit is one script that blocks the server while it runs; 1024
  // writes of small values take about 3 ms of server time.
  maxAtomicOperations: 1024,
});

/**
 * Keys asked for per SCAN step: Redis's default is 10, which makes a tree
 * of thousands of keys take hundreds of round trips.
 */
const SCAN_COUNT = 1_000;

/** Keys read per round trip by `list`. */
const READ_BATCH = 256;

/**
 * Keys deleted per `UNLINK` by `deleteTree`: one command for any tree of
 * common size, and a bounded one for huge trees.
 */
const DELETE_BATCH = 10_000;

/** The driver of one Redis store. */
export class RedisDriver implements Driver, WatchSource {
  readonly backend = "redis";
  readonly limits: StoreLimits = REDIS_LIMITS;
  readonly notifications: Notifications;
  readonly maxKeyBytes: number = REDIS_LIMITS.maxKeyBytes;
  readonly #client: Redis;
  readonly #what: string;

  /**
   * @param client The command connection, ready.
   * @param endpoint Where it connects (the subscriber connects there too).
   */
  constructor(client: Redis, endpoint: Endpoint) {
    this.#client = client;
    this.#what = endpoint.what;
    this.notifications = new Notifications(endpoint, client);
  }

  get(key: string, _options: DriverReadOptions): Promise<Entry | null> {
    return this.#run("get", async () => (await this.read([key]))[0]);
  }

  put(
    key: string,
    value: Uint8Array,
    options: DriverWriteOptions,
  ): Promise<void> {
    return this.#run("put", async () => {
      await this.#commit([{ type: "put", key, value, ttl: options.ttl }]);
    });
  }

  delete(key: string, _options: DriverSignalOptions): Promise<void> {
    return this.#run("delete", async () => {
      await this.#client.unlink(key, versionKey(key));
    });
  }

  read(keys: readonly string[]): Promise<(Entry | null)[]> {
    return readEntries(this.#client, keys);
  }

  list(dir: string, options?: DriverReadOptions): Promise<Entry[]> {
    return this.#run("list", () => this.#list(dir, options));
  }

  async #list(dir: string, options?: DriverReadOptions): Promise<Entry[]> {
    const reads: Promise<(Entry | null)[]>[] = [];
    const seen = new Set<string>();
    for await (const names of this.#scan(startsWithPattern(dir), options)) {
      const keys = this.#storeKeys(names, seen);
      for (let i = 0; i < keys.length; i += READ_BATCH) {
        reads.push(this.read(keys.slice(i, i + READ_BATCH)));
      }
    }
    const entries: Entry[] = [];
    for (const batch of await Promise.all(reads)) {
      for (const entry of batch) if (entry) entries.push(entry);
    }
    return entries;
  }

  deleteTree(
    key: string | null,
    dir: string,
    options: DriverSignalOptions,
  ): Promise<void> {
    return this.#run("deleteTree", () => this.#deleteTree(key, dir, options));
  }

  async #deleteTree(
    key: string | null,
    dir: string,
    options: DriverSignalOptions,
  ): Promise<void> {
    const client = this.#client;
    // Every key first, then one UNLINK per batch: a watch of the tree hears
    // the deletion as one burst, not SCAN step by SCAN step.
    const keys = key === null ? [] : [key];
    const seen = new Set<string>();
    for await (const names of this.#scan(startsWithPattern(dir), options)) {
      keys.push(...this.#storeKeys(names, seen));
    }
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      await client.unlink(...withCompanions(keys.slice(i, i + DELETE_BATCH)));
    }
    // Companions whose key another client deleted go too: the tree leaves
    // nothing behind.
    const companions = startsWithPattern(versionKey(dir));
    for await (const names of this.#scan(companions, options)) {
      const pairs: string[] = [];
      for (const raw of names) {
        const name = decodeName(raw);
        if (name !== undefined) {
          pairs.push(name, name.slice(VERSION_PREFIX.length));
        }
      }
      if (pairs.length > 0) await PRUNE.run(client, pairs, []);
    }
  }

  commit(
    steps: readonly AtomicStep[],
    _options: DriverSignalOptions,
  ): Promise<CommitOutcome> {
    return this.#run("atomic", () => this.#commit(steps));
  }

  async #commit(steps: readonly AtomicStep[]): Promise<CommitOutcome> {
    const keys = [COUNTER_KEY];
    const checks: string[] = [];
    const writes: ScriptArg[] = [];
    for (const step of steps) {
      keys.push(step.key, versionKey(step.key));
      if (step.type === "check") {
        checks.push(step.lastIndex === null ? "" : step.lastIndex.toString());
      } else if (step.type === "put") {
        const ttl = step.ttl === undefined ? "" : String(Math.ceil(step.ttl));
        writes.push("p", toBuffer(step.value), digest(step.value), ttl);
      } else {
        writes.push("d", "", "", "");
      }
    }
    const [applied, detail, current] = await COMMIT.run(
      this.#client,
      keys,
      [String(checks.length), ...checks, ...writes],
    ) as [number, unknown, unknown];
    if (applied === 1) return { ok: true, lastIndex: BigInt(String(detail)) };
    return {
      ok: false,
      key: steps[Number(detail) - 1].key,
      current: current === null ? null : BigInt(String(current)),
    };
  }

  watchKey(key: string, sink: KeySink, signal: AbortSignal): void {
    watchKey(this, key, sink, signal);
  }

  watchTree(dir: string, sink: TreeSink, signal: AbortSignal): void {
    watchTree(this, dir, sink, signal);
  }

  lock(key: string, options: DriverLockOptions): Promise<LockLease> {
    return this.#run(
      "lock",
      () => acquireLock(this.#client, this.notifications, key, options),
    );
  }

  // Locks are released and watches ended by now, so nothing is waiting for
  // a reply: the connections are dropped at once, without a QUIT round trip,
  // and close() settles in the same tick as the store's own work.
  close(): Promise<void> {
    this.notifications.close();
    this.#client.disconnect();
    return Promise.resolve();
  }

  // The same, minus the store's goodbyes, which BaseStore leaves out.
  abandon(): Promise<void> {
    return this.close();
  }

  async #run<T>(op: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw explain(error, op, this.#what);
    }
  }

  // Every name matching `pattern`, a SCAN step at a time.
  async *#scan(
    pattern: string,
    options: DriverSignalOptions | undefined,
  ): AsyncGenerator<Uint8Array[]> {
    let cursor = "0";
    do {
      options?.signal?.throwIfAborted();
      const [next, names] = await this.#client.scanBuffer(
        cursor,
        "MATCH",
        pattern,
        "COUNT",
        SCAN_COUNT,
      );
      cursor = next.toString();
      if (names.length > 0) yield names;
    } while (cursor !== "0");
  }

  // The names that are keys of the store, each once (SCAN may repeat one).
  #storeKeys(names: readonly Uint8Array[], seen: Set<string>): string[] {
    const keys: string[] = [];
    for (const raw of names) {
      const name = decodeName(raw);
      if (name === undefined || seen.has(name)) continue;
      seen.add(name);
      if (isStoreKey(name, this.maxKeyBytes)) keys.push(name);
    }
    return keys;
  }
}
