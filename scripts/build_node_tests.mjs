// Bundles the test files for Node 20, which cannot run TypeScript nor parse
// `await using`. Imports of the package's entry points (mod.ts,
// backends/*/mod.ts, the conformance kit) resolve to the npm build in dist/,
// so Node tests exercise exactly what npm users get; a unit test of an
// internal module bundles that module from source.
//
// Usage: node scripts/build_node_tests.mjs [test files...]
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import * as esbuild from "esbuild";

const root = process.cwd();
const jsr = JSON.parse(readFileSync("jsr.json", "utf8"));
const pkg = JSON.parse(readFileSync("package.json", "utf8"));
const distOf = new Map(
  Object.entries(jsr.exports).map(([subpath, file]) => [
    resolve(root, file),
    // Absolute: the bundled tests sit at several depths under dist-test/.
    resolve(root, "dist", `${subpath === "." ? "mod" : subpath.slice(2)}.js`),
  ]),
);

function findTests(dir) {
  const found = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (name.endsWith("_test.ts")) found.push(path);
  }
  return found;
}

const tests = process.argv.length > 2
  ? process.argv.slice(2)
  : findTests("tests");
rmSync("dist-test", { recursive: true, force: true });
await esbuild.build({
  entryPoints: tests.map((file) => ({
    in: file,
    // The tests' folders are kept, so a URL relative to a test file
    // (import.meta.url) means the same place from dist-test/.
    out: relative("tests", file).replace(/\.ts$/, ""),
  })),
  outExtension: { ".js": ".mjs" },
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  outdir: "dist-test",
  // The clients stay external, as in the npm build (they are optional peer
  // dependencies there): one copy, loaded from node_modules.
  external: [
    ...Object.keys(pkg.dependencies ?? {}),
    ...Object.keys(pkg.peerDependencies ?? {}),
    // CommonJS packages that require @opentelemetry/api (external above)
    // must load it from node_modules too.
    "@opentelemetry/*",
  ],
  logLevel: "warning",
  plugins: [{
    name: "entry-points-from-dist",
    setup(build) {
      build.onResolve({ filter: /\.ts$/ }, (args) => {
        if (args.kind === "entry-point") return undefined;
        const path = resolve(args.resolveDir, args.path);
        const dist = distOf.get(path);
        return dist ? { path: dist, external: true } : undefined;
      });
    },
  }],
});
console.log(`bundled ${tests.length} test files into dist-test/`);
