/**
 * Draws the results of bench/backends_compare.ts as an SVG: for every
 * backend and operation, the throughput of our Store as a share of the raw
 * client's (the median of the paired rounds, with a whisker from the worst
 * to the best round), before and after the fixes when given two files.
 *
 * Run:
 *   deno run -A scripts/bench_chart.ts AFTER.json [--before BEFORE.json]
 *     [--out docs/benchmarks.svg]
 *
 * Also prints the results as a Markdown table, for docs/benchmarks.md.
 *
 * @module
 */

import { readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";

interface Spread {
  median: number;
  min: number;
  max: number;
}

interface Run {
  rate: number;
  p50: number;
  p99: number;
}

interface Comparison {
  ours: Run[];
  raw: Run[];
  rateRatio: Spread;
  p50Ratio: Spread;
}

interface WatchSide {
  p50: number;
  p99: number;
  samples: number;
  lost: number;
}

interface Report {
  startedAt: string;
  runtime: string;
  machine: { cpus: number; cpuModel?: string; loadBefore: number[] };
  backends: Record<
    string,
    {
      about: Record<string, string>;
      ops: Record<string, Comparison>;
      watch?: { ours: WatchSide; raw: WatchSide };
      error?: string;
    }
  >;
}

const { values: flags, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: {
    before: { type: "string" },
    out: { type: "string", default: "docs/benchmarks.svg" },
  },
});
if (positionals.length !== 1) {
  console.error(
    "Usage: scripts/bench_chart.ts AFTER.json [--before BEFORE.json] [--out FILE.svg]",
  );
  process.exit(2);
}

const after = read(positionals[0]);
const before = flags.before ? read(flags.before) : undefined;

/** The operations drawn, in this order. */
const OPS = ["get c1", "get c64", "put c1", "put c64", "list 100", "cas c1"];

/** The goal of issue 10: within 5% of the raw client. */
const GOAL = 0.95;

// Layout, in SVG user units (pixels at 100%).
const ROW = 15;
const GROUP_GAP = 16;
const LEFT = 170;
const PLOT = 520;
const TOP = 70;
const MAX_RATIO = 1.4;

const backends = Object.keys(after.backends).filter((name) =>
  !after.backends[name].error
);
const rows: Array<{ backend: string; op: string; y: number }> = [];
let y = TOP;
for (const backend of backends) {
  for (const op of OPS) {
    if (!after.backends[backend].ops[op]) continue;
    rows.push({ backend, op, y });
    y += ROW * (before ? 2 : 1) + 4;
  }
  y += GROUP_GAP;
}
const height = y + 50;
const width = LEFT + PLOT + 40;
const x = (ratio: number) =>
  LEFT + Math.min(ratio, MAX_RATIO) / MAX_RATIO * PLOT;

const parts: string[] = [];
parts.push(
  `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
  `<rect width="100%" height="100%" fill="white"/>`,
  text(
    LEFT,
    22,
    "Throughput of our Store / the raw npm client (1 = parity)",
    { size: 14, weight: "bold" },
  ),
  text(
    LEFT,
    40,
    `${after.runtime}, ${after.machine.cpus} shared cores, ${
      after.startedAt.slice(0, 10)
    }; bar: median of paired rounds, whisker: worst to best round`,
    { size: 10, fill: "#555" },
  ),
);
// Grid and goal lines.
for (let r = 0; r <= MAX_RATIO + 1e-9; r += 0.2) {
  const gx = x(r);
  parts.push(
    `<line x1="${gx}" y1="${TOP - 8}" x2="${gx}" y2="${
      height - 40
    }" stroke="#e4e4e4"/>`,
    text(gx, height - 26, r.toFixed(1), { anchor: "middle", fill: "#555" }),
  );
}
parts.push(
  `<line x1="${x(1)}" y1="${TOP - 8}" x2="${x(1)}" y2="${
    height - 40
  }" stroke="#333" stroke-width="1.2"/>`,
  `<line x1="${x(GOAL)}" y1="${TOP - 8}" x2="${x(GOAL)}" y2="${
    height - 40
  }" stroke="#c0392b" stroke-dasharray="4 3"/>`,
  text(x(GOAL) - 4, TOP - 12, "goal 0.95", {
    anchor: "end",
    fill: "#c0392b",
    size: 10,
  }),
);
let lastBackend = "";
for (const row of rows) {
  if (row.backend !== lastBackend) {
    lastBackend = row.backend;
    parts.push(
      text(8, row.y + 11, row.backend, { weight: "bold", size: 12 }),
    );
  }
  parts.push(text(LEFT - 8, row.y + 11, row.op, { anchor: "end" }));
  let barY = row.y;
  const series: Array<[Report | undefined, string]> = before
    ? [[before, "#b9c7d6"], [after, "#2c6fad"]]
    : [[after, "#2c6fad"]];
  for (const [report, color] of series) {
    const c = report?.backends[row.backend]?.ops[row.op];
    if (c) parts.push(...bar(barY, c.rateRatio, color));
    barY += ROW;
  }
}
// Legend.
const legendY = height - 12;
if (before) {
  parts.push(
    `<rect x="${LEFT}" y="${
      legendY - 9
    }" width="12" height="10" fill="#b9c7d6"/>`,
    text(LEFT + 16, legendY, "before the fixes"),
    `<rect x="${LEFT + 120}" y="${
      legendY - 9
    }" width="12" height="10" fill="#2c6fad"/>`,
    text(LEFT + 136, legendY, "after"),
  );
}
parts.push("</svg>");
writeFileSync(flags.out, parts.join("\n") + "\n");
console.error(`Wrote ${flags.out}`);
console.log(markdown());

