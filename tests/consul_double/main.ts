/**
 * Runs the Consul double as a process of its own (tests use it for TLS,
 * which Deno's `node:https` server cannot do with client certificates).
 *
 * Usage: `bun tests/consul_double/main.ts '<DoubleOptions as JSON>'`; it
 * prints `listening PORT` once ready and stops on SIGTERM or SIGINT.
 *
 * @module
 */

import process from "node:process";
import { type DoubleOptions, startConsulDouble } from "./server.ts";

const options = JSON.parse(process.argv[2] ?? "{}") as DoubleOptions;
const consul = await startConsulDouble(options);
console.log(`listening ${consul.port}`);
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    consul.close().finally(() => process.exit(0));
  });
}
