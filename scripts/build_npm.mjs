// Builds the npm package into dist/: one ESM bundle per entry point of
// jsr.json (shared code split into chunks, npm clients left external, so a
// backend's client loads only when that backend is opened), declarations
// from tsc, the engine's .wasm, and the CLI's shebang.
//
// Usage: node scripts/build_npm.mjs
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import * as esbuild from "esbuild";

const jsr = JSON.parse(readFileSync("jsr.json", "utf8"));
const pkg = JSON.parse(readFileSync("package.json", "utf8"));

/** dist name of a jsr.json subpath: "." is mod, "./redis" is redis. */
export const distName = (subpath) => subpath === "." ? "mod" : subpath.slice(2);
const entries = Object.entries(jsr.exports).map(([subpath, file]) => ({
  subpath,
  file,
  name: distName(subpath),
}));

// jsr.json is the one source of the exports map: package.json's exports
// must say what it says.
const problems = [];
for (const { subpath, file, name } of entries) {
  // "default" lets require() load the ESM build where the runtime can
  // (Node >= 20.19, Bun); older Nodes refuse it saying to use import().
  const want = {
    types: `./dist/types/${file.slice(2).replace(/\.ts$/, ".d.ts")}`,
    import: `./dist/${name}.js`,
    default: `./dist/${name}.js`,
  };
  const have = pkg.exports?.[subpath];
  if (JSON.stringify(have) !== JSON.stringify(want)) {
    problems.push(
      `package.json exports["${subpath}"] should be ${JSON.stringify(want)}`,
    );
  }
}
// TypeScript's older "node10" resolution reads main, types and
// typesVersions instead of exports: they must say the same.
const typesOf = (file) =>
  `dist/types/${file.slice(2).replace(/\.ts$/, ".d.ts")}`;
const wantVersions = Object.fromEntries(
  entries.filter((e) => e.subpath !== ".").map((e) => [
    e.subpath.slice(2),
    [typesOf(e.file)],
  ]),
);
if (pkg.main !== "./dist/mod.js") {
  problems.push(`package.json main should be "./dist/mod.js"`);
}
if (pkg.types !== `./${typesOf(jsr.exports["."])}`) {
  problems.push(
    `package.json types should be "./${typesOf(jsr.exports["."])}"`,
  );
}
if (
  JSON.stringify(pkg.typesVersions) !== JSON.stringify({ "*": wantVersions })
) {
  problems.push(
    `package.json typesVersions should be ${
      JSON.stringify({ "*": wantVersions })
    }`,
  );
}

// Besides the modules, npm exports the engine's module itself, for bundlers
// that copy it as an asset (JSR serves it beside the source).
const ASSETS = { "./engine.wasm": "./dist/valkeyrie_engine.wasm" };
for (const [subpath, file] of Object.entries(ASSETS)) {
  if (pkg.exports?.[subpath] !== file) {
    problems.push(`package.json exports["${subpath}"] should be "${file}"`);
  }
}
for (const subpath of Object.keys(pkg.exports ?? {})) {
  if (!(subpath in jsr.exports) && !(subpath in ASSETS)) {
    problems.push(`package.json exports["${subpath}"] is not in jsr.json`);
  }
}
if (pkg.version !== jsr.version) {
  problems.push("package.json and jsr.json versions differ");
}
// deno.json repeats jsr.json's package fields (Deno reads them there for
// `deno publish` and self-imports); jsr.json is the source, deno.json must
// say the same.
const deno = JSON.parse(readFileSync("deno.json", "utf8"));
for (const field of ["name", "version", "license", "exports", "publish"]) {
  if (JSON.stringify(deno[field]) !== JSON.stringify(jsr[field])) {
    problems.push(`deno.json "${field}" differs from jsr.json's`);
  }
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}

rmSync("dist", { recursive: true, force: true });
await esbuild.build({
  entryPoints: entries.map(({ file, name }) => ({ in: file, out: name })),
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  outdir: "dist",
  chunkNames: "chunks/[name]-[hash]",
  // The clients are optional peers: loaded from the user's node_modules,
  // and only by the backend that needs them.
  external: [
    ...Object.keys(pkg.dependencies ?? {}),
    ...Object.keys(pkg.peerDependencies ?? {}),
  ],
  logLevel: "warning",
});

// The CLI runs as `valkeyrie` from npm.
const cli = "dist/cli.js";
if (existsSync(cli)) {
  writeFileSync(cli, "#!/usr/bin/env node\n" + readFileSync(cli, "utf8"));
  chmodSync(cli, 0o755);
}

// The engine's module sits beside the bundles that load it (by a URL
// relative to the bundle), once per folder that has one: the tarball holds
// it once. It is also exported as "./engine.wasm" for bundler users.
if (existsSync("engine")) {
  const modules = readdirSync("engine").filter((file) =>
    file.endsWith(".wasm")
  );
  const folders = new Set();
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const path = `${dir}/${name}`;
      if (statSync(path).isDirectory()) walk(path);
      else if (
        name.endsWith(".js") &&
        // The loader's `new URL("./valkeyrie_engine.wasm", import.meta.url)`,
        // not a message or a doc that names the file.
        modules.some((wasm) =>
          readFileSync(path, "utf8").includes(JSON.stringify(`./${wasm}`))
        )
      ) folders.add(dir);
    }
  };
  walk("dist");
  if (modules.length > 0 && folders.size === 0) {
    throw new Error("no bundle loads the engine's .wasm: where does it go?");
  }
  for (const folder of folders) {
    for (const wasm of modules) {
      copyFileSync(`engine/${wasm}`, `${folder}/${wasm}`);
    }
  }
}

execFileSync(process.execPath, [
  "node_modules/typescript/bin/tsc",
  "--declaration",
  "--emitDeclarationOnly",
  "--allowImportingTsExtensions",
  "--rewriteRelativeImportExtensions",
  "--target",
  "ES2022",
  "--module",
  "NodeNext",
  "--moduleResolution",
  "NodeNext",
  "--lib",
  "ESNext,DOM,DOM.AsyncIterable",
  "--types",
  "node",
  "--strict",
  "--skipLibCheck",
  "--rootDir",
  ".",
  "--outDir",
  "dist/types",
  ...entries.map(({ file }) => file),
], { stdio: "inherit" });

// tsc keeps ".ts" in declaration imports; consumers resolve ".js" to ".d.ts".
function rewriteDeclarations(dir) {
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${name.name}`;
    if (name.isDirectory()) rewriteDeclarations(path);
    else if (name.name.endsWith(".d.ts")) {
      const text = readFileSync(path, "utf8").replace(
        /((?:from|import)\s*\(?\s*["'])(\.{1,2}\/[^"']*)\.ts(["'])/g,
        "$1$2.js$3",
      );
      writeFileSync(path, text);
    }
  }
}
rewriteDeclarations("dist/types");

console.log(`built ${entries.length} entry points into dist/`);
