// The command line: each command, its output for people and for scripts,
// its exit codes, and the real executable in a child process.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, test } from "node:test";
import { type CliIO, EXIT, progressLine, runCli } from "../../cli/mod.ts";
import { openStore, type Store } from "../../mod.ts";
import { Group } from "../../coordination/mod.ts";
import { eventually, text } from "../../testing/harness.ts";

const STORE = "memory:cli-test";

/** Runs the CLI in-process with captured output. */
async function cli(args: string[], stdin = "", signal?: AbortSignal) {
  let out = "";
  let err = "";
  const decoder = new TextDecoder();
  const io: CliIO = {
    out: (
      text,
    ) => (out += typeof text === "string" ? text : decoder.decode(text)),
    err: (text) => (err += text),
    readStdin: () => Promise.resolve(new TextEncoder().encode(stdin)),
    env: {},
    signal,
  };
  const code = await runCli(["--store", STORE, ...args], io);
  return { code, out, err };
}

describe("cli", () => {
  // Keeps the named memory database alive between commands.
  let keeper: Store;
  before(async () => {
    keeper = await openStore(STORE);
  });
  after(() => keeper.close());

  test("put, get, ls and rm work together", async () => {
    assert.equal((await cli(["put", "app/name", "valkeyrie"])).code, EXIT.ok);
    assert.equal((await cli(["put", "app/db/host", "10.0.0.5"])).code, 0);
    const got = await cli(["get", "app/name"]);
    assert.deepEqual([got.code, got.out], [0, "valkeyrie"]);
    const listed = await cli(["ls", "app"]);
    assert.equal(listed.out, "app/db/host = 10.0.0.5\napp/name = valkeyrie\n");
    assert.equal((await cli(["rm", "app/name"])).code, 0);
    assert.equal((await cli(["get", "app/name"])).code, EXIT.notFound);
    assert.equal((await cli(["rm", "-r", "app"])).code, 0);
    assert.equal((await cli(["ls"])).out, "");
  });

  test("--json prints machine-readable pairs, binary values as base64", async () => {
    await cli(["put", "j/text", "hi"]);
    await keeper.put("j/bin", new Uint8Array([0, 255, 1]));
    const got = JSON.parse((await cli(["--json", "get", "j/text"])).out);
    assert.equal(got.key, "j/text");
    assert.equal(got.value, "hi");
    assert.match(got.lastIndex, /^\d+$/);
    const listed = JSON.parse((await cli(["--json", "ls", "j"])).out);
    assert.deepEqual(listed.map((p: { key: string }) => p.key), [
      "j/bin",
      "j/text",
    ]);
    assert.equal(listed[0].base64, "AP8B");
    const missing = await cli(["--json", "get", "j/none"]);
    assert.deepEqual([missing.code, missing.out], [EXIT.notFound, "null\n"]);
    assert.equal(
      (await cli(["ls", "j"])).out.split("\n")[0],
      "j/bin = base64:AP8B",
    );
  });

  test("ls pages with --limit, --keys-only and --reverse", async () => {
    for (const k of ["a", "b", "c", "d"]) await cli(["put", `p/${k}`, k]);
    assert.equal(
      (await cli(["ls", "p", "--limit", "2"])).out,
      "p/a = a\np/b = b\n",
    );
    assert.equal(
      (await cli(["ls", "p", "--keys-only", "--reverse"])).out,
      "p/d\np/c\np/b\np/a\n",
    );
    assert.deepEqual(
      JSON.parse(
        (await cli(["--json", "ls", "p", "--keys-only", "--limit", "3"])).out,
      ),
      ["p/a", "p/b", "p/c"],
    );
    assert.equal(
      JSON.parse((await cli(["--json", "ls", "p"])).out).length,
      4,
    );
    const bad = await cli(["ls", "p", "--limit", "0"]);
    assert.equal(bad.code, EXIT.usage);
    assert.match(bad.err, /--limit must be a whole number/);
  });

  test("watch-events prints the tree as puts, synced, then each change; --from resumes", async () => {
    await keeper.put("e/a", "1");
    const controller = new AbortController();
    let out = "";
    let wake = () => {};
    const io: CliIO = {
      out: (text) => {
        out += typeof text === "string" ? text : new TextDecoder().decode(text);
        wake();
      },
      err: () => {},
      readStdin: () => Promise.resolve(new Uint8Array()),
      env: {},
      signal: controller.signal,
    };
    const lines = () =>
      out.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
    // Bounded by the CLI printing, not by time: a line that never comes
    // fails after 30 s instead of hanging the suite.
    const deadline = AbortSignal.timeout(30_000);
    const until = async (match: (line: { type: string }) => boolean) => {
      while (!lines().some(match)) {
        deadline.throwIfAborted();
        await new Promise<void>((resolve) => {
          wake = resolve;
          deadline.addEventListener("abort", () => resolve(), { once: true });
        });
      }
    };
    const running = runCli(
      ["--store", STORE, "--json", "watch-events", "e", "--from", "1"],
      io,
    );
    await until((l) => l.type === "synced");
    await keeper.put("e/b", "2");
    await until((l) =>
      l.type === "put" && (l as { key?: string }).key === "e/b"
    );
    controller.abort();
    assert.equal(await running, EXIT.interrupted);
    const seen = lines();
    assert.equal(seen[0].type, "reset", "memory: keeps no history");
    assert.equal(seen[1].key, "e/a");
    assert.equal(seen[1].value, "1");
    assert.equal(seen[2].type, "synced");
    assert.equal(seen.at(-1).key, "e/b");
    const bad = await cli(["watch-events", "e", "--from", "x"]);
    assert.equal(bad.code, EXIT.usage);
  });

  test("incr adds to a counter and prints it; arguments after -- may start with -", async () => {
    assert.deepEqual(
      [
        (await cli(["incr", "c/hits"])).out,
        (await cli(["incr", "c/hits", "41"])).out,
      ],
      ["1\n", "42\n"],
    );
    assert.equal((await cli(["incr", "c/hits", "--", "-50"])).out, "-8\n");
    assert.deepEqual(
      JSON.parse((await cli(["--json", "incr", "c/hits"])).out),
      {
        value: "-7",
      },
    );
    const bad = await cli(["incr", "c/hits", "1.5"]);
    assert.equal(bad.code, EXIT.usage);
    assert.match(bad.err, /DELTA must be a whole number/);
    await cli(["put", "c/text", "words"]);
    const notCounter = await cli(["incr", "c/text"]);
    assert.equal(notCounter.code, EXIT.storeError);
    assert.match(notCounter.err, /not a counter/);
    assert.equal((await cli(["put", "c/neg", "--", "-5"])).code, EXIT.ok);
    assert.equal((await cli(["get", "c/neg"])).out, "-5");
  });

  test("put reads standard input for - and honours --ttl", async () => {
    await cli(["put", "in", "-"], "from stdin");
    assert.equal((await cli(["get", "in"])).out, "from stdin");
    // A second: the get right after the put cannot be late for it on a
    // loaded machine; the one after the sleep (which load only lengthens)
    // comes past the ttl and the memory store's 50 ms granularity.
    await cli(["put", "--ttl", "1000", "short", "v"]);
    assert.equal((await cli(["get", "short"])).code, 0);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    assert.equal((await cli(["get", "short"])).code, EXIT.notFound);
  });

  test("wrong usage and store errors give clear messages and exit codes", async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [["frob"], EXIT.usage, /unknown command "frob"/],
      [["get"], EXIT.usage, /get takes KEY/],
      [["put", "k"], EXIT.usage, /put takes KEY VALUE/],
      [["--ttl", "soon", "put", "k", "v"], EXIT.usage, /--ttl must be/],
      [["--nope"], EXIT.usage, /Unknown option/i],
      [["lock", "k"], EXIT.usage, /needs a command after --/],
      [["get", "a//b"], EXIT.storeError, /Invalid key "a\/\/b"/],
      [
        ["--store", "nope://x", "ls"],
        EXIT.storeError,
        /No backend for URL scheme/,
      ],
    ];
    for (const [args, code, message] of cases) {
      const result = await cli(args);
      assert.equal(result.code, code, args.join(" "));
      assert.match(result.err, message, args.join(" "));
    }
    assert.equal((await cli(["help"])).code, 0);
    assert.match((await cli(["help"])).out, /Usage: valkeyrie/);
  });

  test("lock holds the lock while its command runs and returns its exit code", async () => {
    // The command runs until the test lets it end (a file appears), not for
    // a time a loaded machine might outlast before the checks are done.
    const dir = mkdtempSync(join(tmpdir(), "valkeyrie-cli-lock-"));
    const done = join(dir, "done");
    try {
      const run = cli([
        "lock",
        "--value",
        "cli",
        "jobs/x",
        "--",
        "sh",
        "-c",
        'while [ ! -e "$0" ]; do sleep 0.02; done; exit 3',
        done,
      ]);
      const deadline = Date.now() + 10_000;
      while ((await keeper.get("jobs/x")) === null) {
        assert.ok(Date.now() < deadline, "the lock is taken within 10 s");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(
        new TextDecoder().decode((await keeper.get("jobs/x"))!.value),
        "cli",
      );
      await assert.rejects(
        keeper.lock("jobs/x", { signal: AbortSignal.timeout(100) }),
        (error: Error) => error.name === "TimeoutError",
      );
      writeFileSync(done, "");
      assert.equal((await run).code, 3);
      // Released when the command ended: a lock left held would be free
      // only after the 20 s default TTL, if ever (it renews itself).
      await (await keeper.lock("jobs/x", {
        signal: AbortSignal.timeout(10_000),
      })).unlock();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("lock --try gives up at once when held, --timeout after its time", async () => {
    const held = await keeper.lock("jobs/busy", { ttl: 60_000 });
    try {
      // Held for a minute: an attempt that waited would not end before the
      // test's deadline, let alone at once.
      const tried = await cli(["lock", "--try", "jobs/busy", "--", "true"]);
      assert.equal(tried.code, EXIT.lockBusy);
      assert.match(tried.err, /lock on "jobs\/busy" is held/);
      const timed = await cli([
        "lock",
        "--timeout",
        "200",
        "jobs/busy",
        "--",
        "true",
      ]);
      assert.equal(timed.code, EXIT.lockBusy);
      assert.match(timed.err, /waited 200 ms/);
    } finally {
      await held.unlock();
    }
    const free = await cli([
      "lock",
      "--try",
      "jobs/busy",
      "--",
      "sh",
      "-c",
      'test -n "$VALKEYRIE_LOCK_TOKEN" && exit 7',
    ]);
    assert.equal(free.code, 7, "a free lock runs the command with its token");
    for (
      const args of [
        ["lock", "--timeout", "0", "k", "--", "true"],
        ["lock", "--timeout", "2147483648", "k", "--", "true"],
        ["lock", "--timeout", "1.5", "k", "--", "true"],
        ["lock", "--try", "--timeout", "5", "k", "--", "true"],
      ]
    ) {
      const result = await cli(args);
      assert.equal(result.code, EXIT.usage, args.join(" "));
      assert.match(result.err, /--timeout|--try/, args.join(" "));
    }
  });

  test("elect runs its command as leader; members follows a group", async () => {
    const elected = await cli([
      "elect",
      "svc/leader",
      "node-1",
      "--",
      "sh",
      "-c",
      'test "$VALKEYRIE_LOCK_KEY" = svc/leader && exit 6',
    ]);
    assert.equal(elected.code, 6);
    assert.equal(
      new TextDecoder().decode((await keeper.get("svc/leader"))!.value),
      "node-1",
      "the leader's value is at NAME for followers",
    );
    assert.equal((await cli(["elect", "svc/leader"])).code, EXIT.usage);
    await using joined = await new Group(keeper, "svc/workers").join("w1", {
      value: "10.0.0.1",
    });
    let printed = "";
    const controller = new AbortController();
    const following = runCli([
      "--store",
      STORE,
      "--json",
      "members",
      "svc/workers",
    ], {
      out: (text) => (printed += String(text)),
      err: () => {},
      readStdin: () => Promise.resolve(new Uint8Array()),
      env: {},
      signal: controller.signal,
    });
    const deadline = Date.now() + 10_000;
    while (!printed.includes("\n")) {
      assert.ok(Date.now() < deadline, "members prints the group");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    controller.abort();
    await following;
    assert.deepEqual(JSON.parse(printed.split("\n")[0]), [
      { id: "w1", value: "10.0.0.1" },
    ]);
    assert.equal(joined.lost.aborted, false);
  });

  test("watch prints the key now and after each change until stopped", async () => {
    const controller = new AbortController();
    const watching = cli(["watch", "w/k"], "", controller.signal);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await keeper.put("w/k", "one");
    await keeper.delete("w/k");
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    const { out, code } = await watching;
    assert.equal(code, EXIT.interrupted);
    const lines = out.trim().split("\n");
    assert.equal(lines[0], "w/k (absent)");
    assert.match(lines[1], /^w\/k = one {2}\(index \d+\)$/);
    assert.equal(lines[2], "w/k (absent)");
  });

  test("verify checks every page of a file store and reports damage", async () => {
    const dir = mkdtempSync(join(tmpdir(), "valkeyrie-cli-verify-"));
    try {
      const path = join(dir, "data.db");
      const file = ["--store", `file:${path}`];
      const store = await openStore(`file:${path}`);
      await Promise.all(
        Array.from(
          { length: 300 },
          (_, i) => store.put(`k/${i}`, "v".repeat(100)),
        ),
      );
      await store.close();
      const healthy = await cli([...file, "verify"]);
      assert.equal(healthy.code, EXIT.ok, healthy.err);
      assert.match(
        healthy.out,
        /^ok: 300 keys, \d+ pages \(\d+ free, 0 leaked\)\n$/,
      );
      const report = JSON.parse((await cli([...file, "--json", "verify"])).out);
      assert.deepEqual([report.ok, report.keys, report.errors], [
        true,
        300,
        [],
      ]);
      // Damage each page in turn until one that opening does not check (a
      // page of the tree) is found by verify.
      const bytes = readFileSync(path);
      let damaged: Awaited<ReturnType<typeof cli>> | undefined;
      for (let page = 1; page < bytes.length / 4096 && !damaged; page++) {
        const copy = new Uint8Array(bytes);
        copy[page * 4096 + 2048] ^= 0xff;
        writeFileSync(path, copy);
        const result = await cli([...file, "verify"]);
        if (result.out.startsWith("damaged:")) damaged = result;
        else if (result.code !== EXIT.ok) {
          assert.equal(result.code, EXIT.storeError, result.err);
        }
      }
      assert.ok(damaged, "verify reported no damaged page");
      assert.equal(damaged.code, EXIT.storeError);
      assert.match(damaged.err, /checksum/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const memory = await cli(["verify"]);
    assert.equal(memory.code, EXIT.usage);
    assert.match(memory.err, /a memory: store has none/);
  });

  test("the executable runs as a program in this runtime", () => {
    const program = "Deno" in globalThis
      ? [process.execPath, "run", "-A", "cli/main.ts"]
      : process.versions.bun
      ? [process.execPath, "cli/main.ts"]
      : [process.execPath, "dist/cli.js"];
    const [command, ...args] = program;
    const ok = execFileSync(command, [...args, "--store", "memory:", "ls"], {
      encoding: "utf8",
      timeout: 30_000,
    });
    assert.equal(ok, "");
    const missing = spawnSync(command, [
      ...args,
      "--store",
      "memory:",
      "get",
      "x",
    ], {
      encoding: "utf8",
      timeout: 30_000,
    });
    assert.equal(missing.status, EXIT.notFound);
    assert.match(missing.stderr, /key not found: x/);
  });
});

describe("cli dump, restore and copy", () => {
  let source: Store;
  let target: Store;
  before(async () => {
    source = await openStore(STORE);
    target = await openStore("memory:cli-copy-target");
  });
  after(async () => {
    await source.close();
    await target.close();
  });

  test("dump prints NDJSON that restore reads back, TTLs included", async () => {
    await source.put("d/a", "1");
    await source.put("d/bin", new Uint8Array([0, 1, 2]));
    await source.put("d/ttl", "t", { ttl: 60_000 });
    const dumped = await cli(["dump", "d"]);
    assert.equal(dumped.code, EXIT.ok, dumped.err);
    const lines = dumped.out.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.key), ["d/a", "d/bin", "d/ttl"]);
    assert.equal(lines[1].value, "AAEC");
    assert.ok(lines[2].ttl > 0 && lines[2].ttl <= 60_000);
    const restored = await cli(["--prefix", "again", "restore"], dumped.out);
    assert.equal(restored.code, EXIT.ok, restored.err);
    assert.match(restored.err, /restored 3 keys/);
    const back = await source.list("again/d");
    assert.deepEqual(back.map((p) => p.key), [
      "again/d/a",
      "again/d/bin",
      "again/d/ttl",
    ]);
    assert.deepEqual(back[1].value, new Uint8Array([0, 1, 2]));
    // A bad dump is a store error naming the line, exit 3.
    const bad = await cli(["restore"], '{"key":"x","value":"aGk="}\nnope\n');
    assert.equal(bad.code, EXIT.storeError);
    assert.match(bad.err, /dump line 2 is not JSON/);
  });

  test("copy --from --to copies a tree; without --to it is a usage error", async () => {
    await source.put("c/one", "1");
    await source.put("c/two", "2");
    const copied = await cli([
      "copy",
      "c",
      "--from",
      STORE,
      "--to",
      "memory:cli-copy-target",
    ]);
    assert.equal(copied.code, EXIT.ok, copied.err);
    assert.match(copied.err, /copied 2 keys/);
    assert.deepEqual((await target.list("c")).map((p) => p.key), [
      "c/one",
      "c/two",
    ]);
    const missing = await cli(["copy", "c"]);
    assert.equal(missing.code, EXIT.usage);
    assert.match(missing.err, /copy needs --to URL/);
  });

  test("copy --follow mirrors changes until Ctrl-C, then exits 0", async () => {
    await source.put("f/a", "1");
    const stop = new AbortController();
    const running = cli(
      ["copy", "f", "--to", "memory:cli-copy-target", "--follow"],
      "",
      stop.signal,
    );
    await eventually(
      "the first pass",
      5_000,
      async () => (await target.get("f/a")) !== null,
    );
    await source.put("f/b", "2");
    await source.delete("f/a");
    await eventually(
      "the changes",
      5_000,
      async () =>
        (await target.get("f/b")) !== null &&
        (await target.get("f/a")) === null,
    );
    stop.abort("SIGINT");
    const { code, err } = await running;
    assert.equal(code, EXIT.ok, err);
    assert.match(err, /following changes/);
  });

  test("progress on a terminal: keys, rate, and with the keys counted, share and ETA", async () => {
    assert.equal(
      progressLine("dumped", 500, undefined, 2_000),
      "dumped 500 keys, 250 keys/s",
    );
    assert.equal(
      progressLine("dumped", 500, 2_000, 2_000),
      "dumped 500 of 2000 keys (25%), 250 keys/s, ETA 6 s",
    );
    assert.equal(
      progressLine("copied", 1_000, 1_000_000, 10_000),
      "copied 1000 of 1000000 keys (0%), 100 keys/s, ETA 2 h 46 min",
    );
    assert.equal(
      progressLine("copied", 600, 12_600, 6_000),
      "copied 600 of 12600 keys (4%), 100 keys/s, ETA 2 min 0 s",
    );
    // Keys written meanwhile can pass the count: no share then.
    assert.equal(
      progressLine("copied", 30, 20, 1_000),
      "copied 30 keys, 30 keys/s",
    );
    // A dump on a terminal shows its line on standard error and ends it.
    await source.putMany(
      Array.from({ length: 300 }, (_, i) => ({ key: `p/${i}`, value: "x" })),
    );
    let err = "";
    let out = "";
    const code = await runCli(["--store", STORE, "dump", "p"], {
      out: (chunk) => (out += typeof chunk === "string" ? chunk : ""),
      err: (chunk) => (err += chunk),
      readStdin: () => Promise.resolve(new Uint8Array()),
      env: {},
      progress: true,
    });
    assert.equal(code, EXIT.ok);
    assert.equal(out.trim().split("\n").length, 300);
    assert.match(err, /^\rdumped \d+ (of 300 )?keys/);
    assert.ok(err.endsWith("\n"));
  });
});

describe("cli conveniences", () => {
  let keeper: Store;
  before(async () => {
    keeper = await openStore(STORE);
  });
  after(() => keeper.close());

  test("--version prints the version package.json declares, as do jsr.json and deno.json", async () => {
    const { code, out } = await cli(["--version"]);
    assert.equal(code, EXIT.ok);
    for (const file of ["package.json", "jsr.json", "deno.json"]) {
      const { version } = JSON.parse(readFileSync(file, "utf8"));
      assert.equal(out, `valkeyrie ${version}\n`, file);
    }
  });

  test("help COMMAND and COMMAND --help print that command's usage and options", async () => {
    const help = await cli(["help", "put"]);
    assert.equal(help.code, EXIT.ok);
    assert.match(help.out, /^Usage: valkeyrie \[options\] put KEY VALUE\n/);
    assert.match(help.out, /--if-index N/);
    assert.doesNotMatch(help.out, /--keys-only/);
    const flag = await cli(["ls", "--help"]);
    assert.match(flag.out, /^Usage: valkeyrie \[options\] ls \[PREFIX\]/);
    assert.match(flag.out, /--keys-only/);
    const unknown = await cli(["help", "frobnicate"]);
    assert.equal(unknown.code, EXIT.usage);
  });

  test("completion prints a script for bash, zsh and fish naming the commands", async () => {
    for (const shell of ["bash", "zsh", "fish"]) {
      const { code, out } = await cli(["completion", shell]);
      assert.equal(code, EXIT.ok, shell);
      assert.match(out, /watch-events/, shell);
      assert.match(out, /if-absent/, shell);
    }
    assert.equal((await cli(["completion", "tcsh"])).code, EXIT.usage);
  });

  test("the bash completion completes commands and options in bash itself", async () => {
    const { out } = await cli(["completion", "bash"]);
    const dir = mkdtempSync(join(tmpdir(), "cli-completion-"));
    try {
      const file = join(dir, "valkeyrie.bash");
      writeFileSync(file, out);
      const complete = (...words: string[]) =>
        execFileSync("bash", [
          "-c",
          `source "$0"; COMP_WORDS=(${
            words.map((w) => `'${w}'`).join(" ")
          }); COMP_CWORD=${
            words.length - 1
          }; _valkeyrie; echo "\${COMPREPLY[*]}"`,
          file,
        ], { encoding: "utf8", timeout: 30_000 }).trim();
      assert.equal(complete("valkeyrie", "watch-e"), "watch-events");
      assert.equal(complete("valkeyrie", "--store", "x", "res"), "restore");
      assert.equal(complete("valkeyrie", "put", "k", "--if-a"), "--if-absent");
      // After the command, words are keys: nothing is offered.
      assert.equal(complete("valkeyrie", "get", "con"), "");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("put --if-absent and --if-index N are compare-and-set, exit 6 on a conflict", async () => {
    const first = await cli(["--json", "put", "cas/k", "one", "--if-absent"]);
    assert.equal(first.code, EXIT.ok, first.err);
    const index = JSON.parse(first.out).lastIndex;
    const again = await cli(["put", "cas/k", "two", "--if-absent"]);
    assert.equal(again.code, EXIT.conflict);
    const stale = await cli([
      "put",
      "cas/k",
      "two",
      "--if-index",
      `${BigInt(index) + 7n}`,
    ]);
    assert.equal(stale.code, EXIT.conflict);
    assert.equal(text(await keeper.get("cas/k")), "one");
    const ok = await cli(["put", "cas/k", "two", "--if-index", index]);
    assert.equal(ok.code, EXIT.ok, ok.err);
    assert.equal(text(await keeper.get("cas/k")), "two");
    assert.equal(
      (await cli(["put", "cas/k", "x", "--if-index", "abc"])).code,
      EXIT.usage,
    );
  });

  test("txn applies its steps all together, or nothing when a check fails", async () => {
    await keeper.put("txn/a", "1");
    const a = (await keeper.get("txn/a"))!;
    const steps = [
      `check txn/a ${a.lastIndex}`,
      "check txn/new absent",
      "# a comment",
      "put txn/new hello world, with spaces",
      "put-ttl txn/short 60000 brief",
      "delete txn/a",
      "incr txn/count 5",
    ].join("\n");
    const done = await cli(["txn"], steps);
    assert.equal(done.code, EXIT.ok, done.err);
    assert.match(done.out, /^ok [0-9]+\n$/);
    assert.equal(text(await keeper.get("txn/new")), "hello world, with spaces");
    assert.equal(text(await keeper.get("txn/count")), "5");
    assert.equal(await keeper.get("txn/a"), null);
    // The same again: txn/new exists now, so nothing is written.
    const failed = await cli(
      ["txn"],
      "check txn/new absent\nput txn/other x\n",
    );
    assert.equal(failed.code, EXIT.conflict);
    assert.equal(await keeper.get("txn/other"), null);
    const bad = await cli(["txn"], "put txn/x 1\nfrobnicate txn/y\n");
    assert.equal(bad.code, EXIT.usage);
    assert.match(bad.err, /txn line 2: unknown step "frobnicate"/);
    assert.equal(await keeper.get("txn/x"), null);
  });

  test("ls quotes values with line breaks; get ends with a newline on a terminal only", async () => {
    await keeper.put("show/multi", "line one\nline two");
    await keeper.put("show/plain", "plain");
    const ls = await cli(["ls", "show"]);
    assert.equal(
      ls.out,
      'show/multi = "line one\\nline two"\nshow/plain = plain\n',
    );
    assert.equal((await cli(["get", "show/plain"])).out, "plain");
    let out = "";
    const code = await runCli(["--store", STORE, "get", "show/plain"], {
      out: (
        t,
      ) => (out += typeof t === "string" ? t : new TextDecoder().decode(t)),
      err: () => {},
      readStdin: () => Promise.resolve(new Uint8Array()),
      env: {},
      terminal: true,
    });
    assert.equal(code, EXIT.ok);
    assert.equal(out, "plain\n");
  });

  test("--json makes errors JSON objects with a code", async () => {
    const usageError = await cli(["--json", "frobnicate"]);
    assert.equal(usageError.code, EXIT.usage);
    assert.deepEqual(JSON.parse(usageError.err), {
      error: { code: "USAGE", message: 'unknown command "frobnicate"' },
    });
    const storeError = await cli(["--json", "put", "a//b", "x"]);
    assert.equal(storeError.code, EXIT.storeError);
    const { error } = JSON.parse(storeError.err);
    assert.equal(error.code, "INVALID_KEY");
    assert.equal(error.name, "InvalidKeyError");
    const badOption = await cli(["--json", "--frobnicate"]);
    assert.equal(JSON.parse(badOption.err).error.code, "USAGE");
  });
});
