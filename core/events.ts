/**
 * Store events: what a store handles on its own and would otherwise leave
 * unseen — a lost lock, a reconnection, a retried call, a watch that resumed,
 * a client's background error. Nothing a backend client reports is
 * swallowed: what the store cannot hand to a caller it emits here.
 *
 * `store.events` is an `EventTarget` (each event a `CustomEvent` whose
 * `detail` is the {@linkcode StoreEvent}) with a typed `on()` beside it.
 *
 * @example
 * ```ts
 * import { openStore } from "@valkeyrie/valkeyrie";
 *
 * await using store = await openStore("memory:events-example");
 * const off = store.events.on("lock-lost", (event) => {
 *   console.error(`lost ${event.key}: ${event.reason}`);
 * });
 * off();
 * ```
 *
 * @module
 */

/** Every store event, by its `type`. */
export type StoreEvent =
  | {
    /** The connection to the server was made again after a loss. */
    type: "reconnect";
    backend: string;
    /** Which server, where known (`host:port`). */
    server?: string;
  }
  | {
    /** A call failed in a way worth another try, and is tried again. */
    type: "retry";
    backend: string;
    /** The call (`get`, `watch`, `keepAlive`, ...). */
    operation: string;
    /** The attempt that failed (1 for the first). */
    attempt: number;
    /** Why it failed. */
    error: unknown;
  }
  | {
    /** A held lock was lost: its `lost` signal just aborted. */
    type: "lock-lost";
    backend: string;
    /** The lock's key. */
    key: string;
    /** Why, as the lock's `LockLostError` says. */
    reason: string;
    /** The error on the lock's `lost` signal. */
    error: unknown;
  }
  | {
    /** A watch lost its feed and picked it up again (it missed nothing). */
    type: "watch-resume";
    backend: string;
    /** The key or tree prefix of the watch, where known. */
    key?: string;
  }
  | {
    /** An error the store handled on its own (a client's background error). */
    type: "error";
    backend: string;
    /** The error. */
    error: unknown;
    /** Where it came from (`connection`, `subscriber`, `session`, ...). */
    source: string;
  };

/** An event as a driver reports it: the store adds its backend. */
export type DriverEvent = StoreEvent extends infer E
  ? E extends StoreEvent ? Omit<E, "backend"> : never
  : never;

/** The type of a store event. */
export type StoreEventType = StoreEvent["type"];

/** The events of one store. */
export class StoreEvents extends EventTarget {
  /**
   * Listens to one type of event.
   *
   * @param type The event's type.
   * @param listener Called with each event of that type.
   * @returns A function that stops listening.
   */
  on<T extends StoreEventType>(
    type: T,
    listener: (event: Extract<StoreEvent, { type: T }>) => void,
  ): () => void {
    const handler = (event: Event) =>
      listener(
        (event as CustomEvent).detail as Extract<StoreEvent, { type: T }>,
      );
    this.addEventListener(type, handler);
    return () => this.removeEventListener(type, handler);
  }

  /**
   * Emits an event to its listeners. A listener that throws does not stop
   * the others, nor the store (the runtime reports it as uncaught).
   *
   * @param event The event.
   */
  emit(event: StoreEvent): void {
    this.dispatchEvent(new CustomEvent(event.type, { detail: event }));
  }
}
