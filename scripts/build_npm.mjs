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
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
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
for (const subpath of Object.keys(pkg.exports ?? {})) {
  if (!(subpath in jsr.exports)) {
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

// The engine's module sits beside the bundles that load it.
if (existsSync("wasm")) {
  for (const file of readdirSync("wasm")) {
    if (file.endsWith(".wasm")) {
      mkdirSync("dist", { recursive: true });
      copyFileSync(`wasm/${file}`, `dist/${file}`);
      mkdirSync("dist/chunks", { recursive: true });
      copyFileSync(`wasm/${file}`, `dist/chunks/${file}`);
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
