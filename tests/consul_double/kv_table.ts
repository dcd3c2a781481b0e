/**
 * One namespace's KV table: entries, tombstones and lock delays, with the
 * write semantics of Consul's state store.
 *
 * Behaviours and where they are documented:
 * - `ModifyIndex`, `CreateIndex`, `LockIndex`, `Flags`, `Session`:
 *   https://developer.hashicorp.com/consul/api-docs/kv#read-key
 * - `cas` (0 = create only), `acquire`, `release` ("an update that does not
 *   include the acquire parameter will proceed normally even if another
 *   session has locked the key"):
 *   https://developer.hashicorp.com/consul/api-docs/kv#create-update-key
 * - a write that changes nothing keeps the `ModifyIndex` and wakes no
 *   blocking query: hashicorp/consul#5885 ("KV: do not trigger watches when
 *   setting the same value", Consul 1.6)
 * - a list's index never goes backwards on a delete while the tombstone is
 *   kept, and may once it is reaped:
 *   https://developer.hashicorp.com/consul/api-docs/features/blocking#implementation-details
 *
 * @module
 */

/** A KV entry (Consul's `DirEntry`). */
export interface DirEntry {
  Key: string;
  /** `null` for an empty value, as Consul returns it. */
  Value: Uint8Array | null;
  Flags: bigint;
  Session: string;
  LockIndex: bigint;
  CreateIndex: bigint;
  ModifyIndex: bigint;
}

/** What a write request carries. */
export interface EntryInput {
  Key: string;
  Value: Uint8Array | null;
  Flags: bigint;
  /** The session of `lock`/`unlock`. */
  Session?: string;
  /** The index of `cas`, `delete-cas` and `check-index`. */
  ModifyIndex?: bigint;
}

/** A failed check or lock, with Consul's message. */
export class KvError extends Error {}

interface Tombstone {
  index: bigint;
  at: number;
}

type Undo = () => void;

const encoder = new TextEncoder();

