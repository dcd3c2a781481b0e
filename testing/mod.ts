/**
 * The conformance kit: every rule of the store contract as test cases, run
 * against any backend. A backend is done when the kit passes on it, in Deno,
 * Bun and Node, against its real server.
 *
 * @example Running the kit with `node:test` (also in `deno test`, `bun test`)
 * ```ts ignore
 * import { describe, test } from "node:test";
 * import { openStore } from "@valkeyrie/valkeyrie";
 * import { conformance } from "@valkeyrie/valkeyrie/testing";
 *
 * conformance({ describe, test }, {
 *   name: "memory",
 *   open: (options) => openStore("memory:kit", options),
 * });
 * ```
 *
 * @module
 */

import { atomicCases } from "./atomic_cases.ts";
import { bulkCases } from "./bulk_cases.ts";
import { coordinationCases } from "./coordination_cases.ts";
import { counterCases } from "./counter_cases.ts";
import { eventCases } from "./events_cases.ts";
import { scanCases } from "./scan_cases.ts";
import { crudCases } from "./crud_cases.ts";
import type { ConformanceTarget, TestRunner } from "./harness.ts";
import { keyCases } from "./keys_cases.ts";
import { lifecycleCases } from "./lifecycle_cases.ts";
import { listCases } from "./list_cases.ts";
import { lockCases } from "./lock_cases.ts";
import { ttlCases } from "./ttl_cases.ts";
import { valueCases } from "./values_cases.ts";
import { watchCases } from "./watch_cases.ts";

export type { ConformanceTarget, TestRunner } from "./harness.ts";
export { abandon } from "../core/store.ts";
export { pauseLock } from "../core/lock.ts";

/**
 * Registers the kit's cases for one backend, grouped by the part of the
 * contract they cover.
 *
 * @param runner `describe` and `test` of the test runner.
 * @param target How to open handles of the backend under test.
 *
 * @example
 * ```ts ignore
 * import { describe, test } from "node:test";
 * import { conformance } from "@valkeyrie/valkeyrie/testing";
 * import { MemoryStore } from "@valkeyrie/valkeyrie/memory";
 *
 * conformance({ describe, test }, {
 *   name: "memory",
 *   open: async (options) => new MemoryStore({ name: "kit", ...options }),
 * });
 * ```
 */
export function conformance(
  runner: TestRunner,
  target: ConformanceTarget,
): void {
  runner.describe(`conformance: ${target.name}`, () => {
    runner.describe("keys", () => keyCases(runner, target));
    runner.describe("values", () => valueCases(runner, target));
    runner.describe(
      "get, put, exists, delete",
      () => crudCases(runner, target),
    );
    runner.describe("list and deleteTree", () => listCases(runner, target));
    runner.describe("scan", () => scanCases(runner, target));
    runner.describe("ttl", () => ttlCases(runner, target));
    runner.describe("atomic", () => atomicCases(runner, target));
    runner.describe("counters", () => counterCases(runner, target));
    runner.describe("bulk calls", () => bulkCases(runner, target));
    runner.describe("watches", () => watchCases(runner, target));
    runner.describe("change events", () => eventCases(runner, target));
    runner.describe("locks", () => lockCases(runner, target));
    runner.describe(
      "coordination: tryLock, fenced writes, recipes",
      () => coordinationCases(runner, target),
    );
    runner.describe(
      "closing, aborts, errors, prefix",
      () => lifecycleCases(runner, target),
    );
  });
}
