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

  const subpaths = Object.keys(pkg.exports).filter((s) => s !== "./cli");
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

  const bin = run("npx", [
    "--no-install",
    "valkeyrie",
    "--store",
    "memory:",
    "ls",
  ]);
  if (bin !== "") throw new Error(`unexpected bin output: ${bin}`);
  console.log("bin ok");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
