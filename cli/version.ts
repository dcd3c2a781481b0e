/**
 * The package's version, as `valkeyrie --version` prints it. A test checks
 * it against package.json, jsr.json and deno.json, so it cannot drift.
 *
 * @module
 */

/** The version of this package. */
export const VERSION = "0.1.0";
