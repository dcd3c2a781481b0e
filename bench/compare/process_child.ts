/**
 * A child process of `bench/engine_compare.ts`'s multi-process rows: it
 * opens one store on a shared path, through the public API (`EmbeddedStore`
 * for `file:`, `open` of lmdb-js), and runs what its parent asks.
 *
 *     process_child.ts store|lmdb PATH
 *
 * One JSON command per stdin line, one JSON answer per stdout line
 * (`{ ok: true, ... }`, in order), and sightings of a watched key as
 * `{ seen, at }` lines. Times are `performance.timeOrigin +
 * performance.now()`: milliseconds on the system clock, comparable between
 * processes. Commands:
 *
 * - `puts n`: n durable puts of random 24-byte keys and 150-byte values, one
 *   after the other; answers when the last one resolved.
 * - `put id`: one durable put of `latency` (a 150-byte value starting with
 *   `id` as a float64); answers the time it was issued and resolved.
 * - `watch`: watches `latency`, and reports every value it sees with the
 *   time it saw it. The file: Store watches (`store.watch`); lmdb-js has no
 *   change notification across processes, so its child re-reads the key in a
 *   tight loop (a fresh read transaction each time) until it has seen `n`
 *   values, which keeps a core busy meanwhile.
 * - `close`: closes the store and exits.
 *
 * @module
 */

import { writeSync } from "node:fs";
import { createInterface } from "node:readline";
import process from "node:process";
import { open as openLmdb } from "lmdb";
import { EmbeddedStore } from "../../backends/file/mod.ts";

const [kind, path] = process.argv.slice(2);
const VALUE_BYTES = 150;
const KEY = "latency";
const now = () => performance.timeOrigin + performance.now();
// Synchronous, so that lmdb's spinning reader gets its lines out too.
const say = (message: Record<string, unknown>): void =>
  void writeSync(1, JSON.stringify(message) + "\n");
const valueOf = (id: number) => {
  const value = new Uint8Array(VALUE_BYTES);
  new DataView(value.buffer).setFloat64(0, id);
  return value;
};
const idOf = (value: Uint8Array) =>
  new DataView(value.buffer, value.byteOffset, value.byteLength).getFloat64(0);
const randomKey = () =>
  Array.from(
    crypto.getRandomValues(new Uint8Array(12)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");

/** What the rows need of a store. */
interface Side {
  put(key: string, value: Uint8Array): Promise<unknown>;
  watch(n: number): Promise<void>;
  close(): Promise<void>;
}

async function store(): Promise<Side> {
  const s = await EmbeddedStore.connect({ path });
  return {
    put: (key, value) => s.put(key, value),
    async watch() {
      const reader = s.watch(KEY).getReader();
      // The first state is the key as it is: the watch is live from then.
      await reader.read();
      (async () => {
        while (true) {
          const { value: pair, done } = await reader.read();
          if (done) return;
          if (pair) say({ seen: idOf(pair.value), at: now() });
        }
      })();
    },
    close: () => s.close(),
  };
}

function lmdb(): Promise<Side> {
  // As in the single-process rows: every commit durable when it resolves.
  const db = openLmdb({ path, encoding: "binary", overlappingSync: false });
  return Promise.resolve({
    put: (key, value) => db.put(key, value),
    watch(n) {
      // Answer first (a task runs after the answer went out), then spin:
      // nothing else runs in this process until it has seen the n values.
      setTimeout(() => {
        let last = -1;
        while (last < n - 1) {
          db.resetReadTxn();
          const value = db.get(KEY) as Uint8Array | undefined;
          if (value && idOf(value) > last) {
            last = idOf(value);
            say({ seen: last, at: now() });
          }
        }
      }, 0);
      return Promise.resolve();
    },
    close: () => db.close(),
  });
}

const side = await (kind === "lmdb" ? lmdb() : store());
say({ ok: true });

const commands: Record<
  string,
  (command: Record<string, number>) => Promise<Record<string, unknown>>
> = {
  async puts({ n }) {
    const keys = Array.from({ length: n }, randomKey);
    const values = Array.from(
      { length: n },
      () => crypto.getRandomValues(new Uint8Array(VALUE_BYTES)),
    );
    const start = now();
    for (let i = 0; i < n; i++) await side.put(keys[i], values[i]);
    return { start, end: now() };
  },
  async put({ id }) {
    const value = valueOf(id);
    const issued = now();
    await side.put(KEY, value);
    return { issued, resolved: now() };
  },
  async watch({ n }) {
    await side.watch(n);
    return {};
  },
  async close() {
    await side.close();
    setTimeout(() => process.exit(0), 0);
    return {};
  },
};

// Commands run one at a time, in order.
let queue = Promise.resolve();
createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line);
  queue = queue.then(() => commands[command.op](command)).then(
    (answer) => say({ ok: true, ...answer }),
    (error) => say({ ok: false, error: String(error) }),
  );
});
