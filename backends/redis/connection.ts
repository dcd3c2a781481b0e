/**
 * Opening and closing ioredis connections: within the connect timeout, with
 * errors that say what is wrong (refused credentials and untrusted
 * certificates fail at once; an absent server is retried until the timeout
 * and then gives `NotReachableError`).
 *
 * One host is a server, which may turn out to be a node of a Redis Cluster
 * (`INFO cluster` says so): the store then talks to the cluster. Several
 * hosts without a Sentinel master name are nodes of a cluster.
 *
 * @module
 */

import { Cluster, Redis, type RedisOptions } from "ioredis";
import { connectWithin } from "../../core/connect.ts";
import {
  InvalidConfigurationError,
  NotReachableError,
} from "../../core/errors.ts";

/** A server's address. */
export interface HostPort {
  /** Its name or address. */
  readonly host: string;
  /** Its port. */
  readonly port: number;
}

/** How to reach the server: the ioredis options and a name for messages. */
export interface Endpoint {
  /** For messages: `"redis at 127.0.0.1:6379"`. */
  readonly what: string;
  /** The ioredis options (host or sentinels, credentials, TLS, db). */
  readonly options: RedisOptions;
  /**
   * The hosts given, unless they are sentinels: one server (perhaps a node of
   * a cluster), or several nodes of a cluster.
   */
  readonly hosts?: readonly HostPort[];
  /** The database number, also in keyspace notification channels. */
  readonly db: number;
  /** How long connecting may take, in milliseconds. */
  readonly connectTimeout: number;
}

/**
 * How long ioredis lets a socket it ended finish closing before destroying
 * it. Its default, 2 s, keeps a process alive that long after a failed
 * connection (ioredis ends the socket twice, and the second wait is never
 * cut short).
 */
const DISCONNECT_TIMEOUT_MS = 100;

/**
 * How long a cluster command waits between tries while its node is failing
 * over or the cluster is down (ioredis's default is 100 ms).
 */
const CLUSTER_RETRY_DELAY_MS = 200;

/**
 * How often a cluster command is redirected or retried before it fails:
 * with {@linkcode CLUSTER_RETRY_DELAY_MS}, about ten seconds of waiting for a
 * failover, as long as a command waits for a single server to come back
 * (ioredis's default, 16, gives up after about two seconds).
 */
const CLUSTER_MAX_REDIRECTIONS = 50;

/** An open command connection, and what it connects to, for messages. */
export interface Connected {
  /** A single server's connection, or a cluster's client. */
  readonly client: Redis | Cluster;
  /** `"redis at host:port"`, `"redis cluster at host:port, ..."`. */
  readonly what: string;
}

/**
 * Opens the store's command connection: to one server (or the master behind
 * the sentinels), or to the cluster it is a node of, or to the cluster
 * whose nodes the hosts are.
 *
 * @param endpoint Where to connect.
 * @param signal Aborts connecting.
 */
export async function openClient(
  endpoint: Endpoint,
  signal: AbortSignal | undefined,
): Promise<Connected> {
  const hosts = endpoint.hosts;
  if (hosts !== undefined && hosts.length > 1) {
    return await openCluster(endpoint, hosts, signal);
  }
  const started = Date.now();
  const client = await openConnection(endpoint, {}, signal);
  if (hosts === undefined || !await isClusterNode(client)) {
    return { client, what: endpoint.what };
  }
  client.disconnect();
  const left = endpoint.connectTimeout - (Date.now() - started);
  return await openCluster(
    { ...endpoint, connectTimeout: Math.max(left, 1) },
    hosts,
    signal,
  );
}

// Whether the server is a node of a Redis Cluster. A user who may not run
// INFO is taken to be on a single server.
async function isClusterNode(client: Redis): Promise<boolean> {
  try {
    return /^cluster_enabled:1\b/m.test(await client.info("cluster"));
  } catch {
    return false;
  }
}

/**
 * Opens a Redis Cluster client and waits until it knows the slots. The nodes
 * must be reachable at the addresses they announce.
 *
 * @param endpoint Credentials, TLS and timeouts of every node.
 * @param hosts Nodes to ask for the cluster's layout first.
 * @param signal Aborts connecting.
 */
