/**
 * The Lua scripts the store runs on Redis, and how it runs them.
 *
 * Every script names every key it touches in `KEYS[]` (never a name built
 * inside Lua), as Redis asks of scripts so that ACL key patterns and key
 * routing see them. A script runs alone on the server: that is what makes a
 * compare-and-set, an `atomic()` commit or a lock acquisition all or nothing.
 *
 * A key's bookkeeping shares the key's hash slot (see `names.ts`), so a
 * script about one key, or about keys of one slot, touches one slot: Redis
 * Cluster runs it on the node that owns the slot. Only on a single server do
 * scripts take keys of several slots at once (batched reads, an `atomic()`
 * across slots).
 *
 * A version companion (`/v/{TAG}KEY`) holds `"<version> <sha1 of the
 * value>"`. Versions come from the counter of the key's slot (`INCR
 * /counter/{TAG}`); a key never changes slot, so its versions grow with every
 * write and are never given twice, also across delete and re-create. The
 * SHA-1 lets a script see that another client wrote the key behind the
 * store's back (a plain `SET` leaves the companion as it was): such a value
 * is adopted with a fresh version before it is compared.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { Buffer } from "node:buffer";
import type { ChainableCommander, Cluster, Redis } from "ioredis";
import type { Call } from "./pipeline.ts";

/** A script argument: text, or bytes passed as they are. */
export type ScriptArg = string | Buffer;

/** A Lua script, run by its SHA-1 (`EVALSHA`) once the server has it. */
export class Script {
  readonly #lua: string;
  readonly #sha: string;

  constructor(lua: string) {
    this.#lua = lua;
    this.#sha = createHash("sha1").update(lua).digest("hex");
  }

  /**
   * Runs the script; replies keep bulk strings as bytes. The first run on a
   * server (or after `SCRIPT FLUSH`, a restart or a failover) sends the
   * source once.
   */
  async run(
    client: Redis | Cluster,
    keys: readonly string[],
    args: readonly ScriptArg[],
  ): Promise<unknown> {
    try {
      return await client.callBuffer(
        "EVALSHA",
        this.#sha,
        keys.length,
        ...keys,
        ...args,
      );
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) {
        throw error;
      }
      return await this.#runSource(client, keys, args);
    }
  }

  /**
   * The script as one command of a pipelined batch (see `pipeline.ts`):
   * `keys` must share a hash slot.
   */
  call(keys: readonly string[], args: readonly ScriptArg[]): Call {
    return {
      slotKey: keys[0],
      queue: (pipeline: ChainableCommander) => {
        pipeline.callBuffer(
          "EVALSHA",
          this.#sha,
          keys.length,
          ...keys,
          ...args,
        );
      },
      run: (client: Redis | Cluster, error?: Error) =>
        error?.message.startsWith("NOSCRIPT")
          ? this.#runSource(client, keys, args)
          : this.run(client, keys, args),
    };
  }

  #runSource(
    client: Redis | Cluster,
    keys: readonly string[],
    args: readonly ScriptArg[],
  ): Promise<unknown> {
    return client.callBuffer("EVAL", this.#lua, keys.length, ...keys, ...args);
  }
}

// A key's current version, or false when it holds no value. A value whose
// SHA-1 is not the one its companion recorded was written by another client:
// it gets a fresh version now, expiring with the key.
const CURRENT_VERSION = `
local function current_version(counter, key, meta_key)
  local value = redis.pcall('GET', key)
  if type(value) ~= 'string' then return false end
  local digest = redis.sha1hex(value)
  local meta = redis.call('GET', meta_key)
  if meta then
    local space = string.find(meta, ' ', 1, true)
    if space and string.sub(meta, space + 1) == digest then
      return string.sub(meta, 1, space - 1)
    end
  end
  local version = string.format('%d', redis.call('INCR', counter))
  local pttl = redis.call('PTTL', key)
  if pttl > 0 then
    redis.call('SET', meta_key, version .. ' ' .. digest, 'PX', pttl)
  else
    redis.call('SET', meta_key, version .. ' ' .. digest)
  end
  return version
end
`;

