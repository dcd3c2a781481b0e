// The service harness starts every real server on loopback and stops it
// without leaving a process behind.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { startDynamoDB } from "./dynamodb.ts";
import { startEtcd } from "./etcd.ts";
import { portOpen, type Service } from "./process.ts";
import { startRedis } from "./redis.ts";
import { startZookeeper } from "./zookeeper.ts";

const starters: Record<string, () => Promise<Service>> = {
  redis: startRedis,
  etcd: startEtcd,
  zookeeper: startZookeeper,
  dynamodb: startDynamoDB,
};

describe("service harness", () => {
  for (const [name, start] of Object.entries(starters)) {
    test(`${name} starts on loopback and stops cleanly`, async () => {
      const service = await start();
      try {
        assert.equal(service.host, "127.0.0.1");
        assert.equal(await portOpen(service.port), true);
      } finally {
        await service.stop();
      }
      assert.equal(await portOpen(service.port), false);
      await service.stop();
    });
  }
});
