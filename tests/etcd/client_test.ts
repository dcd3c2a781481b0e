// The etcd backend reaches into etcd3's private pool; it checks the pool's
// shape at open so that an etcd3 release that changed it fails clearly.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Etcd3 } from "etcd3";
import { privatePool } from "../../backends/etcd/client.ts";

describe("etcd3's private pool", () => {
  test("the installed etcd3 has every part the backend uses", () => {
    const etcd = new Etcd3({ hosts: "http://127.0.0.1:1" });
    try {
      assert.ok(privatePool(etcd));
    } finally {
      etcd.close();
    }
  });

  test("a pool of another shape is refused, naming what is missing", () => {
    const changed = {
      pool: { hosts: [], withConnection: () => {}, authenticator: {} },
    } as unknown as Etcd3;
    assert.throws(
      () => privatePool(changed),
      (error: Error) =>
        error.name === "StoreError" &&
        /pool\.markFailed\(\)/.test(error.message) &&
        /getCredentialsFromHost/.test(error.message) &&
        !/withConnection/.test(error.message),
    );
    assert.throws(
      () => privatePool({} as Etcd3),
      /lacks what the etcd backend uses/,
    );
  });
});