export async function openCluster(
  endpoint: Endpoint,
  hosts: readonly HostPort[],
  signal: AbortSignal | undefined,
): Promise<Connected> {
  const what = `redis cluster at ${
    hosts.map(({ host, port }) => `${host}:${port}`).join(", ")
  }`;
  if (endpoint.db !== 0) {
    throw new InvalidConfigurationError(
      `${what} has only database 0, not ${endpoint.db}`,
    );
  }
  const client = await connectWithin(
    what,
    endpoint.connectTimeout,
    signal,
    (stop) =>
      new Promise<Cluster>((resolve, reject) => {
        const cluster = new Cluster(hosts.map((host) => ({ ...host })), {
          lazyConnect: true,
          redisOptions: nodeOptions(endpoint),
          retryDelayOnFailover: CLUSTER_RETRY_DELAY_MS,
          retryDelayOnClusterDown: CLUSTER_RETRY_DELAY_MS,
          maxRedirections: CLUSTER_MAX_REDIRECTIONS,
        });
        // ioredis prints errors nobody listens to; the store reports them.
        cluster.on("error", () => {});
        const fail = (error: unknown) => {
          cluster.off("error", onError);
          cluster.off("node error", onError);
          cluster.off("ready", onReady);
          stop.removeEventListener("abort", onAbort);
          cluster.disconnect();
          reject(error);
        };
        const onError = (error: Error & { lastNodeError?: Error }) => {
          const fatal = fatalError(
            { ...endpoint, what },
            error.lastNodeError ?? error,
          );
          if (fatal) fail(fatal);
        };
        const onReady = () => {
          cluster.off("error", onError);
          cluster.off("node error", onError);
          stop.removeEventListener("abort", onAbort);
          resolve(cluster);
        };
        const onAbort = () => fail(stop.reason);
        stop.addEventListener("abort", onAbort, { once: true });
        cluster.on("error", onError);
        cluster.on("node error", onError);
        cluster.once("ready", onReady);
        cluster.connect().catch(() => {
          // Retried until the deadline, as for a single server.
        });
      }),
  );
  return { client, what };
}

/**
 * The options of a connection to one node of a cluster: the endpoint's
 * credentials, TLS and timeouts, without its host and database.
 */
export function nodeOptions(endpoint: Endpoint): RedisOptions {
  const { host: _host, port: _port, db: _db, ...options } = endpoint.options;
  return { disconnectTimeout: DISCONNECT_TIMEOUT_MS, ...options };
}

/**
 * Opens one connection and waits until it is ready. Reconnection after that
 * is ioredis's: commands wait for the connection to come back (or fail after
 * its `maxRetriesPerRequest`), and `ready` is emitted again.
 *
 * @param endpoint Where to connect.
 * @param extra Options of this connection (its role, its retry strategy).
 * @param signal Aborts connecting.
 */
export function openConnection(
  endpoint: Endpoint,
  extra: RedisOptions,
  signal: AbortSignal | undefined,
): Promise<Redis> {
  return connectWithin(
    endpoint.what,
    endpoint.connectTimeout,
    signal,
    (stop) =>
      new Promise<Redis>((resolve, reject) => {
        const client = new Redis({
          disconnectTimeout: DISCONNECT_TIMEOUT_MS,
          ...endpoint.options,
          ...extra,
          lazyConnect: true,
        });
        // ioredis prints errors nobody listens to; the store reports them.
        client.on("error", () => {});
        const fail = (error: unknown) => {
          client.off("error", onError);
          client.off("ready", onReady);
          stop.removeEventListener("abort", onAbort);
          client.disconnect();
          reject(error);
        };
        const onError = (error: Error) => {
          const fatal = fatalError(endpoint, error);
          if (fatal) fail(fatal);
        };
        const onReady = () => {
          client.off("error", onError);
          stop.removeEventListener("abort", onAbort);
          resolve(client);
        };
        const onAbort = () => fail(stop.reason);
        stop.addEventListener("abort", onAbort, { once: true });
        client.on("error", onError);
        client.once("ready", onReady);
        client.connect().catch(() => {
          // Failed attempts are retried until the deadline; errors that no
          // retry can mend are reported through onError.
        });
      }),
  );
}

// Errors no reconnection can mend: refused credentials and certificates that
// do not verify. Returns the error to report, or undefined to keep trying.
function fatalError(endpoint: Endpoint, error: Error): Error | undefined {
  const message = error.message ?? "";
  if (/^(WRONGPASS|NOAUTH)\b/.test(message)) {
    const user = endpoint.options.username;
    return new InvalidConfigurationError(
      `${endpoint.what} refused ${
        user ? `the credentials of user ${JSON.stringify(user)}` : "to log in"
      }: ${message}`,
      { cause: error },
    );
  }
  // A cluster node that did not say so (INFO refused) refuses SELECT.
  if (/SELECT is not allowed in cluster mode/i.test(message)) {
    return new InvalidConfigurationError(
      `${endpoint.what} is a node of a Redis Cluster, which has only database 0, not ${endpoint.db}`,
      { cause: error },
    );
  }
  // Several hosts that are no cluster (perhaps sentinels without a master).
  if (/cluster support disabled|unknown command .cluster/i.test(message)) {
    return new InvalidConfigurationError(
      `${endpoint.what} is not a Redis Cluster: several hosts are the nodes of a cluster, or sentinels with ?master=NAME (${message})`,
      { cause: error },
    );
  }
  // The database could not be selected: going on would use database 0.
  if (/DB index is out of range|NOPERM.*'select'/i.test(message)) {
    return new InvalidConfigurationError(
      `${endpoint.what} would not select database ${endpoint.db}: ${message}`,
      { cause: error },
    );
  }
  const code = String((error as { code?: unknown }).code ?? "");
  if (
    /CERT|TLS|SSL/i.test(code) ||
    /certificate|self[- ]signed|handshake/i.test(message)
  ) {
    return new NotReachableError(
      `${endpoint.what} is not reachable over TLS: ${message}`,
      { cause: error },
    );
  }
  return undefined;
}