/**
 * Reads keys: KEYS are pairs (key, companion). Returns, per key, its value
 * (or nil), its companion (or nil) and its PTTL. A key holding another Redis
 * type than a string reads as absent.
 */
export const READ: Script = new Script(`
local out = {}
for i = 1, #KEYS, 2 do
  local value = redis.pcall('GET', KEYS[i])
  if type(value) == 'string' then
    out[#out + 1] = value
    out[#out + 1] = redis.call('GET', KEYS[i + 1])
    out[#out + 1] = redis.call('PTTL', KEYS[i])
  else
    out[#out + 1] = false
    out[#out + 1] = false
    out[#out + 1] = -2
  end
end
return out
`);

/**
 * Reads keys whose companion did not match, adopting foreign writes: KEYS
 * are triples (counter of the key's slot, key, companion). Returns, per key,
 * its value (or nil), its version (or nil) and its PTTL.
 */
export const ADOPT: Script = new Script(`${CURRENT_VERSION}
local out = {}
for i = 1, #KEYS, 3 do
  local version = current_version(KEYS[i], KEYS[i + 1], KEYS[i + 2])
  if version then
    out[#out + 1] = redis.call('GET', KEYS[i + 1])
    out[#out + 1] = version
    out[#out + 1] = redis.call('PTTL', KEYS[i + 1])
  else
    out[#out + 1] = false
    out[#out + 1] = false
    out[#out + 1] = -2
  end
end
return out
`);

/**
 * Checks, then writes, all or nothing. KEYS are first the lock record of
 * each fence, then triples (counter of the key's slot, key, companion): first
 * one per check, then one per write. ARGV[1] is the number of checks, ARGV[2]
 * the number of fences; then one holder's token per fence; then one expected
 * version per check ("" for absent); then four per write: "p" (put) or "d"
 * (delete), the value, its SHA-1, and the TTL in milliseconds ("" for none).
 *
 * A fence holds while its record still names the lease's token. Every
 * acquisition writes a fresh random token there with the lock's TTL as the
 * record's expiry; a release deletes the record and another holder's
 * acquisition replaces the token, and Redis reads an expired record as
 * absent, so the token is there exactly while that lease holds the lock —
 * the value at the lock's key, which a release may leave, does not count.
 * The script runs alone on the server, so no acquisition or release can come
 * between this check and the writes.
 *
 * Every write gets the same version. With keys of one slot (always, on a
 * cluster) it is the next of the slot's counter; with several slots it is
 * above every counter involved, and each of them is raised to it, so no
 * counter gives a version twice. A commit of fences alone writes nothing and
 * answers version 0.
 *
 * Returns {1, version} when applied, {0, i, current} when check i failed
 * (current is nil when the key is absent), or {-1, i} when fence i failed.
 */
export const COMMIT: Script = new Script(`${CURRENT_VERSION}
local checks, fences = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, fences do
  -- pcall: a record some other client replaced by another type names no
  -- token, so it fails the fence instead of the script.
  if redis.pcall('GET', KEYS[i]) ~= ARGV[2 + i] then return {-1, i} end
end
local steps = (#KEYS - fences) / 3
local function name(i, j) return KEYS[fences + 3 * (i - 1) + j] end
for i = 1, checks do
  local current = current_version(name(i, 1), name(i, 2), name(i, 3))
  local expected = ARGV[2 + fences + i]
  if (expected == '' and current) or (expected ~= '' and current ~= expected) then
    return {0, i, current}
  end
end
local counted, highest = {}, 0
for i = 1, steps do
  local counter = name(i, 1)
  if not counted[counter] then
    counted[counter] = redis.call('INCR', counter)
    if counted[counter] > highest then highest = counted[counter] end
  end
end
local version = string.format('%d', highest)
for counter, count in pairs(counted) do
  if count < highest then redis.call('SET', counter, version) end
end
local arg = 3 + fences + checks
for i = checks + 1, steps do
  local key, meta_key = name(i, 2), name(i, 3)
  if ARGV[arg] == 'p' then
    local meta = version .. ' ' .. ARGV[arg + 2]
    local ttl = ARGV[arg + 3]
    if ttl == '' then
      redis.call('SET', key, ARGV[arg + 1])
      redis.call('SET', meta_key, meta)
    else
      redis.call('SET', key, ARGV[arg + 1], 'PX', ttl)
      redis.call('SET', meta_key, meta, 'PX', ttl)
    end
  else
    redis.call('DEL', key, meta_key)
  end
  arg = arg + 4
end
return {1, version}
`);

