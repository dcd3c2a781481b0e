/**
 * What the conformance cases share: the runner, a per-test namespace with the
 * handles it opened, deadlines, and a stream reader with timeouts.
 *
 * @module
 */

import type { OpenOptions, Store } from "../core/types.ts";

/**
 * The test functions of the runner (`node:test`, which `deno test` and
 * `bun test` also provide).
 */
export interface TestRunner {
  /** Groups cases. */
  describe(name: string, fn: () => void): unknown;
  /** One case. */
  test(name: string, fn: () => Promise<void>): unknown;
}

/** How the kit reaches the backend under test. */
export interface ConformanceTarget {
  /** Shown in the suite's name. */
  name: string;
  /**
   * Opens a new, independent handle (its own connections) on the same data as
   * every other handle it opens. The kit passes `prefix` for namespaced cases.
   */
  open(options?: Pick<OpenOptions, "prefix">): Promise<Store>;
  /**
   * Opens a store whose server does not answer, with the given
   * `connectTimeout`. Network backends give it; without a server there is
   * nothing to be unreachable.
   */
  openUnreachable?(connectTimeout: number): Promise<Store>;
}

/**
 * Scheduling slack of the test machine, in milliseconds: how much later than
 * the contract's bound the kit accepts an event, because a loaded CI runner
 * delays timers and I/O. It is not part of any backend's promise.
 */
export const SLACK_MS = 1_500;

/**
 * How long the kit waits at most for an event the contract promises within
 * `deadlineMs` of its cause (a key's expiry, a dead holder's lock passing on):
 * the deadline and as long again, at least {@linkcode SLACK_MS} more. The
 * servers run on the same loaded machine as the test, so their timers slip
 * as the test's do, by an amount that has nothing to do with the backend; a
 * mechanism that is broken (that never fires, waits out a default TTL, or
 * reads milliseconds as seconds) misses twice its deadline by far.
 */
export function lateBound(deadlineMs: number): number {
  return deadlineMs + Math.max(deadlineMs, SLACK_MS);
}

/** How long a case waits for a chunk that must come. */
export const EVENT_TIMEOUT_MS = 10_000;

let runId = 0;
const RUN = Math.random().toString(36).slice(2, 8);

/** One case's world: a unique namespace and the handles it opened. */
export class Case {
  /** A key root no other case uses. */
  readonly ns: string;
  readonly #target: ConformanceTarget;
  readonly #stores: Store[] = [];
  /** The first handle, opened for the case. */
  a!: Store;

  constructor(target: ConformanceTarget) {
    this.#target = target;
    this.ns = `conformance-${RUN}-${++runId}`;
  }

  /** A key under the case's namespace. */
  k(...parts: string[]): string {
    return [this.ns, ...parts].join("/");
  }

  /** Opens another handle; it is closed after the case. */
  async open(options?: Pick<OpenOptions, "prefix">): Promise<Store> {
    const store = await this.#target.open(options);
    this.#stores.push(store);
    return store;
  }

  /** Opens a handle whose prefix is the case's namespace. */
  openScoped(): Promise<Store> {
    return this.open({ prefix: this.ns });
  }

