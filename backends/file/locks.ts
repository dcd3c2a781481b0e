/**
 * Locks of one database, held in this process. Only one process opens a
 * database at a time (the process lock), so every lock holder and waiter
 * of a file is here; a lock dies with its holder's process, and within the
 * process it expires after its TTL unless renewed.
 *
 * @module
 */

interface Held {
  owner: symbol;
  expiresAt: number;
}

/** The held locks of one database, and who waits for their release. */
export class LockTable {
  #held = new Map<string, Held>();
  #listeners = new Set<(key: string) => void>();

  /**
   * Takes the lock on `key` for `owner` unless another owner holds it.
   * Returns `null` when taken, else how long the holder's hold has left.
   */
  tryLock(key: string, owner: symbol, ttl: number): number | null {
    const held = this.#held.get(key);
    const now = Date.now();
    if (held && held.owner !== owner && held.expiresAt > now) {
      return held.expiresAt - now;
    }
    this.#held.set(key, { owner, expiresAt: now + ttl });
    return null;
  }

  /** Extends `owner`'s hold; `false` when it no longer holds the lock. */
  renew(key: string, owner: symbol, ttl: number): boolean {
    if (!this.holds(key, owner)) return false;
    this.#held.get(key)!.expiresAt = Date.now() + ttl;
    return true;
  }

  /** Whether `owner` holds the lock on `key` now. */
  holds(key: string, owner: symbol): boolean {
    const held = this.#held.get(key);
    return held !== undefined && held.owner === owner &&
      held.expiresAt > Date.now();
  }

  /** Releases `owner`'s lock on `key`, if it holds it, and wakes waiters. */
  unlock(key: string, owner: symbol): void {
    if (this.#held.get(key)?.owner !== owner) return;
    this.#held.delete(key);
    for (const listener of [...this.#listeners]) listener(key);
  }

  /** Hears releases; returns the function that stops it. */
  listen(listener: (key: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Forgets every lock (the database is closing). */
  clear(): void {
    this.#held.clear();
    this.#listeners.clear();
  }
}
