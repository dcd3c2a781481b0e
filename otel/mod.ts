/**
 * OpenTelemetry for valkeyrie stores: every traced call becomes a span
 * (a child of the span active when the call was made) and a sample of the
 * `valkeyrie.operation.duration` histogram; a store's events become the
 * counters `valkeyrie.lock.lost`, `valkeyrie.reconnects`,
 * `valkeyrie.retries`, `valkeyrie.watch.resumes` and `valkeyrie.errors`;
 * every lock's hold becomes a sample of the `valkeyrie.lock.hold`
 * histogram, every change a watch's reader takes one of
 * `valkeyrie.watch.lag` (how long it waited in the process: a slow reader).
 * Waiting for a lock is the `lock` operation's duration.
 *
 * `@opentelemetry/api` is an optional peer dependency: pass its `trace`,
 * `metrics` and `context` (so this module never loads a second copy of it).
 *
 * @example
 * ```ts ignore
 * import { context, metrics, trace } from "@opentelemetry/api";
 * import { instrument } from "@valkeyrie/valkeyrie/otel";
 *
 * const stop = instrument({ trace, metrics, context });
 * // ... every store of the process is traced ...
 * stop();
 * ```
 *
 * @module
 */

import {
  subscribe,
  tracingChannel,
  unsubscribe,
} from "node:diagnostics_channel";
import {
  LOCK_HOLD_CHANNEL,
  type LockHoldMessage,
  type Store,
  TRACE_PREFIX,
  type TraceContext,
  TRACED_OPERATIONS,
  WATCH_LAG_CHANNEL,
  type WatchLagMessage,
} from "../mod.ts";

/** The parts of `@opentelemetry/api` this module uses. */
export interface OpenTelemetryApi {
  /** `trace` of `@opentelemetry/api`. */
  trace: {
    /** Gets the tracer of an instrumentation scope. */
    getTracer(name: string, version?: string): OtelTracer;
    /** Returns a context with `span` active. */
    setSpan(context: unknown, span: OtelSpan): unknown;
  };
  /** `context` of `@opentelemetry/api`. */
  context: {
    /** The active context. */
    active(): unknown;
  };
  /** `metrics` of `@opentelemetry/api` (optional: no metrics without it). */
  metrics?: {
    /** Gets the meter of an instrumentation scope. */
    getMeter(name: string, version?: string): OtelMeter;
  };
}

/** The tracer surface used. */
export interface OtelTracer {
  /** Starts a span, a child of the span active in `context`. */
  startSpan(
    name: string,
    options?: { kind?: number; attributes?: Record<string, unknown> },
    context?: unknown,
  ): OtelSpan;
}

/** The span surface used. */
export interface OtelSpan {
  /** Sets an attribute. */
  setAttribute(key: string, value: unknown): unknown;
  /** Sets the status (`2`: error). */
  setStatus(status: { code: number; message?: string }): unknown;
  /** Records an exception event. */
  recordException(error: unknown): unknown;
  /** Ends the span. */
  end(): void;
}

/** The meter surface used. */
export interface OtelMeter {
  /** Creates a histogram. */
  createHistogram(
    name: string,
    options?: { unit?: string; description?: string },
  ): {
    /** Records a value. */
    record(value: number, attributes?: Record<string, unknown>): void;
  };
  /** Creates a counter. */
  createCounter(
    name: string,
    options?: { description?: string },
  ): {
    /** Adds to the count. */
    add(value: number, attributes?: Record<string, unknown>): void;
  };
}

const SCOPE = "@valkeyrie/valkeyrie";
// SpanKind.CLIENT and SpanStatusCode.ERROR of @opentelemetry/api.
const CLIENT = 2;
const ERROR = 2;

interface Started {
  span: OtelSpan;
  at: number;
}

/**
 * Maps every store operation of this process onto spans (and, with
 * `metrics`, the histograms of operation duration, lock hold and watch lag)
 * until the returned function is called.
 *
 * @param api `trace`, `context` and optionally `metrics` of `@opentelemetry/api`.
 * @returns A function that stops it.
 */
