// The conformance kit on the file backend (the embedded engine), opened by
// URL as users do, in a fresh temporary directory: once with every handle
// of the case sharing this process's database, and once with the case's
// other handles joining the file through its owner's socket, as other
// processes do (the first handle owns the file, the others are clients).
import { after, describe, test } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../../mod.ts";
import { conformance } from "../../testing/mod.ts";

const dir = mkdtempSync(join(tmpdir(), "valkeyrie-file-kit-"));
after(() => rmSync(dir, { recursive: true, force: true }));

conformance({ describe, test }, {
  name: "file",
  open: (options) => openStore(`file:${join(dir, "kit.db")}`, options),
});

conformance({ describe, test }, {
  name: "file, handles as separate processes",
  open: (options) =>
    openStore(`file:${join(dir, "clients.db")}?isolated=true`, options),
});