function bar(top: number, ratio: Spread, color: string): string[] {
  const h = ROW - 3;
  const mid = top + h / 2;
  return [
    `<rect x="${LEFT}" y="${top}" width="${
      x(ratio.median) - LEFT
    }" height="${h}" fill="${color}"/>`,
    `<line x1="${x(ratio.min)}" y1="${mid}" x2="${
      x(ratio.max)
    }" y2="${mid}" stroke="#222"/>`,
    `<line x1="${x(ratio.min)}" y1="${mid - 3}" x2="${x(ratio.min)}" y2="${
      mid + 3
    }" stroke="#222"/>`,
    `<line x1="${x(ratio.max)}" y1="${mid - 3}" x2="${x(ratio.max)}" y2="${
      mid + 3
    }" stroke="#222"/>`,
    text(
      x(Math.max(ratio.max, ratio.median)) + 4,
      top + h - 2,
      ratio.median
        .toFixed(2),
      { size: 10 },
    ),
  ];
}

function text(
  tx: number,
  ty: number,
  content: string,
  style: {
    size?: number;
    weight?: string;
    anchor?: string;
    fill?: string;
  } = {},
): string {
  const escaped = content.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  return `<text x="${tx}" y="${ty}"${
    style.size ? ` font-size="${style.size}"` : ""
  }${style.weight ? ` font-weight="${style.weight}"` : ""}${
    style.anchor ? ` text-anchor="${style.anchor}"` : ""
  }${style.fill ? ` fill="${style.fill}"` : ""}>${escaped}</text>`;
}

// The table of docs/benchmarks.md: rates and ratios, before and after.
function markdown(): string {
  const lines = [
    `| backend | operation | ours/s | raw/s |${
      before ? " ours/raw before |" : ""
    } ours/raw${before ? " after" : ""} (worst-best round) | p50 ours / raw |`,
    `|---|---|---:|---:|${before ? "---:|" : ""}---:|---:|`,
  ];
  for (const backend of backends) {
    const result = after.backends[backend];
    for (const op of OPS) {
      const c = result.ops[op];
      if (!c) continue;
      const old = before?.backends[backend]?.ops[op];
      lines.push(
        `| ${backend} | ${op} | ${fmtRate(medianOf(c.ours, "rate"))} | ${
          fmtRate(medianOf(c.raw, "rate"))
        } | ${
          before ? `${old ? old.rateRatio.median.toFixed(2) : "-"} | ` : ""
        }${c.rateRatio.median.toFixed(2)} (${c.rateRatio.min.toFixed(2)}-${
          c.rateRatio.max.toFixed(2)
        }) | ${fmtMs(medianOf(c.ours, "p50"))} / ${
          fmtMs(medianOf(c.raw, "p50"))
        } |`,
      );
    }
  }
  lines.push("", "| backend | watch p50 ours / raw | watch p99 ours / raw |");
  lines.push("|---|---:|---:|");
  for (const backend of backends) {
    const w = after.backends[backend].watch;
    if (!w) continue;
    const old = before?.backends[backend]?.watch;
    lines.push(
      `| ${backend} | ${fmtMs(w.ours.p50)} / ${fmtMs(w.raw.p50)}${
        old ? ` (before: ${fmtMs(old.ours.p50)} / ${fmtMs(old.raw.p50)})` : ""
      } | ${fmtMs(w.ours.p99)} / ${fmtMs(w.raw.p99)} |`,
    );
  }
  return lines.join("\n");
}

function medianOf(runs: Run[], field: "rate" | "p50"): number {
  const sorted = runs.map((run) => run[field]).sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

function fmtRate(rate: number): string {
  return Math.round(rate).toLocaleString("en-US");
}

function fmtMs(ms: number): string {
  return `${ms < 10 ? ms.toFixed(2) : ms.toFixed(0)} ms`;
}

function read(path: string): Report {
  return JSON.parse(readFileSync(path, "utf8"));
}
