/**
 * The double's replicated state: the Raft index, one KV table per namespace,
 * the sessions, and the signal blocking queries wait on.
 *
 * Every write is one "Raft apply" that takes the next index, also when it
 * fails (a failed `cas` still went through the log); a session renewal is
 * not a write (Consul's leader keeps TTL timers in memory,
 * https://github.com/hashicorp/consul/pull/524).
 *
 * @module
 */

import { type DirEntry, KvTable } from "./kv_table.ts";
import { MAX_LOCK_DELAY_MS, type Session, SessionTable } from "./sessions.ts";

/** Wakes blocking queries; `abandoned` when a snapshot replaced the state. */
type Waiter = (abandoned: boolean) => void;

/** The opaque content of a snapshot (`GET /v1/snapshot`). */
export interface SnapshotData {
  index: bigint;
  tables: Array<{ ns: string; entries: DirEntry[]; maxIndex: bigint }>;
  sessions: Session[];
}

/** Options of {@linkcode ConsulState}. */
export interface StateOptions {
  /** How long a deleted key's tombstone keeps a list's index up. */
  tombstoneTtlMs: number;
}

/** The double's data. */
export class ConsulState {
  /** The last Raft index used. Consul's first entries take the first few. */
  index = 10n;
  readonly sessions: SessionTable;
  #tables = new Map<string, KvTable>();
  #waiters = new Set<Waiter>();
  #options: StateOptions;

  constructor(options: StateOptions) {
    this.#options = options;
    this.sessions = new SessionTable((id) =>
      this.apply(() => this.invalidate(id))
    );
  }

  /** The KV table of namespace `ns`. */
  table(ns: string): KvTable {
    let table = this.#tables.get(ns);
    if (!table) {
      table = new KvTable(this.#options.tombstoneTtlMs);
      this.#tables.set(ns, table);
    }
    return table;
  }

  /** Runs one write at the next index, then wakes blocking queries. */
  apply<T>(write: (idx: bigint) => T): T {
    const idx = ++this.index;
    try {
      return write(idx);
    } finally {
      this.#wake(false);
    }
  }

  /**
   * Ends a session: the keys it holds are released or deleted, as its
   * behaviour says, and get its lock delay.
   */
  invalidate(id: string, idx = this.index): void {
    const session = this.sessions.remove(id);
    if (!session) return;
    const table = this.table(session.ns);
    const delay = Math.min(Number(session.LockDelay) / 1e6, MAX_LOCK_DELAY_MS);
    for (const entry of table.list("")) {
      if (entry.Session !== id) continue;
      if (session.Behavior === "delete") table.delete(idx, entry.Key);
      else {
        table.set(idx, { ...entry, Session: "" }, true, entry.LockIndex);
      }
      if (delay > 0) table.setLockDelay(entry.Key, delay);
    }
  }

  /**
   * Resolves when the state changes (`false`) or is replaced by a snapshot
   * (`true`), or `undefined` after `ms` or when `signal` aborts.
   */
  changed(ms: number, signal: AbortSignal): Promise<boolean | undefined> {
    return new Promise((resolve) => {
      const done = (result: boolean | undefined) => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        signal.removeEventListener("abort", onAbort);
        resolve(result);
      };
      const waiter: Waiter = (abandoned) => done(abandoned);
      const onAbort = () => done(undefined);
      const timer = setTimeout(() => done(undefined), Math.max(0, ms));
      this.#waiters.add(waiter);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** How many blocking queries are waiting now. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /** Everything, for `GET /v1/snapshot`. */
  snapshot(): SnapshotData {
    return {
      index: this.index,
      tables: [...this.#tables].map(([ns, table]) => ({ ns, ...table.dump() })),
      sessions: this.sessions.dump(),
    };
  }

  /**
   * Replaces everything with a snapshot (`PUT /v1/snapshot`): indexes go back
   * to the snapshot's, and every blocking query returns at once, as Consul's
   * abandoned state store makes them.
   */
  restore(data: SnapshotData): void {
    this.index = data.index;
    // Tables are emptied and refilled in place: waiting queries hold them.
    for (const table of this.#tables.values()) table.load([], 0n);
    for (const { ns, entries, maxIndex } of data.tables) {
      this.table(ns).load(entries, maxIndex);
    }
    this.sessions.load(data.sessions);
    this.#wake(true);
  }

  /** Stops the session timers and releases waiting queries. */
  close(): void {
    this.sessions.close();
    this.#wake(true);
  }

  #wake(abandoned: boolean): void {
    for (const waiter of [...this.#waiters]) waiter(abandoned);
  }
}
