// Every code snippet of the README runs, in the runtimes it claims: the
// TypeScript ones (with `await using`) in Deno and Bun, the JavaScript one
// written for Node 20 in Node (and the others). Each snippet becomes a
// module of its own: its imports of the package point at this checkout (the
// source, or for Node the npm build in dist/, which test_all.sh builds
// first), the Redis URL at a server this test starts, and what a snippet
// leaves to the reader (the `store` of the first one, a `signal` that ends
// its watches, the `lock` of the one before) is given by a prelude — only
// the names the snippet does not declare itself.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { after, before, describe, test } from "node:test";
import { type RedisService, startRedis } from "../services/redis.ts";

const root = resolve(".");
const here = "Deno" in globalThis
  ? "deno"
  : process.versions.bun
  ? "bun"
  : "node";
const jsr = JSON.parse(readFileSync(join(root, "jsr.json"), "utf8")) as {
  exports: Record<string, string>;
};
const PACKAGE = "@valkeyrie/valkeyrie";
// Inside the checkout (.tmp/ is ignored by git, fmt and lint), so Deno and
// Bun resolve the npm clients from its node_modules as the library does.
mkdirSync(join(root, ".tmp"), { recursive: true });
const dir = mkdtempSync(join(root, ".tmp", "readme-"));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Snippet {
  language: "ts" | "js";
  line: number;
  code: string;
}

/** The README's ```ts and ```js blocks, but those marked `ignore`. */
function snippets(): Snippet[] {
  const text = readFileSync(join(root, "README.md"), "utf8");
  const found: Snippet[] = [];
  for (const match of text.matchAll(/```(ts|js)([^\n]*)\n([\s\S]*?)```/g)) {
    if (match[2].includes("ignore")) continue;
    found.push({
      language: match[1] as "ts" | "js",
      line: text.slice(0, match.index).split("\n").length,
      code: match[3],
    });
  }
  return found;
}

/** Where an import of the package goes: the source, or Node's dist/ build. */
function target(specifier: string, language: "ts" | "js"): string {
  const subpath = specifier === PACKAGE
    ? "."
    : `.${specifier.slice(PACKAGE.length)}`;
  const file = jsr.exports[subpath];
  assert.ok(file, `the README imports ${specifier}, which is not exported`);
  const path = language === "js"
    ? join(root, "dist", `${subpath === "." ? "mod" : subpath.slice(2)}.js`)
    : join(root, file);
  return pathToFileURL(path).href;
}

/** What a snippet may leave to the reader, set up before it runs. */
const PRELUDE: [name: string, setup: string][] = [
  ["store", `await using store = await openStore("memory:readme");`],
  [
    "pair",
    `await store.put("config/version", "1");
const pair = await store.get("config/version");`,
  ],
  ["signal", `const signal = AbortSignal.timeout(500);`],
  ["lock", `await using lock = await store.lock("readme/lock");`],
  ["report", `const report = "all good";`],
  [
    "runJob",
    `const runJob = (job: { fencingToken: bigint; signal: AbortSignal }) =>
  Promise.resolve(job);`,
  ],
];

/** The snippet as a module that runs on its own. */
function program(snippet: Snippet, redisUrl: string): string {
  const imports: string[] = [];
  const body: string[] = [];
  for (const line of snippet.code.split("\n")) {
    const imported = /^import .* from "([^"]+)";/.exec(line);
    if (!imported) {
      body.push(line.replaceAll("redis://127.0.0.1:6379", redisUrl));
    } else if (imported[1].startsWith(PACKAGE)) {
      imports.push(
        line.replace(imported[1], target(imported[1], snippet.language)),
      );
    } else imports.push(line);
  }
  const code = body.join("\n");
  // What the code names, comments aside ("// ... lock.unlock()").
  const named = code.replace(/\/\/.*$/gm, "");
  const declares = (name: string) =>
    new RegExp(`\\b(?:const|let|var|using)\\s+${name}\\b`).test(named);
  const uses = (name: string) => new RegExp(`\\b${name}\\b`).test(named);
  const given = PRELUDE.filter(([name]) => !declares(name) && uses(name));
  // Every given name the ones it needs: pair and lock need store.
  const needed = new Set(given.map(([name]) => name));
  if (needed.has("pair") || needed.has("lock")) needed.add("store");
  const prelude = PRELUDE.filter(([name]) => needed.has(name))
    .map(([, setup]) => setup);
  if (prelude.length > 0 && !imports.some((l) => /\bopenStore\b/.test(l))) {
    imports.unshift(
      `import { openStore } from "${target(PACKAGE, snippet.language)}";`,
    );
  }
  // A watch that runs until its signal ends is done when it ends.
  const until = needed.has("signal")
    ? `} catch (error) {
  if (!(signal.aborted && error === signal.reason)) throw error;
}`
    : "} finally {}";
  return `${imports.join("\n")}
${prelude.join("\n")}
try {
${code}
${until}
`;
}

function run(file: string) {
  const argv = here === "deno"
    ? [process.execPath, "run", "-A", file]
    : [process.execPath, file];
  return spawnSync(argv[0], argv.slice(1), {
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, NO_COLOR: "1" },
  });
}

describe(`README snippets (${here})`, () => {
  let redis: RedisService;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis?.stop());

  const all = snippets();
  test("the README has the snippets this test runs", () => {
    assert.ok(all.filter((s) => s.language === "ts").length >= 8);
    assert.ok(all.some((s) => s.language === "js"), "a form for Node 20");
  });

  for (const snippet of all) {
    // Node 20, the declared engine, runs JavaScript and no `await using`.
    if (here === "node" && snippet.language === "ts") continue;
    test(`the ${snippet.language} snippet at README.md:${snippet.line} runs`, () => {
      // .mjs: an ES module without a package.json saying so.
      const file = join(
        dir,
        `snippet_${snippet.line}.${snippet.language === "js" ? "mjs" : "ts"}`,
      );
      writeFileSync(file, program(snippet, redis.url));
      const done = run(file);
      assert.equal(
        done.status,
        0,
        `${done.stderr}\n--- ${file}:\n${readFileSync(file, "utf8")}`,
      );
    });
  }
});
