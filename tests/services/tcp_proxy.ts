/**
 * A TCP proxy on loopback that a test puts between a client and a server to
 * make network trouble without touching the server: drop the connections,
 * cut the link (close new connections at once), partition it (keep the
 * connections open but let nothing through, as a network that black-holes
 * packets does), or delay it (every byte arrives, in order, late).
 *
 * @module
 */

import { createServer, type Server, Socket } from "node:net";

/** A running proxy. */
export interface TcpProxy {
  /** The port clients connect to; it stays the same for the proxy's life. */
  readonly port: number;
  /** Drops every open connection; new ones are accepted. */
  drop(): void;
  /**
   * Drops every connection and closes each new one at once (as a refused
   * connection fails) until {@linkcode resume}.
   */
  cut(): Promise<void>;
  /** Lets nothing through, in either direction, until {@linkcode resume}. */
  partition(): void;
  /**
   * Holds what passes, in each direction, `ms` before forwarding it, in
   * order, until {@linkcode resume}: a slow link, where a request a client
   * gave up on still reaches the server.
   */
  delay(ms: number): void;
  /**
   * Passes what clients send and drops what the server answers, until
   * {@linkcode resume}: requests land, their replies are lost.
   */
  loseReplies(): void;
  /**
   * Undoes `cut`, `partition`, `delay` and `loseReplies` (what is held
   * still arrives; after a partition or lost replies, the connections that
   * went through are dropped). After a partition, the connections that
   * went through it are dropped, as a healed network's peers time them out.
   */
  resume(): Promise<void>;
  /** Stops the proxy. */
  close(): Promise<void>;
}

/** Starts a proxy from a free loopback port to `127.0.0.1:targetPort`. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  let partitioned = false;
  let delayMs = 0;
  let repliesLost = false;
  // Cut: connections are accepted and closed at once. The port stays this
  // proxy's: closing the listener and listening again on it later raced
  // with servers other tests started meanwhile (EADDRINUSE in a CI run).
  let cutOff = false;
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  };
  const drop = () => {
    for (const socket of [...sockets]) socket.destroy();
    sockets.clear();
  };
  const forward = (from: Socket, to: Socket, replies = false) => {
    // Delayed chunks, due in order; one timer at a time drains them.
    const held: { due: number; data: Uint8Array | null }[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drain = () => {
      timer = undefined;
      while (held.length > 0 && held[0].due <= performance.now()) {
        const { data } = held.shift()!;
        if (partitioned) continue;
        if (data) to.write(data);
        else to.destroy();
      }
      if (held.length > 0) {
        timer = setTimeout(drain, held[0].due - performance.now());
      }
    };
    // A chunk (or the close, `null`) goes through now or after the delay,
    // never ahead of one held before it.
    const pass = (data: Uint8Array | null) => {
      if (delayMs === 0 && held.length === 0) {
        if (data) to.write(data);
        else to.destroy();
        return;
      }
      held.push({ due: performance.now() + delayMs, data });
      timer ??= setTimeout(drain, held[0].due - performance.now());
    };
    from.on("data", (data) => {
      if (!partitioned && !(replies && repliesLost)) pass(data);
    });
    from.on("error", () => to.destroy());
    from.on("close", () => {
      if (!partitioned) pass(null);
    });
    to.on("close", () => clearTimeout(timer));
  };
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        if (cutOff) {
          client.destroy();
          return;
        }
        const upstream = new Socket();
        track(client);
        track(upstream);
        forward(client, upstream);
        forward(upstream, client, true);
        upstream.connect(targetPort, "127.0.0.1");
      });
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => {
        const address = s.address();
        if (address && typeof address === "object") port = address.port;
        server = s;
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      drop();
      if (!server) return resolve();
      server.close(() => resolve());
      server = undefined;
    });
  await listen();
  return {
    get port() {
      return port;
    },
    drop,
    cut: () => {
      cutOff = true;
      drop();
      return Promise.resolve();
    },
    partition: () => {
      partitioned = true;
    },
    delay: (ms: number) => {
      delayMs = ms;
    },
    loseReplies: () => {
      repliesLost = true;
    },
    resume: () => {
      cutOff = false;
      delayMs = 0;
      if (partitioned || repliesLost) {
        partitioned = false;
        repliesLost = false;
        drop();
      }
      return Promise.resolve();
    },
    close: stop,
  };
}
