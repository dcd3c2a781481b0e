// The registry (valkeyrie's AddStore/NewStore) and openStore by URL, through
// the public entry point.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  backends,
  InvalidConfigurationError,
  newStore,
  openStore,
  register,
  type Store,
  UnknownBackendError,
  unregister,
} from "../../mod.ts";
import { MemoryStore } from "../../backends/memory/mod.ts";
import type { BackendDescriptor } from "../../mod.ts";
import { consulBackend } from "../../backends/consul/backend.ts";
import { dynamodbBackend } from "../../backends/dynamodb/backend.ts";
import { etcdBackend } from "../../backends/etcd/backend.ts";
import { fileBackend } from "../../backends/file/backend.ts";
import { memoryBackend } from "../../backends/memory/backend.ts";
import { redisBackend } from "../../backends/redis/backend.ts";
import { zookeeperBackend } from "../../backends/zookeeper/backend.ts";

function describeBackend(name: string): BackendDescriptor {
  const all = [
    consulBackend,
    dynamodbBackend,
    etcdBackend,
    fileBackend,
    memoryBackend,
    redisBackend,
    zookeeperBackend,
  ];
  return all.find((backend) => backend.name === name)!;
}

describe("registry", () => {
  test("lists the built-in backends", () => {
    assert.ok(backends().includes("memory"));
    assert.deepEqual(backends(), [...backends()].sort());
  });

  test("registers, opens and unregisters a third-party backend", async () => {
    const calls: Array<[string[], Record<string, unknown>]> = [];
    register("scratch", (endpoints, config) => {
      calls.push([endpoints, config as Record<string, unknown>]);
      return new MemoryStore({ prefix: config.prefix });
    });
    try {
      assert.ok(backends().includes("scratch"));
      const byUrl = await openStore("scratch://h1:1,h2:2/db?x=1", {
        prefix: "p",
      });
      assert.equal(byUrl.backend, "memory");
      await byUrl.close();
      assert.deepEqual(calls[0][0], ["h1:1", "h2:2"]);
      assert.deepEqual((calls[0][1].url as { params: unknown }).params, {
        x: "1",
      });
      const byName = await newStore("scratch", ["h"], {});
      await byName.close();
      assert.deepEqual(calls[1][0], ["h"]);
      assert.equal(calls[1][1].url, undefined);
    } finally {
      unregister("scratch");
    }
    assert.ok(!backends().includes("scratch"));
    await assert.rejects(openStore("scratch://h"), UnknownBackendError);
    unregister("scratch"); // no error the second time
  });

  test("a backend descriptor brings its own schemes, TLS ones included", async () => {
    const seen: Record<string, unknown>[] = [];
    register({
      name: "scratch",
      schemes: { scratch: {}, scratchs: { tls: true } },
      fromUrl: (url) => ({ name: url.path || undefined }),
      fromEndpoints: ([name]) => ({ name }),
      open: (settings) => {
        seen.push(settings);
        const { tls: _tls, ...rest } = settings;
        return new MemoryStore(rest);
      },
    });
    try {
      await (await openStore("scratch:a?prefix=p")).close();
      await (await openStore("scratchs:b")).close();
      await (await openStore("scratchs:b", { tls: false })).close();
      await (await newStore("scratch", ["c"], { prefix: "q" })).close();
      assert.deepEqual(seen, [
        { name: "a", prefix: "p" },
        { name: "b", tls: true },
        { name: "b", tls: false },
        { name: "c", prefix: "q" },
      ]);
      // Another backend cannot take a scheme that is already someone's.
      assert.throws(
        () =>
          register({
            name: "thief",
            schemes: { zks: {} },
            open: () => new MemoryStore(),
          }),
        /zks: belongs to the backend zookeeper/,
      );
    } finally {
      unregister("scratch");
    }
    await assert.rejects(openStore("scratchs:b"), UnknownBackendError);
  });

  test("one precedence on every backend: an option wins over the URL, a URL saying a setting twice is refused", async () => {
    const opened: Array<[string, Record<string, unknown>]> = [];
    const real = new Map<string, BackendDescriptor>();
    for (
      const name of [
        "etcd",
        "consul",
        "zookeeper",
        "redis",
        "dynamodb",
        "file",
        "memory",
      ]
    ) {
      real.set(name, describeBackend(name));
    }
    try {
      for (const [name, descriptor] of real) {
        register({
          ...descriptor,
          open: (settings) => {
            opened.push([name, settings]);
            return new MemoryStore();
          },
        });
      }
      const cases: Array<[string, Record<string, unknown>, string, unknown]> = [
        [
          "etcd://h:1/from-url",
          { prefix: "from-option" },
          "prefix",
          "from-option",
        ],
        [
          "consul://h:1/from-url",
          { prefix: "from-option" },
          "prefix",
          "from-option",
        ],
        [
          "zk://h:1/from-url",
          { chroot: "/from-option" },
          "chroot",
          "/from-option",
        ],
        ["redis://h:1/2", { db: 3 }, "db", 3],
        [
          "dynamodb://from-url",
          { table: "from-option" },
          "table",
          "from-option",
        ],
        [
          "file:/tmp/from-url.db",
          { path: "/tmp/from-option.db" },
          "path",
          "/tmp/from-option.db",
        ],
        ["memory:from-url", { name: "from-option" }, "name", "from-option"],
        ["redis://u:p@h:1", { username: "o" }, "username", "o"],
        [
          "etcd://h:1?requestTimeout=5",
          { requestTimeout: 7 },
          "requestTimeout",
          7,
        ],
      ];
      for (const [url, options, setting, expected] of cases) {
        opened.length = 0;
        await (await openStore(url, options)).close();
        assert.equal(opened[0][1][setting], expected, url);
      }
      for (const url of ["etcd://h:1/a?prefix=b", "zk://h:1/a?chroot=/b"]) {
        await assert.rejects(
          openStore(url),
          /gives (prefix|chroot) twice/,
          url,
        );
      }
    } finally {
      for (const descriptor of real.values()) register(descriptor);
    }
  });

  test("unknown backends and schemes are UnknownBackendError", async () => {
    await assert.rejects(newStore("nope", []), UnknownBackendError);
    await assert.rejects(openStore("nope://x"), /No backend for URL scheme/);
  });

  test("bad URLs, names, endpoints and settings are InvalidConfigurationError", async () => {
    await assert.rejects(openStore("not a url"), InvalidConfigurationError);
    await assert.rejects(
      openStore(42 as unknown as string),
      InvalidConfigurationError,
    );
    assert.throws(
      () => register("Bad Name", () => new MemoryStore()),
      InvalidConfigurationError,
    );
    await assert.rejects(
      newStore("memory", "x" as unknown as string[]),
      InvalidConfigurationError,
    );
    await assert.rejects(
      openStore("memory:", { colour: "blue" }),
      /Unknown memory setting "colour"/,
    );
    await assert.rejects(
      openStore("memory:", { prefix: 5 as unknown as string }),
      InvalidConfigurationError,
    );
    await assert.rejects(
      openStore("memory:", { connectTimeout: -1 }),
      /connectTimeout/,
    );
  });

  test("an aborted signal stops opening", async () => {
    const reason = new Error("no");
    await assert.rejects(
      openStore("memory:", { signal: AbortSignal.abort(reason) }),
      (error) => error === reason,
    );
  });

  test("memory: URLs name shared databases; memory: alone is private", async () => {
    const stores: Store[] = [
      await openStore("memory:shared-by-name"),
      await openStore("memory:shared-by-name"),
      await openStore("memory:"),
    ];
    try {
      await stores[0].put("k", "v");
      assert.equal(await stores[1].exists("k"), true);
      assert.equal(await stores[2].exists("k"), false);
    } finally {
      for (const store of stores) await store.close();
    }
  });
});
