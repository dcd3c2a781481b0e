/**
 * JSON with unsigned 64-bit integers, as Consul speaks it: `Flags`,
 * `ModifyIndex` and friends are Go `uint64`s, which a JavaScript number
 * cannot hold past 2^53. The double keeps them as `bigint`.
 *
 * @module
 */

const BIG = "\u0000u64:";

/**
 * Serialises `value`, writing `bigint`s as plain JSON numbers (Go's
 * `encoding/json` writes a `uint64` that way).
 */
export function stringify(value: unknown): string {
  return JSON.stringify(
    value,
    (_, v) => typeof v === "bigint" ? `${BIG}${v}` : v,
  ).replace(/"\\u0000u64:(\d+)"/g, "$1");
}

/**
 * Parses JSON, turning integers too long for a double into strings so no
 * digit is lost; callers read them with {@linkcode toUint64}.
 */
export function parse(text: string): unknown {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      // Copy the whole string, escapes included.
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      let j = i + 1;
      while (j < text.length && /[0-9.eE+-]/.test(text[j])) j++;
      const token = text.slice(i, j);
      out += /^\d{16,}$/.test(token) ? `"${token}"` : token;
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return JSON.parse(out);
}

/**
 * Reads an unsigned 64-bit integer given as a number or a digit string;
 * `undefined` when it is neither.
 */
export function toUint64(value: unknown): bigint | undefined {
  if (typeof value === "number" && Number.isInteger(value) && value >= 0) {
    return BigInt(value);
  }
  if (typeof value === "string" && /^\d+$/.test(value)) {
    const n = BigInt(value);
    return n < 2n ** 64n ? n : undefined;
  }
  return undefined;
}

/**
 * Looks up a field the way Go's `encoding/json` does: the exact name first,
 * then any name that matches without regard to case.
 */
export function field(object: unknown, name: string): unknown {
  if (typeof object !== "object" || object === null) return undefined;
  const record = object as Record<string, unknown>;
  if (name in record) return record[name];
  const lower = name.toLowerCase();
  for (const key of Object.keys(record)) {
    if (key.toLowerCase() === lower) return record[key];
  }
  return undefined;
}
