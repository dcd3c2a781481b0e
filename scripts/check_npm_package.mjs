// Packs the npm build (npm pack), installs the tarball into an empty Node
// project in a temp dir, and uses it there as a user would: every subpath
// imports, a store works, types resolve, and the `valkeyrie` bin runs.
// Exits non-zero on the first failure.
//
// Usage: node scripts/check_npm_package.mjs   (after scripts/build_npm.mjs)
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(".");
const pkg = JSON.parse(readFileSync("package.json", "utf8"));
const dir = mkdtempSync(join(tmpdir(), "valkeyrie-pack-"));
const run = (command, args, cwd = dir) =>
  execFileSync(command, args, {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });

try {
  const tarball = run(
    "npm",
    ["pack", "--silent", "--pack-destination", dir],
    root,
  )
    .trim().split("\n").pop();
  console.log(`packed ${tarball}`);

  // The engine's module ships once.
  const modules = run("tar", ["tzf", join(dir, tarball)]).split("\n")
    .filter((path) => path.endsWith(".wasm"));
  if (modules.length !== 1) {
    throw new Error(`the tarball holds ${modules.length} .wasm files`);
  }

  // The package's metadata as publint and arethetypeswrong read it. The one
  // rule left out, "a require() resolves to ESM", is require(esm), which
  // Node >= 20.19 and Bun do and smoke.cjs below checks; engine.wasm is an
  // asset, not a module with types.
  const bin = (name) => join(root, "node_modules/.bin", name);
  run(bin("publint"), ["--strict"], root);
  run(bin("attw"), [
    join(dir, tarball),
    "--ignore-rules",
    "cjs-resolves-to-esm",
    "--exclude-entrypoints",
    "./engine.wasm",
    "--format",
    "ascii",
  ]);
  console.log("publint and arethetypeswrong ok");
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module" }),
  );
  run("npm", [
    "install",
    "--no-audit",
    "--no-fund",
    "--silent",
    join(dir, tarball),
  ]);

  // Alone, as a file:-only user installs it: no client comes along.
  const installed = run("npm", ["ls", "--all", "--parseable"]).trim()
    .split("\n").filter((line) => line.includes("node_modules"));
  const bytes = Number(
    run("du", ["-sk", join(dir, "node_modules")]).split(/\s/)[0],
  ) * 1024;
  console.log(
    `alone: ${installed.length} package(s), ${
      (bytes / 1048576).toFixed(1)
    } MB in node_modules`,
  );
  if (installed.length !== 1) {
    throw new Error(`a plain install brought ${installed.join(", ")}`);
  }
  writeFileSync(
    join(dir, "alone.mjs"),
    `import { openStore, StoreError } from "${pkg.name}";
import { EmbeddedStore } from "${pkg.name}/file";
import { MemoryStore } from "${pkg.name}/memory";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
const file = await EmbeddedStore.connect({ path: "alone.db" });
await file.put("k", "v");
if (new TextDecoder().decode((await file.get("k")).value) !== "v") throw new Error("file: wrong value");
await file.close();
// The engine's module by package name, handed to the store as a bundled app does.
const engine = readFileSync(fileURLToPath(import.meta.resolve("${pkg.name}/engine.wasm")));
const handed = await EmbeddedStore.connect({ path: "handed.db", engine });
await handed.put("k", "v");
await handed.close();
const memory = new MemoryStore();
await memory.put("k", "v");
await memory.close();
for (const [url, client] of [["redis://127.0.0.1:1", "ioredis"], ["etcd://127.0.0.1:1", "etcd3"], ["consul://127.0.0.1:1", "consul"], ["dynamodb://t?endpoint=http://127.0.0.1:1&region=us-east-1", "@aws-sdk/client-dynamodb"]]) {
  await openStore(url, { connectTimeout: 500 }).then((s) => { s.close(); throw new Error(url + " opened without its client"); }, (e) => {
    if (!(e instanceof StoreError) || !e.message.includes("npm install") || !e.message.includes(client)) throw e;
  });
}
console.log("alone ok: file: and memory: work, a missing client names its package");
`,
  );
  console.log(run("node", ["alone.mjs"]).trim());

  // A one-file bundle that embeds the engine, imported by package name, as
  // docs/backends/file.md shows; run from elsewhere, with no .wasm beside it.
  writeFileSync(
    join(dir, "app.mjs"),
    `import { EmbeddedStore } from "${pkg.name}/file";
import engine from "${pkg.name}/engine.wasm";
const store = await EmbeddedStore.connect({ path: process.argv[2], engine });
await store.put("k", "bundled");
console.log("bundle ok: " + new TextDecoder().decode((await store.get("k")).value));
await store.close();
`,
  );
  run(bin("esbuild"), [
    "app.mjs",
    "--bundle",
    "--platform=node",
    "--format=esm",
    "--target=node20",
    "--loader:.wasm=binary",
    "--outfile=bundle/app.mjs",
  ]);
  console.log(
    run("node", [join(dir, "bundle/app.mjs"), join(dir, "bundled.db")], root)
      .trim(),
  );

  // With every client, as pulled in by a user of every backend.
  const peers = Object.entries(pkg.peerDependencies ?? {}).map((
    [name, range],
  ) => `${name}@${range}`);
  run("npm", ["install", "--no-audit", "--no-fund", "--silent", ...peers]);

  const subpaths = Object.keys(pkg.exports).filter((s) =>
    s !== "./cli" && !s.endsWith(".wasm")
  );
  const imports = subpaths.map((s, i) =>
    `import * as m${i} from "${pkg.name}${s === "." ? "" : s.slice(1)}";`
  ).join("\n");
  writeFileSync(
    join(dir, "smoke.mjs"),
    `${imports}
import { openStore, StoreError } from "${pkg.name}";
const modules = [${subpaths.map((_, i) => `m${i}`).join(", ")}];
for (const [i, m] of modules.entries()) {
  if (Object.keys(m).length === 0) throw new Error("subpath " + i + " exports nothing");
}
const store = await openStore("memory:");
await store.put("a/b", "hello");
const pair = await store.get("a/b");
if (new TextDecoder().decode(pair.value) !== "hello") throw new Error("wrong value");
await store.get("a//b").then(() => { throw new Error("invalid key accepted"); }, (e) => {
  if (!(e instanceof StoreError)) throw e;
});
await store.close();
console.log("smoke ok: " + modules.length + " subpaths");
`,
  );
  console.log(run("node", ["smoke.mjs"]).trim());

  // CommonJS: require() of the ESM build, as Node >= 20.19 and Bun allow.
  writeFileSync(
    join(dir, "smoke.cjs"),
    `const { openStore } = require("${pkg.name}");
const { MemoryStore } = require("${pkg.name}/memory");
(async () => {
  const store = await openStore("memory:");
  await store.put("k", "v");
  if (new TextDecoder().decode((await store.get("k")).value) !== "v") throw new Error("wrong value");
  await store.close();
  await new MemoryStore().close();
  console.log("require ok");
})().catch((error) => { console.error(error); process.exit(1); });
`,
  );
  console.log(run("node", ["smoke.cjs"]).trim());

  // Types: a TypeScript user of the package type-checks against dist/types.
  writeFileSync(
    join(dir, "typed.ts"),
    `import { openStore, type KVPair } from "${pkg.name}";
const store = await openStore("memory:");
const pair: KVPair | null = await store.get("k");
export { pair };
`,
  );
  run(process.execPath, [
    join(root, "node_modules/typescript/bin/tsc"),
    "--noEmit",
    "--module",
    "nodenext",
    "--moduleResolution",
    "nodenext",
    "--target",
    "es2022",
    "--lib",
    "es2022,dom,dom.asynciterable,esnext.disposable",
    "--skipLibCheck",
    "typed.ts",
  ]);
  console.log("types ok");

  const printed = run("npx", [
    "--no-install",
    "valkeyrie",
    "--store",
    "memory:",
    "ls",
  ]);
  if (printed !== "") throw new Error(`unexpected bin output: ${printed}`);
  console.log("bin ok");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
