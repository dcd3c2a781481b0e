/**
 * Redis: our `RedisStore` against ioredis used directly.
 *
 * The raw side: `GET`/`SET` of the value; a list is `SCAN MATCH dir/*` then
 * `MGET` of what it found (Redis has no range read); a compare-and-set is a
 * Lua script (`EVALSHA`, defined once with `defineCommand`) that sets the
 * key only if it still holds the value read before, the one-round-trip CAS
 * users write (a `WATCH`/`MULTI`/`EXEC` one takes three); a watch is a
 * keyspace notification (`__keyspace@0__:KEY`) followed by a `GET` of the
 * new value, since the notification does not carry it.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { Redis } from "ioredis";
import { openStore } from "../../mod.ts";
import { startRedis } from "../../tests/services/redis.ts";
import { packageVersion, type Side, storeSide, type Target } from "./side.ts";

interface CasRedis extends Redis {
  casValue(key: string, expected: Buffer, value: Buffer): Promise<number>;
}

/** Starts redis-server and both sides on it. */
export async function redisTarget(): Promise<Target> {
  const server = await startRedis();
  const store = await openStore(server.url);
  const client = new Redis(server.port, "127.0.0.1") as CasRedis;
  const subscriber = new Redis(server.port, "127.0.0.1");
  client.defineCommand("casValue", {
    numberOfKeys: 1,
    lua: `if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0`,
  });
  const raw: Side = {
    get: (key) => client.getBuffer(key),
    put: async (key, value) => {
      await client.set(key, toBuffer(value));
    },
    async list(dir) {
      const names: string[] = [];
      let cursor = "0";
      do {
        const [next, found] = await client.scan(
          cursor,
          "MATCH",
          `${dir}/*`,
          "COUNT",
          1000,
        );
        cursor = next;
        names.push(...found);
      } while (cursor !== "0");
      if (names.length === 0) return 0;
      return (await client.mgetBuffer(...names)).length;
    },
    async cas(key, value) {
      const bytes = toBuffer(value);
      await client.set(key, bytes);
      return async () => {
        if (await client.casValue(key, bytes, bytes) !== 1) {
          throw new Error("raw redis CAS failed");
        }
      };
    },
    async watch(key, onValue) {
      await client.config("SET", "notify-keyspace-events", "KA");
      const channel = `__keyspace@0__:${key}`;
      const onMessage = async (name: string) => {
        if (name !== channel) return;
        const value = await client.getBuffer(key);
        if (value) onValue(value);
      };
      subscriber.on("message", onMessage);
      await subscriber.subscribe(channel);
      return async () => {
        subscriber.off("message", onMessage);
        await subscriber.unsubscribe(channel);
      };
    },
  };
  const info = await client.info("server");
  return {
    backend: "redis",
    store,
    ours: storeSide(store),
    raw,
    keys: { ours: "bench/ours", raw: "bench/raw" },
    about: {
      server: `Redis ${/redis_version:(\S+)/.exec(info)?.[1]}`,
      client: `ioredis ${await packageVersion("ioredis")}`,
      get: "GET",
      put: "SET",
      list: "SCAN MATCH dir/* COUNT 1000, then MGET",
      cas: "EVALSHA of a Lua compare-value-then-SET",
      watch: "keyspace notification, then GET",
    },
    async close() {
      await store.close();
      client.disconnect();
      subscriber.disconnect();
      await server.stop();
    },
  };
}

function toBuffer(value: Uint8Array): Buffer {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}
