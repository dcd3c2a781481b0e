// The CLI on a file: store under the least Deno permissions the file
// backend's page lists (no -A): read and write on the database's directory
// and on the owners' socket directory, net (Deno asks it for Unix sockets),
// and the one environment variable the CLI reads; `lock` adds run and env.
// A second process's watch hears a put made under the same permissions.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { after, describe, test } from "node:test";

const deno = "Deno" in globalThis ? process.execPath : "deno";
const root = resolve(".");
const dir = mkdtempSync(join(tmpdir(), "valkeyrie-cli-permissions-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const SOCKETS = "/tmp/valkeyrie";
const base = [
  `--allow-read=${dir},${SOCKETS},${root}`,
  `--allow-write=${dir},${SOCKETS}`,
  "--allow-net",
];
const least = [...base, "--allow-env=VALKEYRIE_STORE"];
const env = { ...process.env, NO_COLOR: "1" };

function cli(permissions: string[], args: string[]) {
  return spawnSync(deno, [
    "run",
    ...permissions,
    join(root, "cli/main.ts"),
    ...args,
  ], {
    cwd: dir,
    env,
    encoding: "utf8",
  });
}

describe("the CLI under Deno's least permissions for file:", () => {
  test("put, get and ls work, and a missing permission is a clear error", () => {
    const put = cli(least, ["put", "config/greeting", "hello"]);
    assert.equal(put.status, 0, put.stderr);
    const get = cli(least, ["get", "config/greeting"]);
    assert.equal(get.status, 0, get.stderr);
    assert.equal(get.stdout.trim(), "hello");
    const ls = cli(least, ["ls", "config"]);
    assert.equal(ls.stdout.trim(), "config/greeting = hello");
    const denied = cli(least.filter((p) => p !== "--allow-net"), [
      "get",
      "config/greeting",
    ]);
    assert.notEqual(denied.status, 0);
  });

  test("a watch in one process hears a put from another", async () => {
    const watch = spawn(deno, [
      "run",
      ...least,
      join(root, "cli/main.ts"),
      "watch",
      "live/k",
    ], {
      cwd: dir,
      env,
    });
    let out = "";
    const heard = (text: string) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`watch printed ${JSON.stringify(out)}`)),
          60_000,
        );
        const check = () => {
          if (out.includes(text)) {
            clearTimeout(timer);
            resolve();
          }
        };
        watch.stdout.on("data", (chunk: Uint8Array) => {
          out += new TextDecoder().decode(chunk);
          check();
        });
        check();
      });
    const exited = new Promise<string>((resolve) =>
      watch.on(
        "exit",
        (code, signal) =>
          resolve(code === null ? String(signal) : String(code)),
      )
    );
    try {
      await heard("live/k (absent)");
      const put = cli(least, ["put", "live/k", "from another process"]);
      assert.equal(put.status, 0, put.stderr);
      await heard("live/k = from another process");
    } finally {
      watch.kill("SIGTERM");
      // It ran until signalled (it heard the put above). The CLI exits 130
      // once the signal stopped its watch; Deno's child_process reports a
      // child's exit above 128 as a signal, so that is accepted too.
      assert.match(await exited, /^(130|SIGINT|SIGTERM)$/);
    }
  });

  test("lock runs its command with the key and fencing token (adding run and env)", () => {
    const locked = cli([...base, "--allow-env", "--allow-run"], [
      "lock",
      "jobs/nightly",
      "--",
      "sh",
      "-c",
      'echo "$VALKEYRIE_LOCK_KEY $VALKEYRIE_LOCK_TOKEN"',
    ]);
    assert.equal(locked.status, 0, locked.stderr);
    assert.match(locked.stdout.trim(), /^jobs\/nightly \d+$/);
  });
});
