/**
 * The double's HTTP server: routes `/v1/...` requests to the endpoints and
 * answers errors the way Consul's HTTP layer does (a status code and a
 * plain-text message). Runs on `node:http` (or `node:https` for TLS) in
 * Deno, Bun and Node.
 *
 * @module
 */

import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Socket } from "node:net";
import { Acl } from "./acl.ts";
import type { Agent, AgentConfig } from "./agent.ts";
import { Call, HttpError, type Reply } from "./call.ts";
import { kvEndpoint } from "./kv_endpoint.ts";
import { sessionEndpoint } from "./session_endpoint.ts";
import { snapshotEndpoint } from "./snapshot_endpoint.ts";
import { ConsulState } from "./state.ts";
import { statusEndpoint } from "./status_endpoint.ts";
import { txnEndpoint } from "./txn_endpoint.ts";

/** Go's default limit on request headers (the request line counts). */
const MAX_HEADER_BYTES = 1 << 20;

/** TLS settings of the double (the agent's `tls` stanza). */
export interface DoubleTls {
  /** The server certificate (PEM). */
  cert: string;
  /** Its private key (PEM). */
  key: string;
  /** CA certificates that sign client certificates (PEM). */
  ca?: string;
  /** Require a client certificate signed by `ca` (`verify_incoming`). */
  verifyIncoming?: boolean;
}

/** How to run the double. */
export interface DoubleOptions extends Partial<AgentConfig> {
  /** The port to listen on (default: any free one). */
  port?: number;
  /** Turns ACLs on (default policy deny) with this management token. */
  aclToken?: string;
  /** Serve HTTPS. */
  tls?: DoubleTls;
  /** How long tombstones of deleted keys are kept (Consul: 15 min). */
  tombstoneTtlMs?: number;
  /** Keep every request's method and URL in `requestLog` (for tests). */
  recordRequests?: boolean;
}

/** A running double. */
export interface ConsulDouble {
  /** `127.0.0.1:PORT`, as `CONSUL_HTTP_ADDR` would say it. */
  readonly address: string;
  readonly port: number;
  /** `http://127.0.0.1:PORT` (or `https://`). */
  readonly url: string;
  /** How many requests it has answered or is answering (for tests). */
  readonly requests: number;
  /** How many blocking queries are waiting now (for tests). */
  readonly waiting: number;
  /**
   * `"METHOD /v1/path?query"` of every request since the double started,
   * with `recordRequests`; tests may empty it (empty otherwise).
   */
  readonly requestLog: string[];
  /** Drops every connection and stops listening, keeping the data. */
  stopListening(): Promise<void>;
  /** Listens again on the same port. */
  listen(): Promise<void>;
  /** Stops the server and every timer. */
  close(): Promise<void>;
}

/** Starts a Consul double on 127.0.0.1. */
export async function startConsulDouble(
  options: DoubleOptions = {},
): Promise<ConsulDouble> {
  const config: AgentConfig = {
    datacenter: options.datacenter ?? "dc1",
    nodeName: options.nodeName ?? "consul-double",
    sessionTtlMinMs: options.sessionTtlMinMs ?? 10_000,
    kvMaxValueSize: options.kvMaxValueSize ?? 512 * 1024,
    txnMaxReqLen: options.txnMaxReqLen ?? 512 * 1024,
    disableKvKeyValidation: options.disableKvKeyValidation ?? false,
    namespaces: options.namespaces,
  };
  const stopping = new AbortController();
  const agent: Agent = {
    state: new ConsulState({
      tombstoneTtlMs: options.tombstoneTtlMs ?? 15 * 60_000,
    }),
    acl: new Acl(options.aclToken),
    config,
    stopping: stopping.signal,
  };
  let requests = 0;
  const requestLog: string[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    requests++;
    if (options.recordRequests) requestLog.push(`${req.method} ${req.url}`);
    void handle(agent, req, res);
  };
  const tls = options.tls;
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = options.port ?? 0;
  let closed = false;

  const listen = async () => {
    if (closed) throw new Error("the double is closed");
    server = tls
      ? createHttpsServer({
        cert: tls.cert,
        key: tls.key,
        ca: tls.ca,
        requestCert: tls.verifyIncoming ?? false,
        rejectUnauthorized: tls.verifyIncoming ?? false,
        maxHeaderSize: MAX_HEADER_BYTES,
      }, handler)
      : createHttpServer({ maxHeaderSize: MAX_HEADER_BYTES }, handler);
    server.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server!.once("error", reject);
      server!.listen(port, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (address && typeof address === "object") port = address.port;
  };
  const stopListening = async () => {
    const current = server;
    server = undefined;
    if (!current) return;
    const done = new Promise<void>((resolve) => current.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    await done;
  };

  await listen();
  const scheme = tls ? "https" : "http";
  return {
    address: `127.0.0.1:${port}`,
    port,
    url: `${scheme}://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    get waiting() {
      return agent.state.waiting;
    },
    requestLog,
    stopListening,
    listen,
    close: async () => {
      if (closed) return;
      closed = true;
      stopping.abort();
      agent.state.close();
      await stopListening();
    },
  };
}

async function handle(
  agent: Agent,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  // A client that goes away ends its blocking query.
  const gone = new AbortController();
  res.on("close", () => gone.abort());
  const signal = AbortSignal.any([gone.signal, agent.stopping]);
  let reply: Reply;
  try {
    const body = await readBody(req);
    const call = new Call(
      req.method ?? "GET",
      req.url ?? "/",
      req.headers,
      body,
    );
    reply = await route(agent, call, signal);
  } catch (error) {
    reply = error instanceof HttpError
      ? {
        status: error.status,
        headers: { "Content-Type": "text/plain; charset=utf-8" },
        body: error.message,
      }
      : {
        status: 500,
        headers: { "Content-Type": "text/plain; charset=utf-8" },
        body: String(error),
      };
  }
  if (res.destroyed) return;
  const body = typeof reply.body === "string"
    ? new TextEncoder().encode(reply.body)
    : reply.body;
  res.writeHead(reply.status, {
    ...reply.headers,
    "Content-Length": String(body.length),
  });
  res.end(body);
}

function route(
  agent: Agent,
  call: Call,
  signal: AbortSignal,
): Promise<Reply> | Reply {
  const path = call.path;
  if (path.startsWith("/kv/")) return kvEndpoint(agent, call, signal);
  if (path === "/txn") return txnEndpoint(agent, call);
  if (path.startsWith("/session/")) return sessionEndpoint(agent, call);
  if (path.startsWith("/status/")) return statusEndpoint(agent, call);
  if (path === "/snapshot") return snapshotEndpoint(agent, call);
  throw new HttpError(404, "404 page not found");
}

function readBody(req: IncomingMessage): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    req.on("end", () => {
      const total = chunks.reduce((n, c) => n + c.length, 0);
      const body = new Uint8Array(total);
      let at = 0;
      for (const chunk of chunks) {
        body.set(chunk, at);
        at += chunk.length;
      }
      resolve(body);
    });
    req.on("error", reject);
  });
}
