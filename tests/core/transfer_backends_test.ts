// The dump format between every pair of backends: a tree dumped from each
// of the seven is restored into each of the six others, and the target
// holds the same keys and bytes, with the TTL key given a TTL again. etcd's
// TTLs live in leases: a dump from etcd asks the lease (whole seconds), and
// on etcd as the target the restored key's lease is checked with etcdctl.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  dump,
  type DumpRecord,
  expiresAt,
  openStore,
  restore,
  type Store,
} from "../../mod.ts";
import { startConsul } from "../services/consul.ts";
import { startDynamoDB } from "../services/dynamodb.ts";
import { etcdctl, startEtcd } from "../services/etcd.ts";
import { startRedis } from "../services/redis.ts";
import { startZookeeper } from "../services/zookeeper.ts";

const TTL_MS = 120_000;
const BACKENDS = [
  "memory",
  "file",
  "redis",
  "etcd",
  "zookeeper",
  "consul",
  "dynamodb",
] as const;
type Backend = typeof BACKENDS[number];

const stores = new Map<Backend, Store>();
const stops: Array<() => Promise<void>> = [];
let etcdEndpoint = "";
const dir = mkdtempSync(join(tmpdir(), "transfer-backends-"));

async function read(stream: ReadableStream<string>): Promise<DumpRecord[]> {
  let all = "";
  for await (const chunk of stream) all += chunk;
  return all.split("\n").filter(Boolean).map((line) => JSON.parse(line));
}

describe("dump and restore between every pair of backends", () => {
  before(async () => {
    const redis = await startRedis();
    stops.push(() => redis.stop());
    const etcd = await startEtcd();
    stops.push(() => etcd.stop());
    etcdEndpoint = etcd.endpoint;
    const zookeeper = await startZookeeper();
    stops.push(() => zookeeper.stop());
    const consul = await startConsul({ sessionTtlMinMs: 1_000 });
    stops.push(() => consul.stop());
    const dynamodb = await startDynamoDB();
    stops.push(() => dynamodb.stop());
    const urls: Record<Backend, string> = {
      memory: "memory:transfer-backends",
      file: `file:${join(dir, "transfer.db")}`,
      redis: redis.url,
      etcd: etcd.url,
      zookeeper: zookeeper.url,
      consul: consul.url,
      dynamodb: dynamodb.url("transfer"),
    };
    // DynamoDB Local takes any credentials; the SDK needs some to sign with.
    const extra: Partial<Record<Backend, Record<string, unknown>>> = {
      dynamodb: {
        accessKeyId: "local",
        secretAccessKey: "local",
        createTable: true,
      },
    };
    for (const backend of BACKENDS) {
      stores.set(
        backend,
        await openStore(urls[backend], { prefix: "xfer", ...extra[backend] }),
      );
    }
  });
  after(async () => {
    for (const store of stores.values()) await store.close();
    for (const stop of stops.reverse()) await stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("every backend's dump restores into every other backend", async () => {
    for (const source of BACKENDS) {
      const s = stores.get(source)!;
      await s.put(`${source}/text`, "hello, 世界");
      await s.put(`${source}/bin`, new Uint8Array([0, 255, 10, 13]));
      await s.put(`${source}/nested/deep`, "");
      await s.put(`${source}/ttl`, "expires", { ttl: TTL_MS });
    }
    for (const source of BACKENDS) {
      const records = await read(dump(stores.get(source)!, source));
      assert.deepEqual(
        records.map((r) => r.key),
        ["bin", "nested/deep", "text", "ttl"].map((k) => `${source}/${k}`),
        source,
      );
      const ttl = records.find((r) => r.key === `${source}/ttl`)!.ttl;
      // etcd counts a lease in whole seconds and gives the latest end, one
      // second past what it reports.
      const most = source === "etcd" ? TTL_MS + 1_000 : TTL_MS;
      assert.ok(
        ttl !== undefined && ttl > 0 && ttl <= most,
        `${source} dumped ttl ${ttl}`,
      );
      for (const target of BACKENDS) {
        if (target === source) continue;
        const t = stores.get(target)!;
        // Under a directory per pair: `to-<target>/<source>/...`.
        const lines = records.map((r) =>
          JSON.stringify({ ...r, key: `to-${target}/${r.key}` }) + "\n"
        );
        const what = `${source} → ${target}`;
        assert.equal(await restore(t, lines), 4, what);
        const back = await t.list(`to-${target}/${source}`);
        assert.deepEqual(
          back.map((p) => [p.key, Array.from(p.value)]),
          records.map((r) => [
            `to-${target}/${r.key}`,
            Array.from(atob(r.value), (c) => c.charCodeAt(0)),
          ]),
          what,
        );
        const restored = back.find((p) => p.key.endsWith("/ttl"))!;
        if (target === "etcd") {
          const json = JSON.parse(
            etcdctl(etcdEndpoint, [
              "get",
              `xfer/${restored.key}`,
              "-w",
              "json",
            ]),
          );
          assert.ok(Number(json.kvs[0].lease) !== 0, `${what}: no lease`);
        } else {
          const expiry = expiresAt(restored);
          assert.ok(
            expiry !== undefined && expiry <= Date.now() + TTL_MS + 1_000,
            `${what}: expiry ${expiry}`,
          );
        }
      }
    }
  });
});