/**
 * Adds to a counter: KEYS are the counter of the key's slot, the key and its
 * companion; ARGV the delta and the TTL in milliseconds ("" for none).
 * `INCRBY` does the arithmetic, exactly in 64 bits (Lua's numbers are
 * doubles), and refuses what is not the decimal text of a signed 64-bit
 * integer or a sum out of range, changing nothing; its grammar is the
 * store's counter format. A key of another Redis type reads as absent
 * elsewhere, so it counts as 0 here and is replaced, as a put would. Then
 * the key is written as a put writes it: its TTL as given, a new version.
 *
 * Returns {1, version, value}, or {0, "not-a-counter"}, or
 * {0, "overflow", value} with the value it holds.
 */
export const INCREMENT: Script = new Script(`
local value = redis.pcall('GET', KEYS[2])
if type(value) == 'table' then redis.call('DEL', KEYS[2]) end
local sum = redis.pcall('INCRBY', KEYS[2], ARGV[1])
if type(sum) == 'table' then
  if string.find(sum.err, 'overflow', 1, true) then
    return {0, 'overflow', value}
  end
  return {0, 'not-a-counter'}
end
local text = redis.call('GET', KEYS[2])
local version = string.format('%d', redis.call('INCR', KEYS[1]))
local meta = version .. ' ' .. redis.sha1hex(text)
if ARGV[2] == '' then
  redis.call('SET', KEYS[2], text)
  redis.call('SET', KEYS[3], meta)
else
  redis.call('SET', KEYS[2], text, 'PX', ARGV[2])
  redis.call('SET', KEYS[3], meta, 'PX', ARGV[2])
end
return {1, version, text}
`);

/**
 * Takes a lock: KEYS are the counter of the key's slot, the lock bookkeeping, the key and its
 * companion; ARGV the holder's token, the TTL in milliseconds, the value and
 * its SHA-1. Returns {1, version} when taken (the version of the value it
 * wrote: the fencing token), or {0, pttl} with the holder's time left.
 */
export const ACQUIRE: Script = new Script(`
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then
  return {0, redis.call('PTTL', KEYS[2])}
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
local version = string.format('%d', redis.call('INCR', KEYS[1]))
redis.call('SET', KEYS[3], ARGV[3])
redis.call('SET', KEYS[4], version .. ' ' .. ARGV[4])
return {1, version}
`);

/**
 * Extends a lock: KEYS[1] is the lock bookkeeping; ARGV the token and the
 * TTL. Returns 1 when the token still holds it, else 0.
 */
export const RENEW: Script = new Script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`);

/**
 * Releases a lock: KEYS are the lock bookkeeping, the key and its companion;
 * ARGV the token and "1" to delete the key too. Nothing happens unless the
 * token holds the lock, so another holder's value is never deleted.
 */
export const RELEASE: Script = new Script(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '1' then redis.call('DEL', KEYS[2], KEYS[3]) end
redis.call('DEL', KEYS[1])
return 1
`);

/**
 * Deletes companions left behind by keys another client deleted: KEYS are
 * pairs (key, companion); a companion goes only when its key is gone.
 */
export const PRUNE: Script = new Script(`
local pruned = 0
for i = 1, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    pruned = pruned + redis.call('DEL', KEYS[i + 1])
  end
end
return pruned
`);
