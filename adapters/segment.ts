/**
 * Any string as one key segment, reversibly: the adapters' keys (Keyv,
 * unstorage) may hold what a store key may not (`/`, control characters,
 * `.`/`..`, the empty string), so those are escaped, and nothing else is —
 * ordinary keys read the same in the store.
 *
 * `%` and `/` become `%25` and `%2F`, control characters `%XX`, lone
 * surrogates `%uXXXX`, a leading `.` `%2E`, and the empty string a lone `%`.
 *
 * @module
 */

/**
 * Escapes `text` into a valid key segment.
 *
 * @param text Any string.
 * @returns A segment that {@linkcode unescapeSegment} turns back into `text`.
 *
 * @example
 * ```ts
 * import { escapeSegment } from "./segment.ts";
 *
 * console.log(escapeSegment("a/b")); // "a%2Fb"
 * ```
 */
export function escapeSegment(text: string): string {
  if (text === "") return "%";
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (
      c === 0x25 || c === 0x2f || c < 0x20 || c === 0x7f ||
      (c === 0x2e && i === 0)
    ) {
      out += "%" + c.toString(16).toUpperCase().padStart(2, "0");
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const next = text.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        out += text[i] + text[i + 1];
        i++;
      } else out += "%u" + c.toString(16).toUpperCase();
    } else out += text[i];
  }
  return out;
}

/**
 * Turns a segment made by {@linkcode escapeSegment} back into its string.
 *
 * @param segment An escaped segment.
 * @returns The original string.
 *
 * @example
 * ```ts
 * import { unescapeSegment } from "./segment.ts";
 *
 * console.log(unescapeSegment("a%2Fb")); // "a/b"
 * ```
 */
export function unescapeSegment(segment: string): string {
  if (segment === "%") return "";
  return segment.replace(
    /%(u[0-9A-F]{4}|[0-9A-F]{2})/g,
    (_, hex: string) =>
      String.fromCharCode(parseInt(hex[0] === "u" ? hex.slice(1) : hex, 16)),
  );
}
