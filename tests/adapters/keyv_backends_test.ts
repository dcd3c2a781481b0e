// Keyv's compliance suite on the file backend and on Redis (against its real
// server), besides memory in keyv_test.ts.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Keyv from "keyv";
import keyvTestSuite, { keyvIteratorTests } from "@keyv/test-suite";
import { KeyvValkeyrie } from "../../adapters/keyv/mod.ts";
import { type RedisService, startRedis } from "../services/redis.ts";
import { vitestShim } from "./keyv_suite_shim.ts";

describe("Keyv compliance suite: redis", () => {
  let redis: RedisService | undefined;
  const adapters: KeyvValkeyrie[] = [];
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await Promise.allSettled(adapters.map((adapter) => adapter.disconnect()));
    await redis?.stop();
  });
  const store = () => {
    const adapter = new KeyvValkeyrie(redis!.url);
    adapters.push(adapter);
    return adapter;
  };
  keyvTestSuite(vitestShim(test) as never, Keyv, store);
  keyvIteratorTests(vitestShim(test) as never, Keyv, store);
});

describe("Keyv compliance suite: file", () => {
  const dir = mkdtempSync(join(tmpdir(), "valkeyrie-keyv-"));
  const adapters: KeyvValkeyrie[] = [];
  after(async () => {
    await Promise.allSettled(adapters.map((adapter) => adapter.disconnect()));
    rmSync(dir, { recursive: true, force: true });
  });
  const store = () => {
    const adapter = new KeyvValkeyrie(`file:${join(dir, "keyv.db")}`);
    adapters.push(adapter);
    return adapter;
  };
  keyvTestSuite(vitestShim(test) as never, Keyv, store);
  keyvIteratorTests(vitestShim(test) as never, Keyv, store);
});
