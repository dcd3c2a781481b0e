/**
 * Every watch of a store on one etcd watch stream. Each watch remembers the
 * revision it needs next, so when the stream breaks (a member dies, loses its
 * leader, or the network drops) the hub opens a new one on another member and
 * asks for each watch again from exactly there: etcd replays what happened in
 * between. When etcd no longer has that history (it was compacted), the watch
 * is told to re-read and start over.
 *
 * etcd3's own watch manager is not used: it resumes from the revision of the
 * create response rather than the last event seen (losing the events between
 * them after an early disconnect), throws from inside its stream handler on
 * an unknown watch id, and backs off for up to 30 s.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type { IEvent, IWatchRequest, IWatchResponse } from "etcd3";
import type { IDuplexStream } from "etcd3";
import { Backoff, type BackoffOptions } from "../../core/backoff.ts";
import { StoreError } from "../../core/errors.ts";
import type { EtcdClient } from "./client.ts";
import { failureKind, isInvalidToken, translateError } from "./errors.ts";
import { type KeyRange, keyString as keyText } from "./keyspace.ts";

/**
 * Pauses before opening the stream again: from 50 ms, doubling up to 2 s,
 * with equal jitter (the watches of many stores on one member that died do
 * not all come back at once).
 */
const RECONNECT_BACKOFF: BackoffOptions = {
  baseMs: 50,
  capMs: 2_000,
  jitter: "equal",
};

/** What a watch is told. */
export interface WatchTarget {
  /** The events of one response (whole revisions), in order. */
  events(events: IEvent[]): void;
  /**
   * etcd no longer holds the history the watch needs (it was compacted): the
   * watch has ended; re-read the state and watch again from there.
   */
  compacted(): void;
  /** etcd refused the watch for good; it has ended. */
  failed(error: StoreError): void;
  /** The stream broke: events may be missing until it is open again. */
  stale?(): void;
}

/** A running watch. */
export interface WatchHandle {
  /** Stops the watch and frees it on the server. Idempotent. */
  cancel(): void;
}

interface Registration {
  id: string;
  range: { key: Buffer; end?: Buffer };
  /** The first revision not yet delivered. */
  next: bigint;
  target: WatchTarget;
}

type Stream = IDuplexStream<IWatchRequest, IWatchResponse>;

/** One multiplexed watch stream and the watches on it. */
export class WatchHub {
  readonly #client: EtcdClient;
  readonly #watches = new Map<string, Registration>();
  #stream: Stream | undefined;
  #opening = false;
  #reconnect: ReturnType<typeof setTimeout> | undefined;
  readonly #backoff = new Backoff(RECONNECT_BACKOFF);
  #lastId = 0;
  #closed = false;
  // The stream broke since it was last open: the next one is a reconnection.
  #broke = false;
  // Attempts to open it again that failed in a row.
  #failures = 0;

  constructor(client: EtcdClient) {
    this.#client = client;
  }

