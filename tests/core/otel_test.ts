// The otel subpath with the real OpenTelemetry SDK: every store call is a
// client span, child of the span active when it was made, with the backend,
// operation and key; a failed call is an errored span; the duration and
// lock-hold histograms and the event counters are recorded by the SDK's
// metric reader.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import { MemoryDriver } from "../../backends/memory/driver.ts";
import { BaseStore, openStore, StoreError } from "../../mod.ts";
import type { DriverEvent } from "../../mod.ts";
import { instrument, instrumentStore } from "../../otel/mod.ts";

function setUp() {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(spans)],
  });
  const metricExporter = new InMemoryMetricExporter(
    AggregationTemporality.CUMULATIVE,
  );
  const reader = new PeriodicExportingMetricReader({
    exporter: metricExporter,
    exportIntervalMillis: 60_000,
  });
  const meterProvider = new MeterProvider({ readers: [reader] });
  // The API's globals are left alone: the providers are handed in.
  const api = {
    trace: {
      getTracer: (name: string) => tracerProvider.getTracer(name),
      setSpan: trace.setSpan,
    },
    context,
    metrics: { getMeter: (name: string) => meterProvider.getMeter(name) },
  };
  const collect = async () => {
    await reader.forceFlush();
    const points = new Map<string, number>();
    for (const resource of metricExporter.getMetrics()) {
      for (const scope of resource.scopeMetrics) {
        for (const metric of scope.metrics) {
          let total = 0;
          for (const point of metric.dataPoints) {
            const value = point.value as number | { count: number };
            total += typeof value === "number" ? value : value.count;
          }
          points.set(metric.descriptor.name, total);
        }
      }
    }
    return points;
  };
  /** The histogram `name`'s points: attributes, count and smallest value. */
  const histogram = async (name: string) => {
    await reader.forceFlush();
    const found: {
      attributes: Record<string, unknown>;
      count: number;
      min: number;
    }[] = [];
    for (const resource of metricExporter.getMetrics()) {
      for (const scope of resource.scopeMetrics) {
        for (const metric of scope.metrics) {
          if (metric.descriptor.name !== name) continue;
          for (const point of metric.dataPoints) {
            const value = point.value as { count: number; min?: number };
            found.push({
              attributes: point.attributes,
              count: value.count,
              min: value.min ?? NaN,
            });
          }
        }
      }
    }
    return found;
  };
  return { spans, api, collect, histogram, tracerProvider, meterProvider };
}

// What an SDK set-up registers: the active span follows async calls.
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