export function instrument(api: OpenTelemetryApi): () => void {
  const tracer = api.trace.getTracer(SCOPE);
  const duration = api.metrics?.getMeter(SCOPE).createHistogram(
    "valkeyrie.operation.duration",
    { unit: "ms", description: "Time of one round trip of a store operation" },
  );
  const started = new WeakMap<object, Started>();
  const finish = (message: object, error?: unknown) => {
    const entry = started.get(message);
    if (!entry) return;
    started.delete(message);
    const { operation, backend } = message as TraceContext;
    if (error !== undefined) {
      entry.span.recordException(error);
      entry.span.setStatus({
        code: ERROR,
        message: error instanceof Error ? error.message : String(error),
      });
    }
    entry.span.end();
    duration?.record(performance.now() - entry.at, {
      "db.system": backend,
      "db.operation": operation,
      "valkeyrie.outcome": error === undefined ? "ok" : "error",
    });
  };
  const handlers = {
    start(message: unknown) {
      const { operation, backend, key } = message as TraceContext;
      const attributes: Record<string, unknown> = {
        "db.system": backend,
        "db.operation": operation,
      };
      if (key !== undefined) attributes["valkeyrie.key"] = key;
      const span = tracer.startSpan(
        `valkeyrie.${operation}`,
        { kind: CLIENT, attributes },
        api.context.active(),
      );
      started.set(message as object, { span, at: performance.now() });
    },
    end() {},
    asyncStart() {},
    asyncEnd(message: unknown) {
      // After an error, asyncEnd comes too: the span has ended by then.
      finish(message as object);
    },
    error(message: unknown) {
      finish(message as object, (message as TraceContext).error);
    },
  };
  const channels = TRACED_OPERATIONS.map((operation) =>
    tracingChannel(TRACE_PREFIX + operation)
  );
  for (const channel of channels) channel.subscribe(handlers);
  const hold = api.metrics?.getMeter(SCOPE).createHistogram(
    "valkeyrie.lock.hold",
    { unit: "ms", description: "How long a lock was held" },
  );
  const onHold = (message: unknown) => {
    const { backend, heldMs, lost } = message as LockHoldMessage;
    hold?.record(heldMs, {
      "db.system": backend,
      "valkeyrie.outcome": lost ? "lost" : "released",
    });
  };
  subscribe(LOCK_HOLD_CHANNEL, onHold);
  const lag = api.metrics?.getMeter(SCOPE).createHistogram(
    "valkeyrie.watch.lag",
    {
      unit: "ms",
      description:
        "How long a change waited in the process before the watch's reader took it",
    },
  );
  const onLag = (message: unknown) => {
    const { backend, watch, lagMs } = message as WatchLagMessage;
    lag?.record(lagMs, { "db.system": backend, "valkeyrie.watch": watch });
  };
  subscribe(WATCH_LAG_CHANNEL, onLag);
  return () => {
    for (const channel of channels) channel.unsubscribe(handlers);
    unsubscribe(LOCK_HOLD_CHANNEL, onHold);
    unsubscribe(WATCH_LAG_CHANNEL, onLag);
  };
}

/**
 * Counts a store's events as metrics (`valkeyrie.lock.lost`,
 * `valkeyrie.lock.renewal_failures`, `valkeyrie.reconnects`,
 * `valkeyrie.retries`, `valkeyrie.watch.resumes`, `valkeyrie.errors`) until
 * the returned function is called.
 *
 * @param store The store.
 * @param api `metrics` of `@opentelemetry/api`.
 * @returns A function that stops counting.
 */
export function instrumentStore(
  store: Store,
  api: Required<Pick<OpenTelemetryApi, "metrics">>,
): () => void {
  const meter = api.metrics.getMeter(SCOPE);
  const counter = (name: string, description: string) =>
    meter.createCounter(name, { description });
  const lost = counter("valkeyrie.lock.lost", "Locks lost while held");
  const reconnects = counter("valkeyrie.reconnects", "Connections made again");
  const retries = counter("valkeyrie.retries", "Calls tried again");
  const renewals = counter(
    "valkeyrie.lock.renewal_failures",
    "Lock renewals that failed and were tried again before the TTL ended",
  );
  const resumes = counter("valkeyrie.watch.resumes", "Watches resumed");
  const errors = counter("valkeyrie.errors", "Background client errors");
  const at = { "db.system": store.backend };
  const offs = [
    store.events.on("lock-lost", () => lost.add(1, at)),
    store.events.on("reconnect", () => reconnects.add(1, at)),
    store.events.on("retry", (e) => {
      retries.add(1, { ...at, "db.operation": e.operation });
      if (e.operation === "renew") renewals.add(1, at);
    }),
    store.events.on("watch-resume", () => resumes.add(1, at)),
    store.events.on("error", (e) => errors.add(1, { ...at, source: e.source })),
  ];
  return () => offs.forEach((off) => off());
}
