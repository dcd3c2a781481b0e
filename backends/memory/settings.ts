/**
 * The `memory:` backend's own settings: the schema its options interface,
 * its checks and its docs table come from.
 *
 * @module
 */

import type { SettingsSchema } from "../../core/config.ts";

/** The settings of a memory store besides the common ones. */
export const MEMORY_SETTINGS = {
  name: {
    kind: "string",
    defaultDoc: '`""`: a private database',
    doc:
      "The database's name: handles in this process with the same name share data. Empty opens a private database (the URL's `memory:NAME`).",
  },
} as const satisfies SettingsSchema;