describe("otel", () => {
  test("store calls are client spans with backend, operation and key", async () => {
    const { spans, api, collect, tracerProvider } = setUp();
    const stop = instrument(api);
    try {
      await using store = await openStore("memory:otel-1");
      const parent = tracerProvider.getTracer("test").startSpan("request");
      await context.with(
        trace.setSpan(context.active(), parent),
        async () => {
          await store.put("config/a", "1");
          await store.get("config/a");
        },
      );
      parent.end();
      const lock = await store.lock("jobs/x", { ttl: 60_000 });
      await lock.unlock();
      const done = spans.getFinishedSpans();
      const put = done.find((s) => s.name === "valkeyrie.put")!;
      const get = done.find((s) => s.name === "valkeyrie.get")!;
      assert.ok(put && get, done.map((s) => s.name).join(", "));
      assert.equal(put.attributes["db.system"], "memory");
      assert.equal(put.attributes["db.operation"], "put");
      assert.equal(put.attributes["valkeyrie.key"], "config/a");
      assert.equal(put.kind, 2); // CLIENT
      // Under the span that was active at the call. (SDK 2 names the
      // parent parentSpanContext; SDK 1 named it parentSpanId.)
      const parentId = (put as unknown as {
        parentSpanContext?: { spanId: string };
      }).parentSpanContext?.spanId;
      assert.equal(parentId, parent.spanContext().spanId);
      assert.ok(done.some((s) => s.name === "valkeyrie.lock"));
      const points = await collect();
      assert.ok((points.get("valkeyrie.operation.duration") ?? 0) >= 3);
      assert.equal(points.get("valkeyrie.lock.hold"), 1);
    } finally {
      stop();
    }
  });

  test("a failed call is an errored span; stop() ends the tracing", async () => {
    const { spans, api } = setUp();
    const stop = instrument(api);
    class Failing extends MemoryDriver {
      override get(): Promise<null> {
        return Promise.reject(new Error("disk on fire"));
      }
    }
    await using store = new BaseStore(new Failing("otel-2"));
    await assert.rejects(store.get("k"), StoreError);
    stop();
    const [failed] = spans.getFinishedSpans();
    assert.equal(failed.name, "valkeyrie.get");
    assert.equal(failed.status.code, 2); // ERROR
    assert.match(failed.status.message ?? "", /disk on fire/);
    assert.equal(failed.events.filter((e) => e.name === "exception").length, 1);
    await store.put("after", "stop");
    assert.equal(spans.getFinishedSpans().length, 1);
  });

  test("a store's events are counted", async () => {
    const { api, collect } = setUp();
    let emit: ((event: DriverEvent) => void) | undefined;
    class Reporting extends MemoryDriver {
      observe(report: (event: DriverEvent) => void): void {
        emit = report;
      }
    }
    await using store = new BaseStore(new Reporting("otel-3"));
    const stop = instrumentStore(store, api);
    const error = new Error("socket closed");
    emit!({ type: "retry", operation: "get", attempt: 1, error });
    emit!({ type: "retry", operation: "get", attempt: 2, error });
    emit!({ type: "retry", operation: "renew", attempt: 1, error });
    emit!({ type: "reconnect" });
    emit!({ type: "error", source: "connection", error });
    stop();
    emit!({ type: "reconnect" });
    const points = await collect();
    assert.equal(points.get("valkeyrie.retries"), 3);
    assert.equal(points.get("valkeyrie.lock.renewal_failures"), 1);
    assert.equal(points.get("valkeyrie.reconnects"), 1);
    assert.equal(points.get("valkeyrie.errors"), 1);
  });

  test("each change a watch's reader takes is a sample of the watch lag", async () => {
    const { api, histogram } = setUp();
    const stop = instrument(api);
    try {
      await using store = await openStore("memory://");
      const events = store.watchEvents("w").getReader();
      assert.equal((await events.read()).value?.type, "synced");
      const key = store.watch("k").getReader();
      assert.equal((await key.read()).value, null);
      const tree = store.watchTree("t").getReader();
      assert.deepEqual((await tree.read()).value, []);
      await store.put("t/a", "1");
      await store.put("t/b", "2");
      await store.put("w/a", "1");
      await store.put("w/b", "2");
      await store.put("k", "x");
      // Nothing is read for a 100 ms timer, so every change waits longer than
      // half of it (a timer may fire a millisecond early, never 50).
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal((await events.read()).value?.type, "put");
      assert.equal((await events.read()).value?.type, "put");
      assert.ok((await key.read()).value);
      // Both puts folded into one snapshot: one sample, of the older one.
      assert.equal((await tree.read()).value?.length, 2);
      await events.cancel();
      await key.cancel();
      await tree.cancel();
    } finally {
      stop();
    }
    const points = await histogram("valkeyrie.watch.lag");
    const of = (watch: string) =>
      points.find((point) => point.attributes["valkeyrie.watch"] === watch);
    // The first state, the first tree and the synced tree are no changes:
    // not counted.
    assert.equal(of("watchEvents")?.count, 2);
    assert.equal(of("watch")?.count, 1);
    assert.equal(of("watchTree")?.count, 1);
    assert.ok(of("watchTree")!.min >= 50, String(of("watchTree")!.min));
    assert.equal(of("watchEvents")?.attributes["db.system"], "memory");
    assert.ok(of("watchEvents")!.min >= 50, String(of("watchEvents")!.min));
    assert.ok(of("watch")!.min >= 50, String(of("watch")!.min));
  });
});
