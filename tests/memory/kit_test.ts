// The conformance kit on the memory backend, opened by URL as users do.
import { describe, test } from "node:test";
import { openStore } from "../../mod.ts";
import { conformance } from "../../testing/mod.ts";

conformance({ describe, test }, {
  name: "memory",
  open: (options) => openStore("memory:conformance", options),
});
