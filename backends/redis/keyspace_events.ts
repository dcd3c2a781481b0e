/**
 * Making sure the server publishes the keyspace notifications that watches
 * and lock waits listen to.
 *
 * Redis publishes them only when `notify-keyspace-events` asks for them
 * (it is off by default). The store reads the setting; if it lacks what the
 * store needs, the store turns it on with `CONFIG SET` (keeping what was
 * already on). Managed services often forbid `CONFIG`: then the store writes
 * a probe key and listens for its notifications, and when they do not come
 * it fails with an error that says exactly what to configure. A watch never
 * silently hears nothing.
 *
 * @module
 */

import type { Cluster, Redis } from "ioredis";
import { StoreError } from "../../core/errors.ts";
import { delay } from "../../core/abort.ts";
import { keyspacePrefix } from "./names.ts";

/**
 * The `notify-keyspace-events` flags the store needs: `K` keyspace channels
 * (`__keyspace@DB__:KEY`), `g` generic events (`del`, `expire`, renames),
 * `$` string events (`set`), `x` expiries and `e` evictions. `A` in the
 * setting stands for every event class, `g$xe` included.
 */
export const REQUIRED_EVENTS = "Kg$xe";

/** How long a probe waits for its notifications. */
const PROBE_TIMEOUT_MS = 2_000;

/** The probe key's TTL: it removes itself even if the probe is cut off. */
const PROBE_TTL_MS = 60_000;

/**
 * The short TTL the probe then gives its key, to see it expire. Not 1 ms:
 * Redis deletes a key at once, with a `del` instead of an `expired`
 * notification, when the expiry time has already passed by the time it
 * checks (a loaded server can take a millisecond for that).
 */
const PROBE_EXPIRY_MS = 50;

/** Where {@linkcode ensureKeyspaceEvents} looks. */
export interface KeyspaceEventsCheck {
  /**
   * A connection to the server, not subscribed to anything yet: `CONFIG`
   * runs on it, and a probe listens on it.
   */
  config: Redis;
  /** The store's command connection, for a probe's writes. */
  commands: Redis | Cluster;
  /** The name a probe may write, on this server. */
  probeKey: string;
  /** The database number. */
  db: number;
  /** The server, for messages. */
  what: string;
}

/**
 * Ensures the server publishes the notifications the store needs, turning
 * them on when it may.
 *
 * @throws {StoreError} When they are off and cannot be turned on, or cannot
 * be checked and a probe hears nothing; the message says what to set.
 */
export async function ensureKeyspaceEvents(
  check: KeyspaceEventsCheck,
): Promise<void> {
  const { config, what } = check;
  let current: string;
  try {
    const reply = await config.config("GET", "notify-keyspace-events");
    current = String((reply as string[])[1] ?? "");
  } catch (error) {
    // A refusal (NOPERM, a renamed CONFIG): find out by probing. A lost
    // connection is no answer at all.
    if ((error as Error)?.name !== "ReplyError") throw error;
    return await probe(check, error);
  }
  if (covers(current)) return;
  const wanted = withRequired(current);
  try {
    await config.config("SET", "notify-keyspace-events", wanted);
  } catch (error) {
    throw new StoreError(
      `Watches and lock waits need Redis keyspace notifications, which are off on ${what} (notify-keyspace-events is ${
        JSON.stringify(current)
      }), and this client may not turn them on (CONFIG SET failed: ${
        messageOf(error)
      }): set notify-keyspace-events to ${
        JSON.stringify(wanted)
      } in the server's configuration`,
      { cause: error },
    );
  }
}

/** Whether a `notify-keyspace-events` value publishes what the store needs. */
export function covers(flags: string): boolean {
  if (!flags.includes("K")) return false;
  if (flags.includes("A")) return true;
  return [...REQUIRED_EVENTS].every((flag) => flags.includes(flag));
}

/** The value to set: what is on now plus what the store needs. */
function withRequired(flags: string): string {
  let wanted = flags;
  for (const flag of REQUIRED_EVENTS) {
    if (flag !== "K" && wanted.includes("A")) continue;
    if (!wanted.includes(flag)) wanted += flag;
  }
  return wanted;
}

// Without CONFIG: writes a probe key and listens for its `set` ($),
// `expire` (g) and `expired` (x) notifications. Evictions (e) cannot be
// provoked, so they are taken on trust.
async function probe(
  check: KeyspaceEventsCheck,
  configError: unknown,
): Promise<void> {
  const { config: subscriber, commands, probeKey: key, what } = check;
  const channel = keyspacePrefix(check.db) + key;
  const expected = ["set", "expire", "expired"];
  const heard = new Set<string>();
  let wake = () => {};
  const onMessage = (from: string, event: string) => {
    if (from !== channel) return;
    heard.add(event);
    wake();
  };
  subscriber.on("message", onMessage);
  let failure: unknown;
  try {
    await subscriber.subscribe(channel);
    await commands.set(key, "probe", "PX", PROBE_TTL_MS);
    await commands.pexpire(key, PROBE_EXPIRY_MS);
    await delay(2 * PROBE_EXPIRY_MS);
    // Touching an expired key expires it now, with its notification.
    await commands.exists(key);
    const deadline = Date.now() + PROBE_TIMEOUT_MS;
    while (expected.some((event) => !heard.has(event))) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } catch (error) {
    failure = error;
  } finally {
    subscriber.off("message", onMessage);
    subscriber.unsubscribe(channel).catch(() => {});
    commands.del(key).catch(() => {});
  }
  const missing = expected.filter((event) => !heard.has(event));
  if (failure === undefined && missing.length === 0) return;
  const why = failure !== undefined
    ? `a probe could not run (${messageOf(failure)})`
    : `a probe key's ${
      missing.join(", ")
    } notifications did not arrive within ${PROBE_TIMEOUT_MS} ms`;
  throw new StoreError(
    `Watches and lock waits need Redis keyspace notifications; ${what} does not let this client read notify-keyspace-events (CONFIG GET failed: ${
      messageOf(configError)
    }) and ${why}: set notify-keyspace-events to ${
      JSON.stringify(REQUIRED_EVENTS)
    } (or a superset such as "AK") in the server's configuration`,
    { cause: failure ?? configError },
  );
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
