/**
 * The extra sessions locks live in: one per lock ttl that differs from the
 * store's session timeout, open while locks use it.
 *
 * @module
 */

import { abortable } from "../../core/abort.ts";
import type { ZookeeperConfig } from "./config.ts";
import { openSession } from "./connect.ts";
import type { Session } from "./session.ts";

/** A session handed out for one lock, and what it may do with it. */
export interface LockSession {
  /** The session the lock's node is made in. */
  session: Session;
  /** Hands the session back; the last user of a lock session closes it. */
  release(): void;
  /**
   * For `LockLease.pause`: drops the session's connection without ending
   * the session, as a frozen or crashed holder would, so ZooKeeper expires
   * it after its timeout (the lock's ttl) and deletes the lock's node. Done
   * only where this lock alone uses the session: `false`, and nothing done,
   * for the store's own session or a lock session other locks share, whose
   * expiry would take their nodes (and the store's requests) with it.
   */
  freeze(): boolean;
}

/** Sessions for locks, one per ttl, open while locks use them. */
export class LockSessions {
  readonly #config: ZookeeperConfig;
  readonly #main: Session;
  #slots = new Map<number, { session: Promise<Session>; users: number }>();
  #sessions = new Set<Session>();

  constructor(config: ZookeeperConfig, main: Session) {
    this.#config = config;
    this.#main = main;
  }

  async acquire(
    ttl: number,
    signal?: AbortSignal,
  ): Promise<LockSession> {
    if (ttl === this.#config.sessionTimeout) {
      return { session: this.#main, release: () => {}, freeze: () => false };
    }
    let slot = this.#slots.get(ttl);
    if (!slot) {
      const opening = openSession(this.#config, ttl, undefined);
      slot = { session: opening, users: 0 };
      const own = slot;
      this.#slots.set(ttl, own);
      opening.then((session) => {
        this.#sessions.add(session);
        // Its events are the store's, whenever the store started hearing.
        session.emit = (event) => this.#main.emit(event);
        // A session that ends for good is not handed out again.
        session.listen({
          closed: () => {
            this.#sessions.delete(session);
            if (this.#slots.get(ttl) === own) this.#slots.delete(ttl);
          },
        });
      }, () => {
        if (this.#slots.get(ttl) === own) this.#slots.delete(ttl);
      });
    }
    slot.users++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (--slot.users > 0) return;
      if (this.#slots.get(ttl) === slot) this.#slots.delete(ttl);
      slot.session.then((session) => session.close(), () => {});
    };
    try {
      const session = await abortable(slot.session, signal);
      const freeze = () => {
        if (released || slot.users !== 1) return false;
        // No lock joins a session that is going to expire.
        if (this.#slots.get(ttl) === slot) this.#slots.delete(ttl);
        session.abandon();
        return true;
      };
      return { session, release, freeze };
    } catch (error) {
      release();
      throw error;
    }
  }

  async close(): Promise<void> {
    const sessions = [...this.#slots.values()].map((slot) => slot.session);
    this.#slots.clear();
    await Promise.allSettled(
      sessions.map((session) => session.then((s) => s.close())),
    );
  }

  abandon(): void {
    for (const session of this.#sessions) session.abandon();
    for (const slot of this.#slots.values()) {
      slot.session.then((session) => session.abandon(), () => {});
    }
    this.#slots.clear();
  }
}
