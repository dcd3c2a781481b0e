/**
 * Reading keys into entries, with their versions.
 *
 * A read is one script run for a batch of keys (of one hash slot, on a
 * cluster): each key's value, its version companion and its PTTL, together. The companion says which version
 * the store gave the value and the SHA-1 of that value; the reader checks the
 * SHA-1 itself, so a read costs the server no hashing and writes nothing.
 * When the SHA-1 does not match (another client wrote the key with a plain
 * `SET`) or there is no companion (a key written by another client), the
 * key is read again through a script that adopts the foreign value under a
 * fresh version, so every reader agrees on it and a compare-and-set against
 * a version read before the foreign write fails.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type { Cluster, Redis } from "ioredis";
import type { Entry } from "../../core/driver.ts";
import { counterKey, versionKey } from "./names.ts";
import { runPipelined } from "./pipeline.ts";
import { ADOPT, READ } from "./scripts.ts";
import type { Topology } from "./topology.ts";

/** The SHA-1 of a value, in hex, as Lua's `redis.sha1hex` writes it. */
export function digest(value: Uint8Array): string {
  return createHash("sha1").update(value).digest("hex");
}

/** Bytes as a Buffer for the client, without copying them. */
export function toBuffer(value: Uint8Array): Buffer {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/**
 * Reads `keys` in one round trip (two when a key was written by another
 * client). Returns their entries, `null` where a key is absent. On a
 * cluster, the keys must share a hash slot.
 */
export async function readEntries(
  client: Redis | Cluster,
  keys: readonly string[],
): Promise<(Entry | null)[]> {
  if (keys.length === 0) return [];
  const reply = await READ.run(client, withCompanions(keys), []) as Reply;
  const { entries, foreign } = readReply(keys, reply);
  if (foreign.length > 0) {
    const adopted = await adopt(client, foreign.map((i) => keys[i]));
    foreign.forEach((i, n) => (entries[i] = adopted[n]));
  }
  return entries;
}

/**
 * Reads batches of keys (each of one hash slot, on a cluster) in one round
 * trip per server (two when a key was written by another client), and
 * returns their entries batch by batch, `null` where a key is absent.
 */
export async function readBatches(
  topology: Topology,
  batches: readonly (readonly string[])[],
): Promise<(Entry | null)[][]> {
  const replies = await runPipelined(
    topology,
    batches.map((keys) => READ.call(withCompanions(keys), [])),
  );
  const read = batches.map((keys, b) => readReply(keys, replies[b] as Reply));
  const foreign = read.filter((batch) => batch.foreign.length > 0);
  if (foreign.length > 0) {
    const keysOf = (batch: ReadBatch) =>
      batch.foreign.map((i) => batch.keys[i]);
    const adopted = await runPipelined(
      topology,
      foreign.map((batch) => ADOPT.call(adoptNames(keysOf(batch)), [])),
    );
    foreign.forEach((batch, n) => {
      const entries = adoptReply(keysOf(batch), adopted[n] as Reply);
      batch.foreign.forEach((i, k) => (batch.entries[i] = entries[k]));
    });
  }
  return read.map(({ entries }) => entries);
}

interface ReadBatch {
  readonly keys: readonly string[];
  readonly entries: (Entry | null)[];
  /** Keys whose companion did not vouch for the value: left null, adopted. */
  readonly foreign: number[];
}

function readReply(keys: readonly string[], reply: Reply): ReadBatch {
  const readAt = Date.now();
  const entries: (Entry | null)[] = [];
  const foreign: number[] = [];
  for (let i = 0; i < keys.length; i++) {
    const value = reply[3 * i] as Buffer | null;
    if (value === null) {
      entries.push(null);
      continue;
    }
    const version = verifiedVersion(value, reply[3 * i + 1] as Buffer | null);
    if (version === undefined) {
      foreign.push(i);
      entries.push(null);
      continue;
    }
    entries.push(entry(keys[i], value, version, reply[3 * i + 2], readAt));
  }
  return { keys, entries, foreign };
}

type Reply = Array<Buffer | number | null>;

// Reads keys again through the script that gives foreign values a version.
async function adopt(
  client: Redis | Cluster,
  keys: readonly string[],
): Promise<(Entry | null)[]> {
  return adoptReply(
    keys,
    await ADOPT.run(client, adoptNames(keys), []) as Reply,
  );
}

// The KEYS of an adoption: (counter, key, companion) per key.
function adoptNames(keys: readonly string[]): string[] {
  const names: string[] = [];
  for (const key of keys) names.push(counterKey(key), key, versionKey(key));
  return names;
}

function adoptReply(keys: readonly string[], reply: Reply): (Entry | null)[] {
  const readAt = Date.now();
  return keys.map((key, i) => {
    const value = reply[3 * i] as Buffer | null;
    if (value === null) return null;
    const version = BigInt((reply[3 * i + 1] as Buffer).toString());
    return entry(key, value, version, reply[3 * i + 2], readAt);
  });
}

/** `[key, companion, key, companion, ...]`: the KEYS of a read. */
export function withCompanions(keys: readonly string[]): string[] {
  const names: string[] = [];
  for (const key of keys) names.push(key, versionKey(key));
  return names;
}

// The version the companion gives `value`, or undefined when the companion
// is missing or belongs to other bytes.
function verifiedVersion(
  value: Uint8Array,
  meta: Buffer | null,
): bigint | undefined {
  if (meta === null) return undefined;
  const text = meta.toString("latin1");
  const space = text.indexOf(" ");
  const version = text.slice(0, space);
  if (space < 1 || !/^[0-9]+$/.test(version)) return undefined;
  if (text.slice(space + 1) !== digest(value)) return undefined;
  return BigInt(version);
}

function entry(
  key: string,
  value: Buffer,
  lastIndex: bigint,
  pttl: unknown,
  readAt: number,
): Entry {
  // A copy: the client's reply may share memory with other replies, and the
  // caller owns what it gets.
  const result: Entry = { key, value: new Uint8Array(value), lastIndex };
  if (typeof pttl === "number" && pttl > 0) result.expiresAt = readAt + pttl;
  return result;
}
