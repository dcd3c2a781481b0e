/**
 * Tracing: every call a store makes to its backend is published on a
 * `node:diagnostics_channel` tracing channel, where the runtime has them
 * (Node, Deno and Bun do; a browser does not, and then nothing is traced),
 * so APM tools (OpenTelemetry instrumentations, Sentry, Datadog) can hook in
 * without the library knowing them.
 *
 * One channel per operation, named `valkeyrie:<operation>` —
 * `valkeyrie:get`, `valkeyrie:put`, `valkeyrie:atomic`, `valkeyrie:lock`,
 * ... — with the tracing channel's events `start`, `end`, `asyncStart`,
 * `asyncEnd` and `error`. The message is a {@linkcode TraceContext}; on
 * `asyncEnd` it also holds `result`, on `error` the `error`. A bulk call
 * that is split into chunks is traced once per chunk, a scan once per page:
 * each trace is one round trip.
 *
 * @example
 * ```ts
 * import { tracingChannel } from "node:diagnostics_channel";
 *
 * tracingChannel("valkeyrie:get").subscribe({
 *   start(message) {
 *     (message as { startedAt?: number }).startedAt = performance.now();
 *   },
 *   asyncEnd(message) {
 *     const { key, startedAt } = message as { key?: string; startedAt: number };
 *     console.log(`get ${key}: ${performance.now() - startedAt} ms`);
 *   },
 *   end() {},
 *   asyncStart() {},
 *   error() {},
 * });
 * ```
 *
 * @module
 */

/** What a trace's events carry. Subscribers may add their own fields. */
export interface TraceContext {
  /** The operation: `get`, `put`, `getMany`, `atomic`, `lock`, ... */
  operation: string;
  /** The backend: `redis`, `etcd`, `file`, ... */
  backend: string;
  /** The key or prefix the caller gave, when the call has one. */
  key?: string;
  /** Set on `asyncEnd`: what the call resolved. */
  result?: unknown;
  /** Set on `error`: why it failed. */
  error?: unknown;
}

/** A `node:diagnostics_channel` tracing channel, as far as it is used here. */
export interface TracingChannel {
  readonly hasSubscribers?: boolean;
  tracePromise<T>(fn: () => Promise<T>, context: object): Promise<T>;
}

interface DiagnosticsChannel {
  tracingChannel(name: string): TracingChannel;
  channel(name: string): {
    readonly hasSubscribers: boolean;
    publish(message: unknown): void;
  };
}

// Looked up, not imported, so the core still loads where there is no
// node:diagnostics_channel (a browser, an edge runtime without Node APIs).
const diagnostics = (globalThis as {
  process?: { getBuiltinModule?: (id: string) => unknown };
}).process?.getBuiltinModule?.("node:diagnostics_channel") as
  | DiagnosticsChannel
  | undefined;

const channels = new Map<string, TracingChannel | undefined>();

/** The prefix of every channel's name. */
export const TRACE_PREFIX = "valkeyrie:";

/** Every operation a store traces, each on `valkeyrie:<operation>`. */
export const TRACED_OPERATIONS: readonly string[] = Object.freeze([
  "get",
  "exists",
  "put",
  "delete",
  "list",
  "scan",
  "getMany",
  "putMany",
  "deleteMany",
  "deleteTree",
  "atomic",
  "atomicPut",
  "atomicDelete",
  "increment",
  "lock",
  "tryLock",
  "cacheReads",
]);

function channelOf(operation: string): TracingChannel | undefined {
  let channel = channels.get(operation);
  if (channel === undefined && !channels.has(operation)) {
    channel = diagnostics?.tracingChannel(TRACE_PREFIX + operation);
    channels.set(operation, channel);
  }
  return channel;
}

/**
 * The operation's tracing channel when someone listens to it, else
 * `undefined`: a call builds its trace context only then, so an untraced
 * call costs one lookup.
 *
 * @param operation The operation.
 * @returns The channel to trace on, or `undefined`.
 */
export function tracingChannel(
  operation: string,
): TracingChannel | undefined {
  const channel = channelOf(operation);
  // Bun's tracing channels have no hasSubscribers: they are always traced.
  return channel === undefined || channel.hasSubscribers === false
    ? undefined
    : channel;
}

/** The channel on which every lock's hold is published once it ends. */
export const LOCK_HOLD_CHANNEL = "valkeyrie:lock.hold";

/** What {@linkcode LOCK_HOLD_CHANNEL} carries. */
export interface LockHoldMessage {
  /** The backend. */
  backend: string;
  /** The lock's key. */
  key: string;
  /** How long it was held, in milliseconds. */
  heldMs: number;
  /** Whether it ended lost rather than released. */
  lost: boolean;
}

const holds = diagnostics?.channel(LOCK_HOLD_CHANNEL);

/**
 * Publishes a lock's hold on {@linkcode LOCK_HOLD_CHANNEL}, where there is
 * one and someone listens.
 *
 * @param message The hold.
 */
export function publishHold(message: LockHoldMessage): void {
  if (holds?.hasSubscribers !== false) holds?.publish(message);
}

/**
 * The channel on which a watch publishes each change its reader takes:
 * how long the change waited in this process between the driver reporting
 * it and the reader taking it (a slow reader shows here), and how many
 * chunks still wait. The time the server took to tell the client is not in
 * it: no clock is shared with the server.
 */
export const WATCH_LAG_CHANNEL = "valkeyrie:watch.lag";

/** What {@linkcode WATCH_LAG_CHANNEL} carries. */
export interface WatchLagMessage {
  /** The backend. */
  backend: string;
  /** The call that made the stream. */
  watch: "watch" | "watchTree" | "watchEvents";
  /** The key or prefix watched, as the caller gave it. */
  key: string;
  /**
   * From the driver's report of the change (for a `watchTree` snapshot, of
   * the oldest change folded into it) to the reader taking it, in ms.
   */
  lagMs: number;
  /** Chunks still waiting for the reader after this one. */
  waiting: number;
}

const lags = diagnostics?.channel(WATCH_LAG_CHANNEL);

/**
 * Publishes a watch's delivery on {@linkcode WATCH_LAG_CHANNEL}, where
 * there is one and someone listens.
 *
 * @param message The delivery.
 */
export function publishWatchLag(message: WatchLagMessage): void {
  if (lags?.hasSubscribers !== false) lags?.publish(message);
}
