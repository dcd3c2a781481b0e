// Opening a file: store by URL: file:// URLs and URL objects are
// percent-decoded, and the CLI's reads in an empty directory create no file.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, describe, test } from "node:test";
import { openStore } from "../../mod.ts";
import { type CliIO, EXIT, runCli } from "../../cli/mod.ts";

const dir = mkdtempSync(join(tmpdir(), "valkeyrie-file-open-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function io(): CliIO & { output: () => string } {
  let out = "";
  return {
    out: (
      text,
    ) => (out += typeof text === "string"
      ? text
      : new TextDecoder().decode(text)),
    err: () => {},
    readStdin: () => Promise.resolve(new Uint8Array()),
    env: {},
    output: () => out,
  };
}

describe("opening file: stores", () => {
  test("a URL object and a file:// URL with escapes open the decoded path", async () => {
    const path = join(dir, "my data.db");
    const byObject = await openStore(pathToFileURL(path));
    await byObject.put("k", "v");
    await byObject.close();
    assert.ok(existsSync(path), "the decoded name");
    assert.equal(existsSync(join(dir, "my%20data.db")), false);
    const byText = await openStore(pathToFileURL(path).href);
    assert.equal(new TextDecoder().decode((await byText.get("k"))!.value), "v");
    await byText.close();
  });

  test("get and ls in an empty directory create no file", async () => {
    const empty = mkdtempSync(join(dir, "empty-"));
    const store = `file:${join(empty, "valkeyrie.db")}`;
    assert.equal(
      await runCli(["--store", store, "get", "k"], io()),
      EXIT.notFound,
    );
    const listing = io();
    assert.equal(await runCli(["--store", store, "ls"], listing), EXIT.ok);
    assert.equal(listing.output(), "");
    assert.deepEqual(readdirSync(empty), []);
    // A write does create it.
    assert.equal(
      await runCli(["--store", store, "put", "k", "v"], io()),
      EXIT.ok,
    );
    assert.deepEqual(readdirSync(empty), ["valkeyrie.db"]);
  });
});
