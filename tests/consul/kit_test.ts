// The conformance kit on Consul: the real agent of CONSUL_HTTP_ADDR when it
// is set, otherwise the Consul API double, started with a 1 s
// session_ttl_min as an agent may be configured, so TTL and lock cases run
// in seconds.
import { after, before, describe, test } from "node:test";
import { openStore } from "../../mod.ts";
import { conformance } from "../../testing/mod.ts";
import { type ConsulService, startConsul } from "../services/consul.ts";
import { freePort } from "../services/process.ts";

let consul: ConsulService;

before(async () => {
  consul = await startConsul({ sessionTtlMinMs: 1_000 });
});

after(async () => {
  await consul?.stop();
});

conformance({ describe, test }, {
  name: "consul",
  open: (options) => openStore(consul.url, { ...consul.options, ...options }),
  // A port nobody listens on.
  openUnreachable: async (connectTimeout) =>
    await openStore(`consul://127.0.0.1:${await freePort()}`, {
      connectTimeout,
    }),
});