  /** Closes every handle and removes what the case wrote. */
  async cleanup(): Promise<void> {
    await Promise.allSettled(this.#stores.map((store) => store.close()));
    const store = await this.#target.open();
    try {
      await store.deleteTree(this.ns);
    } finally {
      await store.close();
    }
  }
}

/** Registers one case with a deadline, its own namespace and cleanup. */
export function defineCase(
  runner: TestRunner,
  target: ConformanceTarget,
  name: string,
  body: (c: Case) => Promise<void> | void,
  timeoutMs = 60_000,
): void {
  runner.test(name, async () => {
    const c = new Case(target);
    c.a = await c.open();
    try {
      await within(timeoutMs, `the case "${name}"`, async () => await body(c));
    } finally {
      await within(30_000, "cleaning up", () => c.cleanup());
    }
  });
}

/** A function that registers cases of one target. */
export type DefineCase = (
  name: string,
  body: (c: Case) => Promise<void> | void,
  timeoutMs?: number,
) => void;

/** Binds {@linkcode defineCase} to a runner and a target. */
export function caseDefiner(
  runner: TestRunner,
  target: ConformanceTarget,
): DefineCase {
  return (name, body, timeoutMs) =>
    defineCase(runner, target, name, body, timeoutMs);
}

/** Resolves whether `promise` settles (either way) within `ms`. */
export async function settlesWithin(
  promise: Promise<unknown>,
  ms: number,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = promise.then(() => true, () => true);
  const result = await Promise.race([settled, timeout]);
  clearTimeout(timer);
  return result;
}

/** Runs `fn`, failing with a clear message if it takes longer than `ms`. */
export async function within<T>(
  ms: number,
  what: string,
  fn: () => Promise<T>,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not finish within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([fn(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every 25 ms until it holds; returns the time it took. */
export async function eventually(
  what: string,
  ms: number,
  check: () => Promise<boolean>,
): Promise<number> {
  const start = Date.now();
  while (true) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > ms) {
      throw new Error(`${what} did not happen within ${ms} ms`);
    }
    await sleep(25);
  }
}

/**
 * Polls `present` every 25 ms until it is `false`. It fails only when a poll
 * that began more than `boundMs` after `since` still found it `true`: what
 * such a poll saw was there after the bound, however late a loaded machine
 * ran the poll, while a poll that a loaded machine delays merely begins
 * later and cannot make this fail early.
 */
export async function goneWithin(
  what: string,
  since: number,
  boundMs: number,
  present: () => Promise<boolean>,
): Promise<void> {
  while (true) {
    const began = Date.now();
    if (!(await present())) return;
    if (began - since > boundMs) {
      throw new Error(
        `${what} did not happen within ${boundMs} ms: a check begun ${
          began - since
        } ms in still found it there`,
      );
    }
    await sleep(25);
  }
}

const decoder = new TextDecoder();

/** The value of a pair as text (or `null` for no pair). */
export function text(pair: { value: Uint8Array } | null): string | null {
  return pair === null ? null : decoder.decode(pair.value);
}

/** UTF-8 bytes of a string. */
export function bytes(value: string): Uint8Array {
  return new TextEncoder().encode(value);
}

/** Reads a stream chunk by chunk, with a timeout on each read. */
export class StreamReader<T> {
  readonly #reader: ReadableStreamDefaultReader<T>;
  #pending: Promise<ReadableStreamReadResult<T>> | undefined;

  constructor(stream: ReadableStream<T>) {
    this.#reader = stream.getReader();
  }

  /** The next chunk; fails if none comes within `ms` or the stream ends. */
  async next(ms = EVENT_TIMEOUT_MS): Promise<T> {
    const result = await this.#read(ms);
    if (result === undefined) throw new Error(`No chunk within ${ms} ms`);
    if (result.done) throw new Error("The stream ended");
    return result.value;
  }

  /** Reads until `match` holds for a chunk; returns that chunk. */
  async until(
    match: (chunk: T) => boolean,
    ms = EVENT_TIMEOUT_MS,
  ): Promise<T> {
    const deadline = Date.now() + ms;
    let last: T | undefined;
    while (true) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `No matching chunk within ${ms} ms; the last was ${show(last)}`,
        );
      }
      const chunk = await this.next(left);
      if (match(chunk)) return chunk;
      last = chunk;
    }
  }

  /** Resolves `true` if the stream ends within `ms`, `false` otherwise. */
  async ends(ms = EVENT_TIMEOUT_MS): Promise<boolean> {
    while (true) {
      const result = await this.#read(ms);
      if (result === undefined) return false;
      if (result.done) return true;
    }
  }

  /** The next chunk if one comes within `ms`, else `undefined`. */
  async maybe(ms: number): Promise<T | undefined> {
    const result = await this.#read(ms);
    if (result === undefined) return undefined;
    if (result.done) throw new Error("The stream ended");
    return result.value;
  }

  /** Resolves the error the stream fails with within `ms`. */
  async failure(ms = EVENT_TIMEOUT_MS): Promise<unknown> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      try {
        const result = await this.#read(deadline - Date.now());
        if (result === undefined) break;
        if (result.done) throw new Error("The stream closed without an error");
      } catch (error) {
        return error;
      }
    }
    throw new Error(`The stream did not fail within ${ms} ms`);
  }

  /** Cancels the stream. */
  cancel(): Promise<void> {
    return this.#reader.cancel();
  }

  async #read(ms: number): Promise<ReadableStreamReadResult<T> | undefined> {
    this.#pending ??= this.#reader.read();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), Math.max(0, ms));
    });
    try {
      const result = await Promise.race([this.#pending, timeout]);
      if (result !== undefined) this.#pending = undefined;
      return result;
    } catch (error) {
      this.#pending = undefined;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A short description of a chunk for failure messages. */
export function show(value: unknown): string {
  return JSON.stringify(value, (_, v) => {
    if (typeof v === "bigint") return `${v}n`;
    if (v instanceof Uint8Array) return decoder.decode(v);
    return v;
  });
}

/** Keys of a list of pairs. */
export function keys(pairs: { key: string }[]): string[] {
  return pairs.map((pair) => pair.key);
}
