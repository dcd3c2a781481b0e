/**
 * The `valkeyrie` command line: get, put, incr, rm, ls, the watches, lock,
 * elect, members, dump, restore and copy on any store URL, and verify on the
 * embedded engine's files.
 *
 * The executable is `cli/main.ts` (`deno run -A jsr:@valkeyrie/valkeyrie/cli`,
 * or `valkeyrie` from npm); this module is its logic, runnable from code:
 *
 * @example
 * ```ts ignore
 * import { runCli } from "./mod.ts";
 *
 * const code = await runCli(["--store", "memory:", "ls"]);
 * ```
 *
 * @module
 */

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
// Only the public entry point: the CLI is a client of the library like any
// other (and in Node's tests it then shares the npm build's classes).
import {
  copy,
  dump,
  KeyExistsError,
  KeyModifiedError,
  KeyNotFoundError,
  type KVPair,
  type Lock,
  LockLostError,
  openStore,
  parseStoreUrl,
  restore,
  type Store,
  StoreError,
  type WatchEvent,
} from "../mod.ts";
import type { IntegrityReport } from "../backends/file/mod.ts";
import { Group, type Member } from "../coordination/mod.ts";
import { HELP } from "./help.ts";
import { completionScript } from "./completion.ts";
import { applyTxn, parseTxn, TxnSyntaxError } from "./txn.ts";
import { VERSION } from "./version.ts";

/** The longest timer JavaScript runtimes keep (2³¹ − 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;

/** Exit codes of the CLI. */
export const EXIT = {
  /** Done. */
  ok: 0,
  /** The key was not found (get). */
  notFound: 1,
  /** The command line was wrong. */
  usage: 2,
  /** The store failed (unreachable, invalid key, ...). */
  storeError: 3,
  /** The lock was lost while its command ran. */
  lockLost: 4,
  /** lock --try found the lock held, or lock --timeout ran out. */
  lockBusy: 5,
  /** put --if-absent / --if-index or a txn check found the key changed. */
  conflict: 6,
  /** Stopped by Ctrl-C. */
  interrupted: 130,
} as const;

/** Where the CLI reads and writes; the process's streams by default. */
export interface CliIO {
  /** Writes to standard output. */
  out(text: string | Uint8Array): void;
  /** Writes to standard error. */
  err(text: string): void;
  /** Reads all of standard input. */
  readStdin(): Promise<Uint8Array>;
  /** Standard input as it comes (`restore`); else `readStdin` is used. */
  stdin?(): AsyncIterable<Uint8Array>;
  /** Resolves once standard output has taken what was written (`dump`). */
  drained?(): Promise<void>;
  /** Whether standard error is a terminal: then progress is shown there. */
  progress?: boolean;
  /** Whether standard output is a terminal: `get` then ends with a newline. */
  terminal?: boolean;
  /** Environment variables. */
  env: Record<string, string | undefined>;
  /**
   * Aborted on Ctrl-C (and SIGTERM, SIGHUP): watches and waits stop. Its
   * reason, when a signal's name, is passed on to a `lock` command.
   */
  signal?: AbortSignal;
}

/**
 * The store used without `--store` or `$VALKEYRIE_STORE`: the embedded
 * engine's file `valkeyrie.db` in the working directory.
 */
