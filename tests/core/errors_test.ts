// Errors keep their literal names and stable codes, also after minification,
// and isStoreError() recognises an error of another loaded copy of the
// library, where instanceof cannot.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { after, describe, test } from "node:test";
import * as errors from "../../core/errors.ts";

const CODES: Record<string, string> = {
  StoreError: "STORE_ERROR",
  KeyError: "KEY_ERROR",
  KeyNotFoundError: "KEY_NOT_FOUND",
  KeyExistsError: "KEY_EXISTS",
  KeyModifiedError: "KEY_MODIFIED",
  PreviousNotSpecifiedError: "PREVIOUS_NOT_SPECIFIED",
  InvalidKeyError: "INVALID_KEY",
  ValueTooLargeError: "VALUE_TOO_LARGE",
  InvalidArgumentError: "INVALID_ARGUMENT",
  NotReachableError: "NOT_REACHABLE",
  LockLostError: "LOCK_LOST",
  InvalidConfigurationError: "INVALID_CONFIGURATION",
  UnknownBackendError: "UNKNOWN_BACKEND",
  StoreClosedError: "STORE_CLOSED",
  CallNotSupportedError: "CALL_NOT_SUPPORTED",
  BulkWriteError: "BULK_WRITE_FAILED",
};

// deno-lint-ignore no-explicit-any
type AnyError = new (...args: any[]) => errors.StoreError;
function make(
  module: Record<string, unknown>,
  name: string,
): errors.StoreError {
  const Class = module[name] as AnyError;
  return new Class("k", "reason", 1);
}

const dir = mkdtempSync(join(tmpdir(), "valkeyrie-errors-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("errors", () => {
  test("every error class has its literal name and stable code, and is a StoreError by brand", () => {
    const classes = Object.keys(errors).filter((name) =>
      /^[A-Z]\w*Error$/.test(name)
    );
    assert.deepEqual(classes.sort(), Object.keys(CODES).sort());
    for (const [name, code] of Object.entries(CODES)) {
      const error = make(errors, name);
      assert.equal(error.name, name);
      assert.equal(error.code, code);
      assert.ok(errors.isStoreError(error), name);
      assert.ok(error instanceof errors.StoreError);
    }
    assert.equal(errors.isStoreError(new Error("plain")), false);
    assert.equal(
      errors.isStoreError({ name: "StoreError", code: "STORE_ERROR" }),
      false,
    );
    assert.equal(errors.isStoreError(null), false);
  });

  test("a minified second copy keeps names and codes, and its errors are recognised by brand", async () => {
    const out = join(dir, "errors.min.mjs");
    execFileSync(resolve("node_modules/.bin/esbuild"), [
      resolve("core/errors.ts"),
      "--bundle",
      "--minify",
      "--format=esm",
      `--outfile=${out}`,
    ], { stdio: "pipe" });
    const copy = await import(pathToFileURL(out).href) as Record<
      string,
      unknown
    >;
    for (const [name, code] of Object.entries(CODES)) {
      const error = make(copy, name);
      assert.equal(error.name, name, "the name survives minification");
      assert.equal(error.code, code);
      assert.equal(
        error instanceof errors.StoreError,
        false,
        "another copy's class",
      );
      assert.ok(errors.isStoreError(error), `${name} by brand`);
    }
  });
});