/** Sorts keys by UTF-8 bytes, as Consul's radix tree iterates them. */
export function compareKeys(a: string, b: string): number {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  const x = a ?? new Uint8Array();
  const y = b ?? new Uint8Array();
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** One namespace's keys. */
export class KvTable {
  #entries = new Map<string, DirEntry>();
  #tombstones = new Map<string, Tombstone>();
  #lockDelays = new Map<string, number>();
  #journal: Undo[] | undefined;
  #tombstoneTtlMs: number;
  /** The table's index: the last index that changed it. */
  maxIndex = 0n;

  constructor(tombstoneTtlMs: number) {
    this.#tombstoneTtlMs = tombstoneTtlMs;
  }

  /** Starts recording undo steps (a transaction). */
  begin(): void {
    this.#journal = [];
  }

  /** Keeps what was done since {@linkcode begin}. */
  commit(): void {
    this.#journal = undefined;
  }

  /** Undoes everything since {@linkcode begin}. */
  rollback(): void {
    const journal = this.#journal ?? [];
    this.#journal = undefined;
    for (const undo of journal.reverse()) undo();
  }

  get(key: string): DirEntry | undefined {
    return this.#entries.get(key);
  }

  /** Every entry whose key starts with `prefix`, sorted by key. */
  list(prefix: string): DirEntry[] {
    const found: DirEntry[] = [];
    for (const [key, entry] of this.#entries) {
      if (key.startsWith(prefix)) found.push(entry);
    }
    return found.sort((a, b) => compareKeys(a.Key, b.Key));
  }

  /**
   * The index of a list: the highest `ModifyIndex` under the prefix or of a
   * tombstone under it, or the table's index for the whole table or when
   * nothing was ever there.
   */
  listIndex(prefix: string): bigint {
    if (prefix === "") return this.maxIndex;
    let index = 0n;
    for (const entry of this.list(prefix)) {
      if (entry.ModifyIndex > index) index = entry.ModifyIndex;
    }
    this.#reap();
    for (const [key, stone] of this.#tombstones) {
      if (key.startsWith(prefix) && stone.index > index) index = stone.index;
    }
    return index === 0n ? this.maxIndex : index;
  }

  /** Writes `entry`, keeping the key's lock unless `updateSession`. */
  set(
    idx: bigint,
    input: EntryInput,
    updateSession: boolean,
    lockIndex = 0n,
  ): DirEntry {
    const existing = this.#entries.get(input.Key);
    const entry: DirEntry = {
      Key: input.Key,
      Value: input.Value && input.Value.length ? input.Value : null,
      Flags: input.Flags,
      Session: updateSession ? input.Session ?? "" : existing?.Session ?? "",
      LockIndex: lockIndex,
      CreateIndex: existing?.CreateIndex ?? idx,
      ModifyIndex: idx,
    };
    if (
      existing && existing.LockIndex === entry.LockIndex &&
      existing.Flags === entry.Flags && existing.Session === entry.Session &&
      sameBytes(existing.Value, entry.Value)
    ) {
      // hashicorp/consul#5885: nothing changed, nothing is written.
      return existing;
    }
    this.#put(idx, entry);
    return entry;
  }

  /** `?cas=`: 0 creates only, otherwise the index must match. */
  cas(idx: bigint, input: EntryInput): DirEntry | undefined {
    const existing = this.#entries.get(input.Key);
    const want = input.ModifyIndex ?? 0n;
    if (want === 0n && existing) return undefined;
    if (want !== 0n && (!existing || existing.ModifyIndex !== want)) {
      return undefined;
    }
    return this.set(idx, input, false);
  }

  /**
   * `?acquire=`: takes the lock for a valid session. The holder may update
   * the key without taking it again (its `LockIndex` stays).
   */
  lock(idx: bigint, input: EntryInput): DirEntry | undefined {
    const existing = this.#entries.get(input.Key);
    let lockIndex = 1n;
    if (existing) {
      if (existing.Session === input.Session) lockIndex = existing.LockIndex;
      else if (existing.Session !== "") return undefined;
      else lockIndex = existing.LockIndex + 1n;
    }
    return this.set(idx, input, true, lockIndex);
  }

  /** `?release=`: clears the lock if this session holds it. */
  unlock(idx: bigint, input: EntryInput): DirEntry | undefined {
    const existing = this.#entries.get(input.Key);
    if (!existing || existing.Session !== input.Session) return undefined;
    return this.set(idx, { ...input, Session: "" }, true, existing.LockIndex);
  }

  /** Deletes `key` (a tombstone keeps its index); false if absent. */
  delete(idx: bigint, key: string): boolean {
    const existing = this.#entries.get(key);
    if (!existing) return false;
    this.#remove(idx, key, true);
    return true;
  }

  /**
   * `DELETE ?cas=`: deletes only at that index. Consul reports success when
   * the key is already gone (agent/consul/state/kvs.go, kvsDeleteCASTxn).
   */
  deleteCas(idx: bigint, key: string, index: bigint): boolean {
    const existing = this.#entries.get(key);
    if (!existing) return true;
    if (existing.ModifyIndex !== index) return false;
    this.#remove(idx, key, true);
    return true;
  }

  /** Deletes every key starting with `prefix`; one tombstone for the prefix. */
  deleteTree(idx: bigint, prefix: string): void {
    const doomed = [...this.#entries.keys()].filter((k) =>
      k.startsWith(prefix)
    );
    if (doomed.length === 0) return;
    for (const key of doomed) this.#remove(idx, key, false);
    if (prefix !== "") this.#tombstone(prefix, idx);
  }

  /** When a lock on `key` may be taken again (ms since the epoch), if delayed. */
  lockDelay(key: string): number | undefined {
    const until = this.#lockDelays.get(key);
    if (until === undefined || until <= Date.now()) return undefined;
    return until;
  }

  /** Delays new locks of `key` after its session was invalidated. */
  setLockDelay(key: string, ms: number): void {
    this.#lockDelays.set(key, Date.now() + ms);
  }

  /** Every entry (for snapshots). */
  dump(): { entries: DirEntry[]; maxIndex: bigint } {
    return { entries: [...this.#entries.values()], maxIndex: this.maxIndex };
  }

  /** Replaces the table with a snapshot's. */
  load(entries: DirEntry[], maxIndex: bigint): void {
    this.#entries = new Map(entries.map((e) => [e.Key, e]));
    this.#tombstones.clear();
    this.#lockDelays.clear();
    this.maxIndex = maxIndex;
  }

  #put(idx: bigint, entry: DirEntry): void {
    const key = entry.Key;
    const before = this.#entries.get(key);
    const beforeIndex = this.maxIndex;
    this.#entries.set(key, entry);
    this.maxIndex = idx;
    this.#journal?.push(() => {
      if (before) this.#entries.set(key, before);
      else this.#entries.delete(key);
      this.maxIndex = beforeIndex;
    });
  }

  #remove(idx: bigint, key: string, tombstone: boolean): void {
    const before = this.#entries.get(key)!;
    const beforeIndex = this.maxIndex;
    this.#entries.delete(key);
    this.maxIndex = idx;
    this.#journal?.push(() => {
      this.#entries.set(key, before);
      this.maxIndex = beforeIndex;
    });
    if (tombstone) this.#tombstone(key, idx);
  }

  #tombstone(key: string, idx: bigint): void {
    const before = this.#tombstones.get(key);
    this.#tombstones.set(key, { index: idx, at: Date.now() });
    this.#journal?.push(() => {
      if (before) this.#tombstones.set(key, before);
      else this.#tombstones.delete(key);
    });
  }

  // Consul reaps tombstones some time after the delete (its tombstone GC);
  // from then on a list's index may go backwards.
  #reap(): void {
    const cutoff = Date.now() - this.#tombstoneTtlMs;
    for (const [key, stone] of this.#tombstones) {
      if (stone.at <= cutoff) this.#tombstones.delete(key);
    }
  }
}
