// What a Redis server runs while a test's work runs, as MONITOR sees it:
// for tests that count the commands a store call costs.
import { Redis } from "ioredis";

/** What clients send to set a connection up, not to do work. */
const CONNECTION_COMMANDS = new Set([
  "info",
  "ping",
  "client",
  "hello",
  "select",
  "auth",
  "echo",
]);

/** Every command one server runs while `work` runs, as MONITOR sees it. */
export async function monitored(
  port: number,
  work: () => Promise<void>,
): Promise<{ args: string[]; lua: boolean }[]> {
  const connection = new Redis({ host: "127.0.0.1", port });
  const monitor = await connection.monitor();
  const seen: { args: string[]; lua: boolean }[] = [];
  const marker = `end-of-work-${crypto.randomUUID()}`;
  let done = false;
  const ended = new Promise<void>((resolve) => {
    monitor.on("monitor", (_time: string, args: string[], source: string) => {
      const name = args[0]?.toLowerCase();
      // What runs after the marker (the test's next calls, before the
      // monitor is gone) is no command of the work.
      if (done) return;
      if (name === "echo" && args[1] === marker) {
        done = true;
        resolve();
      } // A connection's own set-up (this helper's ready check, a reconnect
      // under load) is no command of the work.
      else if (!CONNECTION_COMMANDS.has(name)) {
        seen.push({ args, lua: source === "lua" });
      }
    });
  });
  try {
    await work();
    await connection.echo(marker);
    await ended;
  } finally {
    monitor.disconnect();
    connection.disconnect();
  }
  return seen;
}
