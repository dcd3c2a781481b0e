// The conformance kit on a real redis-server, opened by URL as users do.
import { after, before, describe, test } from "node:test";
import { openStore } from "../../mod.ts";
import { conformance } from "../../testing/mod.ts";
import { type RedisService, startRedis } from "../services/redis.ts";

let redis: RedisService;

before(async () => {
  redis = await startRedis();
});

after(async () => {
  await redis?.stop();
});

conformance({ describe, test }, {
  name: "redis",
  open: (options) => openStore(redis.url, options),
  openUnreachable: (connectTimeout) =>
    openStore("redis://127.0.0.1:1", { connectTimeout }),
});
