// A ZooKeeper store over TLS: ZooKeeper's secure client port (Netty, PEM
// certificates, client certificates required), opened with `zks://`.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { NotReachableError, openStore } from "../../mod.ts";
import {
  makeCertificates,
  type TestCertificates,
} from "../services/certificates.ts";
import {
  startZookeeper,
  type ZookeeperService,
} from "../services/zookeeper.ts";

let server: ZookeeperService;
let certs: TestCertificates;
const text = (pair: { value: Uint8Array } | null) =>
  pair === null ? null : new TextDecoder().decode(pair.value);

describe("zookeeper over TLS", () => {
  before(async () => {
    certs = makeCertificates();
    server = await startZookeeper({ tls: certs });
  });
  after(async () => {
    await server?.stop();
    certs?.remove();
  });

  const tls = () => ({
    ca: certs.ca,
    cert: certs.clientCert,
    key: certs.clientKey,
  });

  test("zks:// with the CA and a client certificate does everything", async () => {
    await using store = await openStore(`${server.secureUrl}/tls`, {
      tls: tls(),
    });
    const watch = store.watch("greeting").getReader();
    assert.equal((await watch.read()).value, null);
    await store.put("greeting", "hello over TLS");
    assert.equal(text((await watch.read()).value!), "hello over TLS");
    await watch.cancel();
    const lock = await store.lock("locked", { ttl: 2_000 });
    await lock.unlock();
    // The same data through the plain port.
    await using plain = await openStore(`${server.url}/tls`);
    assert.equal(text(await plain.get("greeting")), "hello over TLS");
  });

  test("a server the CA does not vouch for is not reachable, and says why", async () => {
    const error = await openStore(server.secureUrl!, {
      connectTimeout: 1_500,
      tls: true,
    }).then(() => undefined, (error) => error);
    assert.ok(error instanceof NotReachableError, String(error));
    assert.match(error.message, /certificate/);
  });

  test("without a client certificate the server refuses the connection", async () => {
    const error = await openStore(server.secureUrl!, {
      connectTimeout: 1_500,
      tls: { ca: tls().ca },
    }).then(() => undefined, (error) => error);
    assert.ok(error instanceof NotReachableError, String(error));
  });
});