export const DEFAULT_STORE = "file:./valkeyrie.db";

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Runs the CLI with `args` (without the program name).
 *
 * @param args The command line.
 * @param io Where to read and write (the process's streams by default).
 * @returns The exit code.
 *
 * @example
 * ```ts ignore
 * import { runCli } from "./mod.ts";
 *
 * await runCli(["--store", "memory:", "put", "greeting", "hello"]);
 * ```
 */
export async function runCli(
  args: string[],
  processIo: CliIO = processIO(),
): Promise<number> {
  // Under --json, errors too are JSON (one object per line on stderr).
  let io = processIo;
  const dashes = args.indexOf("--");
  const own = dashes < 0 ? args : args.slice(0, dashes);
  const command = dashes < 0 ? [] : args.slice(dashes + 1);
  let parsed;
  try {
    parsed = parseArgs({
      args: own,
      allowPositionals: true,
      options: {
        store: { type: "string", short: "s" },
        prefix: { type: "string" },
        json: { type: "boolean" },
        ttl: { type: "string" },
        value: { type: "string" },
        recursive: { type: "boolean", short: "r" },
        limit: { type: "string" },
        "keys-only": { type: "boolean" },
        reverse: { type: "boolean" },
        from: { type: "string" },
        to: { type: "string" },
        follow: { type: "boolean" },
        try: { type: "boolean" },
        timeout: { type: "string" },
        "connect-timeout": { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
        "if-absent": { type: "boolean" },
        "if-index": { type: "string" },
      },
    });
  } catch (error) {
    if (own.includes("--json")) io = jsonErrors(io);
    return usage(io, (error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.json) io = jsonErrors(io);
  if (values.version) {
    io.out(`valkeyrie ${VERSION}\n`);
    return EXIT.ok;
  }
  const [name, ...given] = positionals;
  // After "--" come lock's command, or else arguments that may start with
  // "-" (`put k -- -5`, `incr hits -- -1`), as POSIX has it.
  const holds = name === "lock" || name === "elect";
  const rest = holds ? given : [...given, ...command];
  // `help CMD` and `CMD --help`: that command's part of the help.
  const topic = name === "help" ? rest[0] : values.help ? name : undefined;
  if (topic !== undefined) {
    const text = commandHelp(topic);
    if (text === undefined) return usage(io, `unknown command "${topic}"`);
    io.out(text);
    return EXIT.ok;
  }
  if (values.help || name === undefined || name === "help") {
    io.out(HELP);
    return name === undefined && !values.help ? EXIT.usage : EXIT.ok;
  }
  if (name === "completion") {
    const script = completionScript(
      rest[0] ?? "",
      [...Object.keys(COMMANDS), "completion", "help"],
      COMPLETED_OPTIONS,
    );
    if (script === undefined || rest.length !== 1) {
      return usage(io, "completion takes a shell: bash, zsh or fish");
    }
    io.out(script);
    return EXIT.ok;
  }
  const spec = COMMANDS[name];
  if (!spec) return usage(io, `unknown command "${name}"`);
  if (rest.length < spec.min || rest.length > spec.max) {
    return usage(io, `${name} takes ${spec.args}`);
  }
  if (holds && command.length === 0) {
    return usage(io, `${name} needs a command after --`);
  }
  const ttl = values.ttl === undefined ? undefined : Number(values.ttl);
  if (ttl !== undefined && !(ttl > 0 && Number.isFinite(ttl))) {
    return usage(io, `--ttl must be a positive number of milliseconds`);
  }
  const connectTimeout = values["connect-timeout"] === undefined
    ? undefined
    : Number(values["connect-timeout"]);
  if (connectTimeout !== undefined && !(connectTimeout > 0)) {
    return usage(io, `--connect-timeout must be a positive number`);
  }
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) {
    return usage(io, `--limit must be a whole number above 0`);
  }
  // --from is copy's source URL, and the index watch-events resumes after.
  const copying = name === "copy";
  if (
    !copying && values.from !== undefined && !/^[0-9]+$/.test(values.from)
  ) {
    return usage(io, `--from must be an index (a whole number of 0 or more)`);
  }
  const from = values.from === undefined || copying
    ? undefined
    : BigInt(values.from);
  if (copying && values.to === undefined) {
    return usage(io, "copy needs --to URL");
  }
  const timeout = values.timeout === undefined
    ? undefined
    : Number(values.timeout);
  if (
    timeout !== undefined &&
    !(Number.isSafeInteger(timeout) && timeout > 0 && timeout <= MAX_TIMER_MS)
  ) {
    return usage(
      io,
      `--timeout must be a whole number of milliseconds from 1 to ${MAX_TIMER_MS}`,
    );
  }
  if (
    values["if-index"] !== undefined && !/^[0-9]+$/.test(values["if-index"])
  ) {
    return usage(io, "--if-index must be an index (a whole number)");
  }
  if (values["if-absent"] && values["if-index"] !== undefined) {
    return usage(io, "--if-absent and --if-index cannot be given together");
  }
  if (values.try && timeout !== undefined) {
    return usage(io, "--try and --timeout cannot be given together");
  }
  const url = (copying ? values.from : undefined) ?? values.store ??
    io.env.VALKEYRIE_STORE ?? DEFAULT_STORE;
  const output = new Output(io, values.json ?? false);
  // Reading a file: store that does not exist yet reads an empty store and
  // creates no file (opening would).
  if ((name === "get" || name === "ls") && isMissingFile(url)) {
    if (name === "ls") {
      output.list([], values["keys-only"] ?? false);
      return EXIT.ok;
    }
    if (output.json) output.line("null");
    else io.err(`valkeyrie: key not found: ${rest[0]}\n`);
    return EXIT.notFound;
  }
  let store: Store | undefined;
  try {
    store = await openStore(url, {
      prefix: values.prefix,
      connectTimeout,
      signal: io.signal,
    });
    return await spec.run({
      store,
      args: rest,
      ttl,
      value: values.value,
      recursive: values.recursive ?? false,
      scan: {
        limit,
        keysOnly: values["keys-only"] ?? false,
        reverse: values.reverse ?? false,
      },
      from,
      to: values.to,
      follow: values.follow ?? false,
      prefixOption: values.prefix,
      connectTimeout,
      ifIndex: values["if-absent"]
        ? null
        : values["if-index"] === undefined
        ? undefined
        : BigInt(values["if-index"]),
      tryOnly: values.try ?? false,
      timeout,
      command,
      io,
      output,
    });
  } catch (error) {
    if (io.signal?.aborted) return EXIT.interrupted;
    if (error instanceof StoreError) {
      if (values.json) {
        processIo.err(
          JSON.stringify({
            error: {
              code: error.code,
              name: error.name,
              message: error.message,
            },
          }) + "\n",
        );
      } else io.err(`valkeyrie: ${error.message}\n`);
      return error instanceof KeyNotFoundError
        ? EXIT.notFound
        : error instanceof KeyExistsError || error instanceof KeyModifiedError
        ? EXIT.conflict
        : EXIT.storeError;
    }
    throw error;
  } finally {
    await store?.close();
  }
}

interface Context {
  store: Store;
  args: string[];
  ttl?: number;
  value?: string;
  recursive: boolean;
  scan: { limit?: number; keysOnly: boolean; reverse: boolean };
  from?: bigint;
  /** copy --to: the target's URL. */
  to?: string;
  /** copy --follow: mirror live changes until stopped. */
  follow: boolean;
  /** --prefix, for a second store (copy's target). */
  prefixOption?: string;
  connectTimeout?: number;
  /** put --if-absent (`null`) or --if-index N: a compare-and-set. */
  ifIndex?: bigint | null;
  /** lock --try: give up at once when the lock is held. */
  tryOnly: boolean;
  /** lock --timeout: give up after this many milliseconds. */
  timeout?: number;
  command: string[];
  io: CliIO;
  output: Output;
}

interface Command {
  args: string;
  min: number;
  max: number;
  run(context: Context): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  get: {
    args: "KEY",
    min: 1,
    max: 1,
    async run({ store, args, output, io }) {
      const pair = await store.get(args[0]);
      if (!pair) {
        if (output.json) output.line("null");
        else io.err(`valkeyrie: key not found: ${args[0]}\n`);
        return EXIT.notFound;
      }
      output.value(pair);
      return EXIT.ok;
    },
  },
  put: {
    args: "KEY VALUE (VALUE - reads standard input)",
    min: 2,
    max: 2,
    async run({ store, args, ttl, io, output, ifIndex }) {
      const value = args[1] === "-" ? await io.readStdin() : args[1];
      // --if-index N: only if the key is still at N; --if-absent: only if
      // it does not exist (KeyModifiedError / KeyExistsError: exit 6).
      const previous = ifIndex === undefined
        ? undefined
        : ifIndex === null
        ? null
        : { key: args[0], value: new Uint8Array(), lastIndex: ifIndex };
      const lastIndex = previous === undefined
        ? await store.put(args[0], value, { ttl })
        : (await store.atomicPut(args[0], value, previous, { ttl })).lastIndex;
      if (output.json) {
        output.line(JSON.stringify({ ok: true, lastIndex: `${lastIndex}` }));
      }
      return EXIT.ok;
    },
  },
  txn: {
    args: "(steps on standard input: check, put, put-ttl, delete, incr)",
    min: 0,
    max: 0,
    async run({ store, io, output }) {
      let steps;
      try {
        steps = parseTxn(decoder.decode(await io.readStdin()));
      } catch (error) {
        if (error instanceof TxnSyntaxError) return usage(io, error.message);
        throw error;
      }
      const result = await applyTxn(store.atomic(), steps).commit({
        signal: io.signal,
      });
      if (output.json) {
        output.line(JSON.stringify(
          result.ok
            ? { ok: true, lastIndex: `${result.lastIndex}` }
            : { ok: false },
        ));
      } else if (result.ok) output.line(`ok ${result.lastIndex}`);
      else io.err("valkeyrie: a check failed; nothing was written\n");
      return result.ok ? EXIT.ok : EXIT.conflict;
    },
  },
  incr: {
    args: "KEY [DELTA] (a whole number, default 1)",
    min: 1,
    max: 2,
    async run({ store, args, ttl, io, output }) {
      const text = args[1] ?? "1";
      if (!/^-?[0-9]+$/.test(text)) {
        return usage(
          io,
          `DELTA must be a whole number, not ${JSON.stringify(text)}`,
        );
      }
      const value = await store.increment(args[0], BigInt(text), { ttl });
      output.line(
        output.json ? JSON.stringify({ value: String(value) }) : String(value),
      );
      return EXIT.ok;
    },
  },
  rm: {
    args: "KEY (with -r: KEY and everything under it)",
    min: 1,
    max: 1,
    async run({ store, args, recursive, output }) {
      if (recursive) await store.deleteTree(args[0]);
      else await store.delete(args[0]);
      if (output.json) output.line(JSON.stringify({ ok: true }));
      return EXIT.ok;
    },
  },
  ls: {
    args: "[PREFIX]",
    min: 0,
    max: 1,
    async run({ store, args, output, scan, io }) {
      // A page at a time: a large tree is printed as it is read.
      const pairs = store.scan(args[0] ?? "", { ...scan, signal: io.signal });
      await output.stream(pairs, scan.keysOnly);
      return EXIT.ok;
    },
  },
  dump: {
    args: "[PREFIX]",
    min: 0,
    max: 1,
    async run({ store, args, io }) {
      const progress = new Progress(io, "dumped");
      progress.count(store, args[0] ?? "", io.signal);
      const lines = dump(store, args[0] ?? "", {
        signal: io.signal,
        onProgress: (keys) => progress.show(keys),
      });
      for await (const chunk of lines) {
        io.out(chunk);
        // Memory stays at a batch: wait while the reader is slower.
        await io.drained?.();
      }
      progress.done();
      return EXIT.ok;
    },
  },
  restore: {
    args: "(a dump on standard input)",
    min: 0,
    max: 0,
    async run({ store, io, output }) {
      const progress = new Progress(io, "restored");
      const input = io.stdin?.() ??
        (async function* () {
          yield await io.readStdin();
        })();
      const keys = await restore(store, input, {
        signal: io.signal,
        onProgress: (keys) => progress.show(keys),
      });
      return done(progress, output, io, keys);
    },
  },
  copy: {
    args: "[PREFIX] --to URL [--from URL] [--follow]",
    min: 0,
    max: 1,
    async run(context) {
      const { store, args, io, output } = context;
      await using target = await openStore(context.to!, {
        prefix: context.prefixOption,
        connectTimeout: context.connectTimeout,
        signal: io.signal,
      });
      const progress = new Progress(io, "copied");
      progress.count(store, args[0] ?? "", io.signal);
      const keys = await copy(store, target, {
        prefix: args[0],
        follow: context.follow,
        signal: io.signal,
        onProgress: (keys) => progress.show(keys),
        onSynced: (keys) => {
          progress.done();
          if (output.json) output.line(JSON.stringify({ synced: keys }));
          else io.err(`valkeyrie: ${keys} keys copied; following changes\n`);
        },
      });
      // Ctrl-C is how a follow ends: that is success.
      return done(progress, output, io, keys);
    },
  },
  watch: {
    args: "KEY",
    min: 1,
    max: 1,
    async run({ store, args, output, io }) {
      for await (const pair of store.watch(args[0], { signal: io.signal })) {
        if (pair) output.pair(pair);
        else output.absent(args[0]);
      }
      return EXIT.ok;
    },
  },
  "watch-tree": {
    args: "[PREFIX]",
    min: 0,
    max: 1,
    async run({ store, args, output, io }) {
      const prefix = args[0] ?? "";
      for await (
        const pairs of store.watchTree(prefix, { signal: io.signal })
      ) {
        output.snapshot(prefix, pairs);
      }
      return EXIT.ok;
    },
  },
  "watch-events": {
    args: "[PREFIX] (with --from INDEX: resume after INDEX)",
    min: 0,
    max: 1,
    async run({ store, args, output, io, from }) {
      const events = store.watchEvents(args[0] ?? "", {
        fromIndex: from,
        signal: io.signal,
      });
      for await (const event of events) output.event(event);
      return EXIT.ok;
    },
  },
  verify: {
    args: "no arguments",
    min: 0,
    max: 0,
    async run({ store, output, io }) {
      const engine = store as Store & {
        verify?: () => Promise<IntegrityReport>;
      };
      if (typeof engine.verify !== "function") {
        return usage(
          io,
          `verify checks the embedded engine's file; a ${store.backend}: store has none`,
        );
      }
      const report = await engine.verify();
      if (output.json) output.line(JSON.stringify(report));
      else {
        for (const error of report.errors) io.err(`valkeyrie: ${error}\n`);
        for (const note of report.recovery) {
          io.err(`valkeyrie: opening recovered: ${note}\n`);
        }
        const state = report.ok ? "ok" : "damaged";
        const keys = `${report.keys} key${report.keys === 1 ? "" : "s"}`;
        const damage = report.damagedPages.length > 0
          ? `, ${report.damagedPages.length} damaged, ${report.unreachablePages} unreachable`
          : "";
        output.line(
          `${state}: ${keys}, ${report.pages} pages (${report.freePages} free, ${report.leakedPages} leaked${damage})`,
        );
      }
      return report.ok ? EXIT.ok : EXIT.storeError;
    },
  },
  lock: {
    args: "KEY -- COMMAND [ARGS...]",
    min: 1,
    max: 1,
    run: (context) => holdWhileRunning(context, context.args[0], context.value),
  },
  elect: {
    args: "NAME VALUE -- COMMAND [ARGS...]",
    min: 2,
    max: 2,
    // The leader of NAME is the holder of its lock, whose value followers
    // read at NAME (as the leadership module's Candidate and Follower do).
    run: (context) =>
      holdWhileRunning(context, context.args[0], context.args[1]),
  },
  members: {
    args: "NAME",
    min: 1,
    max: 1,
    async run({ store, args, output, io }) {
      const group = new Group(store, args[0]);
      for await (const members of group.members({ signal: io.signal })) {
        output.members(args[0], members);
      }
      return EXIT.ok;
    },
  },
};

// lock and elect: takes the lock on `key` (waiting, or not with --try, or
// up to --timeout), then runs the command while it is held.
async function holdWhileRunning(
  { store, ttl, tryOnly, timeout, command, io }: Context,
  key: string,
  value: string | undefined,
): Promise<number> {
  let lock: Lock | null;
  if (tryOnly) {
    lock = await store.tryLock(key, { ttl, value, signal: io.signal });
  } else {
    const waited = timeout === undefined
      ? undefined
      : AbortSignal.timeout(timeout);
    const signals = [io.signal, waited].filter((s) => s !== undefined);
    try {
      lock = await store.lock(key, {
        ttl,
        value,
        signal: signals.length > 0 ? AbortSignal.any(signals) : undefined,
      });
    } catch (error) {
      if (!waited?.aborted || io.signal?.aborted) throw error;
      lock = null;
    }
  }
  if (lock === null) {
    io.err(
      `valkeyrie: the lock on ${JSON.stringify(key)} is held by another${
        tryOnly ? "" : ` (waited ${timeout} ms)`
      }\n`,
    );
    return EXIT.lockBusy;
  }
  try {
    return await runHolding(command, lock, io);
  } finally {
    // A lost lock says so here too; the command's exit code (lockLost)
    // has told that already.
    await lock.unlock().catch((error) => {
      if (!(error instanceof LockLostError)) throw error;
    });
  }
}

// Runs the command while the lock is held, telling it the lock's key and
// fencing token in its environment. If the lock is lost, the command is
// stopped: it must not go on believing it holds the lock. A SIGINT, SIGTERM
// or SIGHUP to the CLI is passed on to the command, and the lock is released
// only once the command has exited.
function runHolding(
  command: string[],
  lock: Lock,
  io: CliIO,
): Promise<number> {
  const { lost } = lock;
  return new Promise((resolve, reject) => {
    const child = spawn(command[0], command.slice(1), {
      stdio: "inherit",
      env: {
        ...io.env,
        VALKEYRIE_LOCK_KEY: lock.key,
        VALKEYRIE_LOCK_TOKEN: String(lock.lastIndex),
      },
    });
    let lostLock = false;
    const onLost = () => {
      lostLock = true;
      io.err(
        `valkeyrie: ${(lost.reason as Error).message}; stopping the command\n`,
      );
      child.kill("SIGTERM");
    };
    lost.addEventListener("abort", onLost, { once: true });
    const onInterrupt = () => {
      const reason = io.signal?.reason;
      child.kill(
        typeof reason === "string" && FORWARDED.includes(reason)
          ? reason as NodeJS.Signals
          : "SIGINT",
      );
    };
    io.signal?.addEventListener("abort", onInterrupt, { once: true });
    child.once("error", (error) => {
      lost.removeEventListener("abort", onLost);
      reject(new StoreError(`Cannot run ${command[0]}: ${error.message}`));
    });
    child.once("exit", (code, signal) => {
      lost.removeEventListener("abort", onLost);
      io.signal?.removeEventListener("abort", onInterrupt);
      if (lostLock) resolve(EXIT.lockLost);
      else if (code !== null) resolve(code);
      else {resolve(
          signal === "SIGINT"
            ? EXIT.interrupted
            : 128 + (SIGNAL_NUMBERS[signal!] ?? 0),
        );}
    });
  });
}

/** The signals the CLI stops on, and passes on to a `lock` command. */
const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP"];
const SIGNAL_NUMBERS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGKILL: 9,
  SIGTERM: 15,
};

// Whether `url` names a file: store whose file does not exist.
function isMissingFile(url: string): boolean {
  try {
    const parsed = parseStoreUrl(url);
    return parsed.scheme === "file" && parsed.path !== "" &&
      !existsSync(parsed.path);
  } catch {
    return false;
  }
}

/** restore and copy: how many keys, as JSON or on standard error. */
function done(
  progress: Progress,
  output: Output,
  io: CliIO,
  keys: number,
): number {
  progress.done();
  if (output.json) output.line(JSON.stringify({ keys }));
  else io.err(`valkeyrie: ${progress.what} ${keys} keys\n`);
  return EXIT.ok;
}

/**
 * Keys done, the rate and, once the keys to do are counted, the share done
 * and the time left: one line of standard error, when it is a terminal.
 */
class Progress {
  #io: CliIO;
  /** What is done to the keys: "copied", "restored". */
  readonly what: string;
  #started = performance.now();
  #shown = 0;
  #any = false;
  #total: number | undefined;
  #counting = new AbortController();

  constructor(io: CliIO, what: string) {
    this.#io = io;
    this.what = what;
  }

  /**
   * Counts the keys under `prefix` with a keys-only scan beside the work,
   * for the ETA; only when progress is shown, and stopped by `done()`.
   */
  count(store: Store, prefix: string, signal?: AbortSignal): void {
    if (!this.#io.progress) return;
    const stop = signal
      ? AbortSignal.any([signal, this.#counting.signal])
      : this.#counting.signal;
    (async () => {
      let keys = 0;
      for await (
        const _ of store.scan(prefix, { keysOnly: true, signal: stop })
      ) keys++;
      this.#total = keys;
    })().catch(() => {}); // a count that fails or is stopped shows no ETA
  }

  show(keys: number): void {
    if (!this.#io.progress) return;
    const now = performance.now();
    // A few times a second is enough for a person.
    if (now - this.#shown < 200) return;
    this.#shown = now;
    this.#any = true;
    this.#io.err(
      `\r${
        progressLine(this.what, keys, this.#total, now - this.#started)
      }\x1b[K`,
    );
  }

  done(): void {
    this.#counting.abort();
    if (this.#any) this.#io.err("\n");
    this.#any = false;
  }
}

/**
 * One progress line: keys done and the rate, and with the number of keys to
 * do, the share done and the time left at the rate so far.
 *
 * @param what What is done to the keys ("dumped").
 * @param keys Keys done.
 * @param total Keys to do, once counted.
 * @param elapsedMs Time since the start.
 * @returns The line.
 */
export function progressLine(
  what: string,
  keys: number,
  total: number | undefined,
  elapsedMs: number,
): string {
  const rate = keys / Math.max(elapsedMs / 1000, 0.001);
  const speed = `${Math.round(rate)} keys/s`;
  // Keys written while the work runs can take it past the count.
  if (total === undefined || total < keys || total === 0) {
    return `${what} ${keys} keys, ${speed}`;
  }
  const share = Math.floor((keys / total) * 100);
  const left = rate > 0 ? (total - keys) / rate : undefined;
  const eta = left === undefined ? "" : `, ETA ${duration(left)}`;
  return `${what} ${keys} of ${total} keys (${share}%), ${speed}${eta}`;
}

// Seconds as a person reads them: "42 s", "3 min 5 s", "2 h 10 min".
function duration(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3_600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3_600)} h ${Math.floor((s % 3_600) / 60)} min`;
}

/** Options the shell completion offers. */
const COMPLETED_OPTIONS = [
  "--store",
  "--prefix",
  "--ttl",
  "--value",
  "--try",
  "--timeout",
  "--recursive",
  "--limit",
  "--keys-only",
  "--reverse",
  "--from",
  "--to",
  "--follow",
  "--if-absent",
  "--if-index",
  "--json",
  "--connect-timeout",
  "--help",
  "--version",
];

/**
 * One command's part of the help: its lines under "Commands:" and the
 * options whose description names it.
 */
function commandHelp(name: string): string | undefined {
  const lines = HELP.split("\n");
  const start = lines.findIndex((line) =>
    line.startsWith(`  ${name} `) ||
    line === `  ${name}`
  );
  if (start < 0) return undefined;
  const own = [lines[start]];
  // Continuation lines are indented past the command column.
  for (let i = start + 1; lines[i]?.startsWith("      "); i++) {
    own.push(lines[i]);
  }
  const options: string[] = [];
  const from = lines.indexOf("Options:");
  for (let i = from + 1; i < lines.length && lines[i] !== ""; i++) {
    if (!/^\s+-/.test(lines[i])) continue;
    const block = [lines[i]];
    while (
      lines[i + 1]?.startsWith("        ") && !/^\s+-/.test(lines[i + 1])
    ) {
      block.push(lines[++i]);
    }
    const text = block.join(" ");
    if (
      new RegExp(`(^|[ ,])${name}[:,]`).test(text) ||
      / the store| the namespace| print JSON| unreachable/.test(text)
    ) {
      options.push(...block);
    }
  }
  // "  put KEY VALUE           write VALUE ...": the usage, then its text.
  const [synopsis, ...first] = lines[start].trim().split(/\s{2,}/);
  const text = [first.join(" "), ...own.slice(1).map((line) => line.trim())]
    .filter(Boolean).map((line) => `  ${line}`).join("\n");
  return `Usage: valkeyrie [options] ${synopsis}\n\n${text}\n\nOptions:\n${
    options.join("\n")
  }\n`;
}

/** Turns the CLI's error lines into JSON objects, one per line. */
function jsonErrors(io: CliIO): CliIO {
  return {
    ...io,
    err(text) {
      if (!text.startsWith("valkeyrie: ")) return io.err(text);
      const usageHint = '\nRun "valkeyrie help" for usage.\n';
      const isUsage = text.endsWith(usageHint);
      const message = (isUsage ? text.slice(0, -usageHint.length) : text)
        .slice("valkeyrie: ".length).trimEnd();
      io.err(
        JSON.stringify({
          error: { code: isUsage ? "USAGE" : "CLI", message },
        }) + "\n",
      );
    },
  };
}

function usage(io: CliIO, message: string): number {
  io.err(`valkeyrie: ${message}\nRun "valkeyrie help" for usage.\n`);
  return EXIT.usage;
}

/** Prints pairs for people, or as JSON (one document per line). */
class Output {
  readonly json: boolean;
  #io: CliIO;

  constructor(io: CliIO, json: boolean) {
    this.#io = io;
    this.json = json;
  }

  line(text: string): void {
    this.#io.out(text + "\n");
  }

  // `get` prints the bare value, so `$(valkeyrie get k)` is the value; on a
  // terminal a newline follows, so the prompt does not run into it.
  value(pair: KVPair): void {
    if (this.json) this.line(JSON.stringify(toJson(pair)));
    else {
      this.#io.out(pair.value);
      const last = pair.value[pair.value.length - 1];
      if (this.#io.terminal && last !== 0x0a) this.#io.out("\n");
    }
  }

  pair(pair: KVPair): void {
    if (this.json) this.line(JSON.stringify(toJson(pair)));
    else {this.line(
        `${pair.key} = ${inline(pair.value)}  (index ${pair.lastIndex})`,
      );}
  }

  absent(key: string): void {
    if (this.json) this.line(JSON.stringify({ key, value: null }));
    else this.line(`${key} (absent)`);
  }

  list(pairs: KVPair[], keysOnly = false): void {
    if (this.json) {
      this.line(JSON.stringify(pairs.map((p) => keysOnly ? p.key : toJson(p))));
    } else {for (const pair of pairs) {
        this.line(keysOnly ? pair.key : `${pair.key} = ${inline(pair.value)}`);
      }}
  }

  // `ls`: what `list` prints, written as the pairs come (a JSON array too).
  async stream(pairs: AsyncIterable<KVPair>, keysOnly: boolean): Promise<void> {
    let first = true;
    if (this.json) this.#io.out("[");
    for await (const pair of pairs) {
      if (this.json) {
        const item = keysOnly ? pair.key : toJson(pair);
        this.#io.out((first ? "" : ",") + JSON.stringify(item));
      } else {
        this.line(keysOnly ? pair.key : `${pair.key} = ${inline(pair.value)}`);
      }
      first = false;
    }
    if (this.json) this.#io.out("]\n");
  }

  event(event: WatchEvent): void {
    if (this.json) {
      const json = event.type === "put"
        ? { type: "put", ...toJson(event.pair) }
        : event.type === "delete"
        ? { type: "delete", key: event.key }
        : event.type === "synced"
        ? { type: "synced", lastIndex: `${event.lastIndex}` }
        : { type: "reset" };
      this.line(JSON.stringify(json));
    } else if (event.type === "put") {
      this.line(
        `put ${event.pair.key} = ${
          inline(event.pair.value)
        }  (index ${event.pair.lastIndex})`,
      );
    } else if (event.type === "delete") this.line(`delete ${event.key}`);
    else if (event.type === "synced") this.line(`synced ${event.lastIndex}`);
    else this.line("reset");
  }

  // `members`: the group after each change.
  members(name: string, members: Member[]): void {
    if (this.json) {
      this.line(JSON.stringify(members));
      return;
    }
    this.line(
      `-- ${name}: ${members.length} member${members.length === 1 ? "" : "s"}`,
    );
    for (const member of members) this.line(`${member.id} = ${member.value}`);
  }

  snapshot(prefix: string, pairs: KVPair[]): void {
    if (this.json) {
      this.line(JSON.stringify(pairs.map(toJson)));
      return;
    }
    this.line(
      `-- ${prefix || "/"}: ${pairs.length} key${
        pairs.length === 1 ? "" : "s"
      }`,
    );
    for (const pair of pairs) this.line(`${pair.key} = ${inline(pair.value)}`);
  }
}

// A value on one line of `ls` and the watches: the text itself; quoted as
// a JSON string (as etcdctl and redis-cli quote) when it has a line break,
// leading or trailing spaces or a quote first; base64 when not text.
function inline(value: Uint8Array): string {
  const text = asText(value);
  if (text === undefined) return `base64:${toBase64(value)}`;
  return /[\n\r]|^\s|\s$|^"/.test(text) ? JSON.stringify(text) : text;
}

function asText(value: Uint8Array): string | undefined {
  try {
    const text = decoder.decode(value);
    // deno-lint-ignore no-control-regex
    return /[\u0000-\u0008\u000b-\u001f\u007f]/.test(text) ? undefined : text;
  } catch {
    return undefined;
  }
}

function toJson(pair: KVPair): Record<string, string> {
  const text = asText(pair.value);
  return text === undefined
    ? {
      key: pair.key,
      base64: toBase64(pair.value),
      lastIndex: `${pair.lastIndex}`,
    }
    : { key: pair.key, value: text, lastIndex: `${pair.lastIndex}` };
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** The CLI's I/O on this process's streams, with Ctrl-C as the signal. */
export function processIO(): CliIO {
  const interrupt = new AbortController();
  // The reason is the signal's name, so `lock` passes the same one on.
  for (const signal of FORWARDED) {
    process.once(signal, () => interrupt.abort(signal));
  }
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    readStdin: async () => {
      const chunks: Uint8Array[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Uint8Array);
      const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const chunk of chunks) {
        all.set(chunk, at);
        at += chunk.length;
      }
      return all;
    },
    stdin: () => process.stdin as AsyncIterable<Uint8Array>,
    drained: () =>
      process.stdout.writableNeedDrain
        ? new Promise((resolve) => process.stdout.once("drain", resolve))
        : Promise.resolve(),
    progress: process.stderr.isTTY === true,
    terminal: process.stdout.isTTY === true,
    env: process.env,
    signal: interrupt.signal,
  };
}
