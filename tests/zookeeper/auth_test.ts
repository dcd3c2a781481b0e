// Digest authentication and the ACLs of the nodes a ZooKeeper store
// creates: with credentials a store's nodes are its user's, as ZooKeeper's
// own clients see them.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { InvalidConfigurationError, openStore, StoreError } from "../../mod.ts";
import {
  startZookeeper,
  zkCliAs,
  type ZookeeperService,
} from "../services/zookeeper.ts";

let server: ZookeeperService;
const text = (pair: { value: Uint8Array } | null) =>
  pair === null ? null : new TextDecoder().decode(pair.value);

// The identity ZooKeeper's digest scheme gives user:password.
function digestId(user: string, password: string): string {
  const hash = createHash("sha1").update(`${user}:${password}`).digest(
    "base64",
  );
  return `${user}:${hash}`;
}

function url(path: string, credentials = ""): string {
  const at = credentials ? `${credentials}@` : "";
  return server.url.replace("zk://", `zk://${at}`) + path;
}

describe("zookeeper digest auth and ACLs", () => {
  before(async () => {
    server = await startZookeeper();
  });
  after(async () => {
    await server?.stop();
  });

  test("with credentials the store's nodes belong to its user alone", async () => {
    await using alice = await openStore(url("/alice", "alice:secret"));
    await alice.put("private/doc", "alice's");
    const id = digestId("alice", "secret");
    const acl = (path: string) =>
      zkCliAs(server.port, "alice:secret", "getAcl", path);
    assert.equal(acl("/alice/private/doc"), `'digest,'${id}\n: cdrwa`);
    // Her parents too, up to the chroot.
    assert.equal(acl("/alice/private"), `'digest,'${id}\n: cdrwa`);
    assert.equal(acl("/alice"), `'digest,'${id}\n: cdrwa`);

    await using again = await openStore(url("/alice", "alice:secret"));
    assert.equal(text(await again.get("private/doc")), "alice's");

    await using anonymous = await openStore(url("/alice"));
    await assert.rejects(anonymous.get("private/doc"), (error: Error) => {
      assert.ok(error instanceof StoreError);
      assert.match(error.message, /NOAUTH/);
      return true;
    });
    await assert.rejects(anonymous.put("private/doc", "x"), /NOAUTH/);
    await assert.rejects(anonymous.list("private"), /NOAUTH/);

    await using impostor = await openStore(url("/alice", "alice:wrong"));
    await assert.rejects(impostor.get("private/doc"), /NOAUTH/);
    assert.equal(text(await alice.get("private/doc")), "alice's");
  });

  test("credentials can be given as options, and creator-read lets anyone read", async () => {
    await using bob = await openStore(url("/bob"), {
      username: "bob",
      password: "pw",
      acl: "creator-read",
    });
    await bob.put("shared/note", "read me");
    await using anonymous = await openStore(url("/bob"));
    assert.equal(text(await anonymous.get("shared/note")), "read me");
    await assert.rejects(anonymous.put("shared/note", "no"), /NOAUTH/);
    await assert.rejects(anonymous.delete("shared/note"), /NOAUTH/);
    assert.equal(text(await bob.get("shared/note")), "read me");
  });

  test("explicit ACL entries are written as given", async () => {
    const carolId = digestId("carol", "c");
    await using carol = await openStore(url("/carol", "carol:c"), {
      acl: [
        { perms: 1, scheme: "world", id: "anyone" },
        { perms: 31, scheme: "digest", id: carolId },
      ],
    });
    await carol.put("explicit/x", "by carol");
    assert.equal(
      zkCliAs(server.port, "carol:c", "getAcl", "/carol/explicit/x"),
      `'world,'anyone\n: r\n'digest,'${carolId}\n: cdrwa`,
    );
    await using anonymous = await openStore(url("/carol"));
    assert.equal(text(await anonymous.get("explicit/x")), "by carol");
    await assert.rejects(anonymous.put("explicit/x", "not allowed"), /NOAUTH/);
  });

  test("a watch of a key the store may not read fails with a StoreError", async () => {
    await using alice = await openStore(url("/alice", "alice:secret"));
    await alice.put("watched", "secret");
    await using anonymous = await openStore(url("/alice"));
    const reader = anonymous.watch("watched").getReader();
    await assert.rejects(reader.read(), /NOAUTH/);
  });

  test("locks work under creator ACLs", async () => {
    await using alice = await openStore(url("/alice", "alice:secret"));
    const lock = await alice.lock("guarded", { value: "held", ttl: 4_000 });
    assert.equal(text(await alice.get("guarded")), "held");
    await lock.unlock();
  });

  test("a creator ACL without credentials is a configuration error", async () => {
    await assert.rejects(
      openStore(url("/x"), { acl: "creator" }),
      InvalidConfigurationError,
    );
    await assert.rejects(
      openStore(url("/x"), { password: "alone" }),
      InvalidConfigurationError,
    );
    await assert.rejects(
      openStore(`${url("/x")}?acl=nobody`),
      InvalidConfigurationError,
    );
  });
});
