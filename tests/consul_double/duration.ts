/**
 * Go's `time.ParseDuration`, which Consul uses for `wait`, `TTL` and
 * `LockDelay`: a sequence of decimal numbers, each with a unit (`ns`, `us`,
 * `µs`, `ms`, `s`, `m`, `h`), such as `"1.5s"` or `"1m30s"`.
 *
 * @module
 */

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

/** The duration in milliseconds, or `undefined` when `text` is not one. */
export function parseDuration(text: string): number | undefined {
  if (text === "0") return 0;
  const match = /^([+-]?)((?:\d*\.?\d+(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(text);
  if (!match) return undefined;
  let total = 0;
  for (
    const [, number, unit] of match[2].matchAll(
      /(\d*\.?\d+)(ns|us|µs|μs|ms|s|m|h)/g,
    )
  ) {
    total += Number(number) * UNITS[unit];
  }
  return match[1] === "-" ? -total : total;
}

/** Formats milliseconds as Go prints a `time.Duration` (`"10s"`, `"1.5s"`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1_000;
  if (h === 0 && m === 0 && ms < 1_000) return `${ms}ms`;
  return `${h ? `${h}h` : ""}${h || m ? `${m}m` : ""}${s}s`;
}
