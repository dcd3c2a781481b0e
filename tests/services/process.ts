/**
 * Running real servers for tests: free loopback ports, temp dirs, child
 * processes in their own process group, bounded readiness waits, installing
 * what is missing, and cleanup — also when a test run dies, through pid files
 * that `scripts/stop_services.sh` reaps.
 *
 * Works in Deno, Bun and Node (only `node:` modules).
 *
 * @module
 */

import { spawn, spawnSync } from "node:child_process";
import { createServer, Socket } from "node:net";
import {
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/**
 * Where running services leave their pid files: `$VALKEYRIE_SERVICES_DIR`,
 * which `scripts/test_all.sh` sets per run so its reaper kills only its own
 * servers, else a shared directory under the temp dir.
 */
export const PID_DIR: string = process.env.VALKEYRIE_SERVICES_DIR ??
  join(tmpdir(), "valkeyrie-services");

/** A server started by a test. */
export interface Service {
  /** What it is, for messages: `"redis"`. */
  readonly name: string;
  /** The loopback address it listens on. */
  readonly host: string;
  /** Its client port. */
  readonly port: number;
  /** Its working directory (data, logs, config). */
  readonly dir: string;
  /** Stops the server and removes its directory. Idempotent. */
  stop(): Promise<void>;
  /** Kills the server at once, as a crash would (SIGKILL), keeping its dir. */
  kill(): Promise<void>;
  /**
   * Freezes the server (SIGSTOP): its connections stay open and nothing
   * answers, as in a long GC pause or a stalled VM, until {@linkcode resume}.
   */
  pause(): void;
  /** Lets a paused server run again (SIGCONT). */
  resume(): void;
  /** The last lines of its log, for failure messages. */
  log(): string;
}

/**
 * Servers' ports come from here: below the kernel's ephemeral range (32768
 * and up on Linux), where `listen(0)` and every outgoing connection take
 * theirs, so no client socket of a parallel test can hold a port between
 * its choice and the server's bind; and low enough that a Redis Cluster
 * node's bus port (its port + 10 000) stays below that range as well.
 */
const PORT_RANGE = { first: 15_000, count: 7_000 };
/** Where claimed ports are recorded, one file each, shared by test processes. */
const PORT_DIR = join(PID_DIR, "ports");
/** A claim this old was left by an earlier run (a whole run takes minutes). */
const STALE_CLAIM_MS = 60 * 60_000;

/**
 * A port nobody listens on now, on 127.0.0.1, and that no other caller of
 * this function gets — in this process or in any test process running
 * beside it (claims are files created exclusively).
 */
export async function freePort(): Promise<number> {
  mkdirSync(PORT_DIR, { recursive: true });
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = PORT_RANGE.first +
      Math.floor(Math.random() * PORT_RANGE.count);
    if (claim(port) && await bindable(port)) return port;
  }
  throw new Error(
    `no free port between ${PORT_RANGE.first} and ${
      PORT_RANGE.first + PORT_RANGE.count
    } (claims in ${PORT_DIR})`,
  );
}

function claim(port: number): boolean {
  const file = join(PORT_DIR, String(port));
  try {
    writeFileSync(file, String(process.pid), { flag: "wx" });
    return true;
  } catch {
    try {
      if (Date.now() - statSync(file).mtimeMs < STALE_CLAIM_MS) return false;
      writeFileSync(file, String(process.pid));
      return true;
    } catch {
      return false;
    }
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A fresh directory under the system temp dir. */
export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `valkeyrie-${name}-`));
}

