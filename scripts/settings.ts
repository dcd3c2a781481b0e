/**
 * Writes what each backend's settings schema yields: the members of its
 * options interface (with their docs, defaults and bounds) and the settings
 * table of its page in `docs/`. The schema (a descriptor's `settings`, and
 * core's `COMMON_SETTINGS`) is the one place a setting is declared; run this
 * after changing one.
 *
 *     deno run -A scripts/settings.ts           # rewrite the files
 *     deno run -A scripts/settings.ts --check   # fail if any is stale (CI)
 *
 * @module
 */

import process from "node:process";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  COMMON_SETTINGS,
  defaultText,
  type Setting,
  type SettingsSchema,
  typeText,
} from "../core/config.ts";
import { builtinBackends } from "../backends/builtins.ts";

/** Where a schema's interface and table go. */
interface Target {
  schema: SettingsSchema;
  /** The file and the interface whose members are written. */
  source: string;
  interface: string;
  /** The page whose `<!-- settings -->` block gets the table. */
  page: string;
}

const schema = (name: string): SettingsSchema => {
  const settings = builtinBackends.find((b) => b.name === name)?.settings;
  if (!settings) throw new Error(`The ${name} backend declares no settings`);
  return settings;
};

const TARGETS: Target[] = [
  {
    schema: COMMON_SETTINGS,
    source: "core/types.ts",
    interface: "StoreOptions",
    page: "docs/contract.md",
  },
  {
    schema: schema("consul"),
    source: "backends/consul/options.ts",
    interface: "ConsulStoreOptions",
    page: "docs/backends/consul.md",
  },
  {
    schema: schema("dynamodb"),
    source: "backends/dynamodb/mod.ts",
    interface: "DynamoDBStoreOptions",
    page: "docs/backends/dynamodb.md",
  },
  {
    schema: schema("etcd"),
    source: "backends/etcd/mod.ts",
    interface: "EtcdStoreOptions",
    page: "docs/backends/etcd.md",
  },
  {
    schema: schema("file"),
    source: "backends/file/mod.ts",
    interface: "EmbeddedStoreOptions",
    page: "docs/backends/file.md",
  },
  {
    schema: schema("memory"),
    source: "backends/memory/mod.ts",
    interface: "MemoryStoreOptions",
    page: "docs/backends/memory.md",
  },
  {
    schema: schema("redis"),
    source: "backends/redis/mod.ts",
    interface: "RedisStoreOptions",
    page: "docs/backends/redis.md",
  },
  {
    schema: schema("zookeeper"),
    source: "backends/zookeeper/mod.ts",
    interface: "ZookeeperStoreOptions",
    page: "docs/backends/zookeeper.md",
  },
];

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const GENERATED =
  "  // Written by scripts/settings.ts from the settings schema: edit the schema.";

/** The TypeScript type of a setting. */
function tsType(setting: Setting): string {
  switch (setting.kind) {
    case "string":
      return setting.choices
        ? setting.choices.map((c) => JSON.stringify(c)).join(" | ")
        : "string";
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "value":
      return setting.type;
  }
}

/** Words wrapped into lines of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/** The interface members a schema yields. */
function members(schema: SettingsSchema): string {
  const out = [GENERATED];
  for (const [name, setting] of Object.entries(schema)) {
    const facts = [
      setting.required ? "Required." : `Default: ${defaultText(setting)}.`,
    ];
    if (setting.kind === "number") facts.unshift(`A ${typeText(setting)}.`);
    const text = [...wrap(setting.doc, 72), "", ...wrap(facts.join(" "), 72)];
    out.push("  /**", ...text.map((l) => (l ? `   * ${l}` : "   *")), "   */");
    const optional = setting.required ? "" : "?";
    out.push(`  ${name}${optional}: ${tsType(setting)};`);
  }
  return out.join("\n");
}

/** The Markdown table a schema yields. */
function table(schema: SettingsSchema): string {
  const rows = [
    "| setting | values | default | what it is |",
    "|---|---|---|---|",
  ];
  for (const [name, setting] of Object.entries(schema)) {
    const cell = (s: string) => s.replaceAll("\n", " ");
    rows.push(
      `| \`${name}\` | ${cell(typeText(setting))} | ${
        setting.required ? "required" : cell(defaultText(setting))
      } | ${cell(setting.doc.replaceAll("|", "\\|"))} |`,
    );
  }
  return rows.join("\n");
}

function withMembers(text: string, target: Target): string {
  const head = new RegExp(
    `^export interface ${target.interface}\\b[^{]*\\{\\n`,
    "m",
  ).exec(text);
  if (!head) {
    throw new Error(`${target.source}: no interface ${target.interface}`);
  }
  const start = head.index + head[0].length;
  const end = text.indexOf("\n}\n", start - 1);
  return `${text.slice(0, start)}${members(target.schema)}${text.slice(end)}`;
}

function withTable(text: string, target: Target): string {
  const open = "<!-- settings: written by scripts/settings.ts -->";
  const close = "<!-- /settings -->";
  const start = text.indexOf(open);
  const end = text.indexOf(close);
  if (start < 0 || end < start) {
    throw new Error(`${target.page}: no ${open} ... ${close} block`);
  }
  return `${text.slice(0, start + open.length)}\n\n${table(target.schema)}\n\n${
    text.slice(end)
  }`;
}

function formatted(text: string, ext: string): string {
  const run = spawnSync(Deno.execPath(), ["fmt", `--ext=${ext}`, "-"], {
    input: text,
    encoding: "utf8",
    cwd: ROOT,
  });
  if (run.status !== 0) throw new Error(`deno fmt failed: ${run.stderr}`);
  return run.stdout;
}

const check = process.argv.includes("--check");
const stale: string[] = [];
for (const target of TARGETS) {
  for (
    const [file, rewrite, ext] of [
      [target.source, withMembers, "ts"],
      [target.page, withTable, "md"],
    ] as const
  ) {
    const path = `${ROOT}${file}`;
    const now = readFileSync(path, "utf8");
    const want = formatted(rewrite(now, target), ext);
    if (want === now) continue;
    stale.push(file);
    if (!check) writeFileSync(path, want);
  }
}
if (check && stale.length > 0) {
  console.error(
    `Stale settings docs in ${
      stale.join(", ")
    }: run deno run -A scripts/settings.ts`,
  );
  process.exit(1);
}
console.log(
  check
    ? "settings: interfaces and tables match the schemas"
    : `settings: ${stale.length} file(s) rewritten`,
);
