// The conformance kit on the file backend (the embedded engine), opened by
// URL as users do, in a fresh temporary directory.
import { after, describe, test } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../mod.ts";
import { conformance } from "./conformance/mod.ts";

const dir = mkdtempSync(join(tmpdir(), "valkeyrie-file-kit-"));
after(() => rmSync(dir, { recursive: true, force: true }));

conformance({ describe, test }, {
  name: "file",
  open: (options) => openStore(`file:${join(dir, "kit.db")}`, options),
});
