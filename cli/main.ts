/**
 * The `valkeyrie` executable: `deno run -A jsr:@valkeyrie/valkeyrie/cli`, or
 * `valkeyrie` from npm. Running this module runs the command line.
 *
 * @module
 */

import process from "node:process";
import { runCli } from "./mod.ts";

process.exitCode = await runCli(process.argv.slice(2));