  /**
   * Watches `range` (one key when `end` is left out) from revision `from` on.
   *
   * @param range The key or key range.
   * @param from The first revision to deliver.
   * @param target Where events go.
   */
  watch(
    range: { key: Buffer; end?: Buffer } | KeyRange,
    from: bigint,
    target: WatchTarget,
  ): WatchHandle {
    // Watch ids are ours (etcd 3.4 accepts them), so responses never have to
    // be matched to requests by their order.
    const id = String(++this.#lastId);
    const registration: Registration = { id, range, next: from, target };
    this.#watches.set(id, registration);
    if (this.#stream) this.#create(this.#stream, registration);
    else this.#open();
    return { cancel: () => this.#cancel(registration) };
  }

  /** Ends the stream; watches still registered get nothing more. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#reconnect);
    this.#watches.clear();
    this.#drop();
  }

  #cancel(registration: Registration): void {
    if (this.#watches.get(registration.id) !== registration) return;
    this.#watches.delete(registration.id);
    if (!this.#stream) return;
    if (this.#watches.size === 0) {
      this.#drop();
    } else {
      this.#stream.write({ cancel_request: { watch_id: registration.id } });
    }
  }

  #create(stream: Stream, registration: Registration): void {
    stream.write({
      create_request: {
        key: registration.range.key,
        range_end: registration.range.end,
        start_revision: registration.next.toString(),
        watch_id: registration.id,
        // Periodic progress notifications move `next` forward on a quiet
        // range, so a resume rarely starts before a compaction.
        progress_notify: true,
      },
    });
  }

  #open(): void {
    if (this.#closed || this.#opening || this.#stream) return;
    if (this.#watches.size === 0) return;
    this.#opening = true;
    this.#client.stream<IWatchRequest, IWatchResponse>("Watch", "watch").then(
      (stream) => {
        this.#opening = false;
        if (this.#closed || this.#watches.size === 0) {
          stream.cancel();
          return;
        }
        this.#stream = stream;
        if (this.#broke) {
          this.#broke = false;
          this.#failures = 0;
          this.#client.emit({ type: "reconnect", server: this.#client.where });
          for (const registration of this.#watches.values()) {
            this.#client.emit({
              type: "watch-resume",
              key: keyText(registration.range.key),
            });
          }
        }
        stream.on("data", (response) => this.#receive(stream, response));
        stream.on("error", (error) => this.#broken(stream, error));
        stream.on(
          "end",
          () => this.#broken(stream, new Error("the watch stream ended")),
        );
        for (const registration of this.#watches.values()) {
          this.#create(stream, registration);
        }
      },
      (error) => {
        this.#opening = false;
        this.#retry(error);
      },
    );
  }

  #receive(stream: Stream, response: IWatchResponse): void {
    if (stream !== this.#stream) return;
    this.#backoff.reset();
    const registration = this.#watches.get(response.watch_id);
    // Events may still come for a watch cancelled a moment ago.
    if (!registration) return;
    if (response.canceled) {
      this.#watches.delete(registration.id);
      if (response.compact_revision !== "0" && response.compact_revision) {
        registration.target.compacted();
      } else {
        registration.target.failed(
          new StoreError(
            `etcd ended a watch: ${
              response.cancel_reason || "no reason given"
            }`,
          ),
        );
      }
      return;
    }
    const events = response.events;
    if (events.length > 0) {
      registration.next = BigInt(events[events.length - 1].kv.mod_revision) +
        1n;
      registration.target.events(events);
    } else if (!response.created) {
      // A progress notification: nothing in the range changed up to here.
      const next = BigInt(response.header.revision) + 1n;
      if (next > registration.next) registration.next = next;
    }
  }

  #broken(stream: Stream, error: unknown): void {
    if (stream !== this.#stream) return;
    this.#stream = undefined;
    if (this.#closed) return;
    if (failureKind(error) === "final" && !isInvalidToken(error)) {
      const failure = translateError(error, {
        op: "watch",
        server: this.#client.where,
      }) ?? new StoreError(
        `The etcd watch stream failed: ${(error as Error).message}`,
        { cause: error },
      );
      const watches = [...this.#watches.values()];
      this.#watches.clear();
      for (const registration of watches) registration.target.failed(failure);
      return;
    }
    for (const registration of this.#watches.values()) {
      registration.target.stale?.();
    }
    this.#retry(error);
  }

  #retry(error: unknown): void {
    if (this.#closed || this.#watches.size === 0) return;
    this.#broke = true;
    this.#client.emit({
      type: "retry",
      operation: "watch",
      attempt: ++this.#failures,
      error,
    });
    clearTimeout(this.#reconnect);
    this.#reconnect = setTimeout(() => this.#open(), this.#backoff.next());
  }

  #drop(): void {
    const stream = this.#stream;
    this.#stream = undefined;
    stream?.cancel();
  }
}
