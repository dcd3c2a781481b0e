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
  ): Promise<{ session: Session; release(): void }> {
    if (ttl === this.#config.sessionTimeout) {
      return { session: this.#main, release: () => {} };
    }
    let slot = this.#slots.get(ttl);
    if (!slot) {
      const opening = openSession(this.#config, ttl, undefined);
      slot = { session: opening, users: 0 };
      const own = slot;
      this.#slots.set(ttl, own);
      opening.then((session) => {
        this.#sessions.add(session);
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
      return { session: await abortable(slot.session, signal), release };
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