/** Resolves when `check` holds; fails after `ms` with `what` in the message. */
export async function waitUntil(
  what: string,
  ms: number,
  check: () => Promise<boolean> | boolean,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (true) {
    try {
      if (await check()) return;
    } catch {
      // Not ready yet.
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} was not ready within ${ms} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Whether something accepts TCP connections at 127.0.0.1:`port`. */
export function portOpen(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(500, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.connect(port, host);
  });
}

/** Whether a command is on the PATH. */
export function hasCommand(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`]).status === 0;
}

/**
 * Fails with what to install when `command` is missing. Tests never install
 * anything themselves: scripts/setup.sh names every package, so a missing one
 * shows up there (and in its self-check), not only on a machine that lacks it.
 */
export function ensureCommand(command: string, packages: string[]): void {
  if (hasCommand(command)) return;
  throw new Error(
    `${command} is missing: run bash scripts/setup.sh (Debian packages ${
      packages.join(" ")
    })`,
  );
}

/** How to start a server process. */
export interface SpawnOptions {
  /** The service's name, for messages and the pid file. */
  name: string;
  /** The program. */
  command: string;
  /** Its arguments. */
  args: string[];
  /** Its working directory; the log is written there too. */
  dir: string;
  /** The client port (readiness: it accepts connections). */
  port: number;
  /** Extra environment. */
  env?: Record<string, string>;
  /** A stronger readiness check than an open port. */
  ready?: () => Promise<boolean>;
  /** How long it may take to become ready (default 30 s). */
  readyTimeoutMs?: number;
  /** Keep the directory on stop (a restart reuses it). */
  keepDir?: boolean;
}

const running = new Set<number>();

// A test process that exits without stopping its servers still kills them.
// Deno skips process "exit" listeners when it dies of an uncaught error, but
// fires the global "unload" event.
function killAll(): void {
  for (const pid of running) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  running.clear();
}
process.on("exit", killAll);
globalThis.addEventListener?.("unload", killAll);

/**
 * Starts a server in its own process group, with its output in
 * `dir/NAME.log`, and waits until it is ready.
 */
export async function startProcess(options: SpawnOptions): Promise<Service> {
  const { name, dir, port } = options;
  const logPath = join(dir, `${name}.log`);
  const logFd = openSync(logPath, "a");
  const child = spawn(options.command, options.args, {
    cwd: dir,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", logFd, logFd],
    detached: true,
  });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name} did not start`);
  running.add(pid);
  mkdirSync(PID_DIR, { recursive: true });
  const pidFile = join(PID_DIR, `${name}-${pid}.pid`);
  writeFileSync(pidFile, String(pid));
  const removePidFile = () => {
    try {
      unlinkSync(pidFile);
    } catch {
      // Already removed.
    }
  };
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", () => {
      exited = true;
      running.delete(pid);
      // A server that exits on its own leaves no pid file: the reaper must
      // never signal a pid the system has given to another process since.
      removePidFile();
      resolve();
    })
  );
  const log = () => {
    try {
      return readFileSync(logPath, "utf8").split("\n").slice(-30).join("\n");
    } catch {
      return "(no log)";
    }
  };
  const send = (sig: NodeJS.Signals) => {
    if (exited) return false;
    try {
      process.kill(-pid, sig);
      return true;
    } catch {
      return false;
    }
  };
  const signal = async (sig: NodeJS.Signals, graceMs: number) => {
    if (!send(sig)) return;
    // A paused server acts on no signal but SIGKILL until it runs again.
    send("SIGCONT");
    let grace: ReturnType<typeof setTimeout> | undefined;
    const timer = new Promise((
      resolve,
    ) => (grace = setTimeout(resolve, graceMs)));
    await Promise.race([exit, timer]);
    clearTimeout(grace); // or it keeps a finished test process alive
    if (!exited) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // Gone.
      }
      let wait: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        exit,
        new Promise((resolve) => (wait = setTimeout(resolve, 2_000))),
      ]);
      clearTimeout(wait);
    }
    removePidFile();
  };
  let stopped: Promise<void> | undefined;
  const service: Service = {
    name,
    host: "127.0.0.1",
    port,
    dir,
    log,
    kill: () => signal("SIGKILL", 2_000),
    pause: () => void send("SIGSTOP"),
    resume: () => void send("SIGCONT"),
    stop: () =>
      stopped ??= signal("SIGTERM", 5_000).then(() => {
        if (!options.keepDir) rmSync(dir, { recursive: true, force: true });
      }),
  };
  try {
    // A server that exits while starting fails it at once, not after the
    // whole readiness timeout.
    await Promise.race([
      waitUntil(
        `${name} on port ${port}`,
        options.readyTimeoutMs ?? 30_000,
        async () =>
          !exited && (await portOpen(port)) &&
          (options.ready ? await options.ready() : true),
        100,
      ),
      exit.then(() => {
        throw new Error(`${name} on port ${port} exited while starting`);
      }),
    ]);
  } catch (error) {
    const text = log();
    await service.stop();
    throw new Error(
      `${(error as Error).message}${exited ? " (it exited)" : ""}\n${text}`,
    );
  }
  return service;
}

/**
 * {@linkcode run} without blocking the event loop: for commands slow to
 * start (a JVM) while this process must keep its own sessions alive.
 */
export function runAsync(command: string, args: string[], options: {
  timeoutMs?: number;
} = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (text) => (stdout += text));
    child.stderr!.setEncoding("utf8").on("data", (text) => (stderr += text));
    const timer = setTimeout(
      () => child.kill("SIGKILL"),
      options.timeoutMs ?? 60_000,
    );
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (status, signal) => {
      clearTimeout(timer);
      if (status === 0) resolve(stdout);
      else {
        reject(
          new Error(
            `${command} ${args.join(" ")} failed (${
              status ?? signal
            }): ${stderr}${stdout}`,
          ),
        );
      }
    });
  });
}

/** Runs a command to completion; fails with its output on a non-zero exit. */
export function run(command: string, args: string[], options: {
  cwd?: string;
  env?: Record<string, string>;
  input?: string;
  timeoutMs?: number;
} = {}): string {
  const result = spawnSync(command, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    input: options.input,
    encoding: "utf8",
    timeout: options.timeoutMs ?? 60_000,
  });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} failed (${
        result.status ?? result.signal
      }): ${result.stderr}${result.stdout}`,
    );
  }
  return result.stdout;
}
