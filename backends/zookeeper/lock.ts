/**
 * Locks with ZooKeeper's recipe: each contender creates an ephemeral
 * sequential node under the lock's hidden node (`<root>/¤locks/<key>`); the
 * lowest sequence number holds the lock, and every other contender watches
 * only the node just before its own, so a release wakes one waiter, not a
 * herd.
 *
 * A lock lives as long as the ZooKeeper session that created its node: the
 * session's timeout is the lock's ttl. Locks with the store's session
 * timeout use the store's session; others share one session per ttl,
 * opened while such locks exist. ZooKeeper keeps a session alive as long as
 * its client pings it, so a held lock needs no renewal, and a holder that
 * dies loses it once the session expires. The holder learns it lost the
 * lock (`lost`) when the session expires, when it has been cut off from
 * every server for the whole timeout, or when its node is deleted.
 *
 * The fencing token is the `mzxid` of the holder's value written at the key,
 * which grows with every acquisition.
 *
 * `tryLock` is one attempt of the same recipe: where a node of lower
 * sequence is there (a live holder, or a dead one whose session has not
 * expired yet), it deletes its own node at once instead of watching, and
 * hands its session back.
 *
 * A fenced commit checks, in its own `multi`, that the holder's node still
 * exists (see {@linkcode fenceOf}).
 *
 * @module
 */

import { abortable, unrefTimer } from "../../core/abort.ts";
import { StoreClosedError, StoreError } from "../../core/errors.ts";
import type { DriverTryLockOptions, LockLease } from "../../core/driver.ts";
import {
  isCode,
  isConnectionLoss,
  isDisconnected,
  MAX_RESENDS,
  resending,
} from "./errors.ts";
import { Nodes } from "./nodes.ts";
import { Code, EventType, Mode, Op } from "./protocol.ts";
import type { LockSession } from "./lock_sessions.ts";
import type { Session } from "./session.ts";

/** What the lock recipe needs from the driver. */
export interface LockContext {
  /** The store's nodes (the value at the key is written through them). */
  nodes: Nodes;
  /** A session whose timeout is `ttl`, and what hands it back. */
  sessionFor(ttl: number, signal?: AbortSignal): Promise<LockSession>;
  /** Writes `value` at `key`; resolves the new `lastIndex`. */
  put(key: string, value: Uint8Array): Promise<bigint>;
  /** Deletes `key`. */
  delete(key: string): Promise<void>;
}

/** Contender node names: `lock-<id>-<sequence>`. */
const CONTENDER = /^lock-[0-9a-f-]{36}-(\d{10})$/;

function sequence(name: string): number {
  return Number(CONTENDER.exec(name)![1]);
}

// The node path each lease of this module holds the lock with, filled where
// the lease is made.
const fences = new WeakMap<LockLease, string>();

/**
 * The node a fenced commit checks for `lease` (`undefined` for a lease of
 * anything else): the holder's contender node, which must still exist. That
 * proves the hold: the lease was handed out only once no node of lower
 * sequence was left, later contenders get higher sequences, and the node
 * goes when the lock is released, when its session expires (a dead or
 * paused holder) or when it is deleted by hand. Its name holds a random id,
 * so no other node is ever made at that path.
 *
 * @param lease A lease the driver handed out.
 */
export function fenceOf(lease: LockLease): string | undefined {
  return fences.get(lease);
}

/**
 * Queues for the lock on `key`, writes its value once it is held and returns
 * the lease: `lock` waits (`wait`); `tryLock` gets `null` where someone
 * holds it now, with our node deleted and the session handed back.
 */
export async function takeLock(
  context: LockContext,
  key: string,
  options: DriverTryLockOptions,
  wait: boolean,
): Promise<LockLease | null> {
  const { signal } = options;
  const operation = wait ? "lock" : "tryLock";
  const lockSession = await context.sessionFor(options.ttl, signal);
  const { session, release } = lockSession;
  const nodes = new Nodes(session, context.nodes.paths, context.nodes.acl);
  const dir = nodes.paths.lockPath(key);
  // The id finds our node again if the reply to its creation is lost.
  const prefix = `lock-${crypto.randomUUID()}-`;
  let mine: string | undefined;
  let createdIn = 0n;
  try {
    while (true) {
      signal?.throwIfAborted();
      if (mine !== undefined && session.sessionId !== createdIn) {
        // The session that made our node was lost: its node goes with it,
        // so whatever this delete finds (NONODE, most likely) changes
        // nothing.
        await nodes.delete(mine, -1).catch(() => {});
        mine = undefined;
      }
      if (mine === undefined) {
        mine = await createContender(nodes, dir, prefix, operation);
        createdIn = session.sessionId;
      }
      const names = await resending(
        session,
        operation,
        () => nodes.children(dir),
      );
      const contenders = (names ?? []).filter((name) => CONTENDER.test(name))
        .sort((a, b) => sequence(a) - sequence(b));
      const at = contenders.indexOf(mine.slice(dir.length + 1));
      if (at < 0) {
        // Our node is gone: its session expired. Queue up again.
        mine = undefined;
        continue;
      }
      if (at === 0) break;
      if (!wait) {
        // Held by someone: our node goes before tryLock resolves, so it
        // holds up no later taker (on the store's session it would stay
        // for as long as the store is open).
        const ours = mine;
        await resending(session, operation, () => nodes.delete(ours, -1))
          .catch((error) => {
            if (!isCode(error, Code.noNode)) throw error;
          });
        mine = undefined;
        release();
        return null;
      }
      await waitUntilGone(session, `${dir}/${contenders[at - 1]}`, signal);
    }
    const lastIndex = await context.put(key, options.value);
    return held(context, key, lockSession, nodes, mine, lastIndex);
  } catch (error) {
    if (mine !== undefined) {
      const ours = mine;
      await resending(session, operation, () => nodes.delete(ours, -1))
        .catch((failure) => {
          // Gone already, or going with its session, it holds nothing up.
          if (isCode(failure, Code.noNode) || session.closed) return;
          // Left behind, it holds up the lock for as long as its session
          // lives, and the caller hears only of its own failure.
          session.emit({
            type: "error",
            source: "lock",
            error: new StoreError(
              `A failed lock on ${
                JSON.stringify(key)
              } could not delete its ZooKeeper node ${ours}, which holds the lock up until its session ends: ${
                (failure as Error).message
              }`,
              { cause: failure },
            ),
          });
        });
    }
    release();
    throw error;
  }
}

// Creates our contender node (and the hidden nodes above it, as containers
// that ZooKeeper removes once empty); resolves its path.
async function createContender(
  nodes: Nodes,
  dir: string,
  prefix: string,
  operation: string,
): Promise<string> {
  const spec = {
    path: `${dir}/${prefix}`,
    data: new Uint8Array(),
    acl: nodes.acl,
    mode: Mode.ephemeralSequential,
  };
  for (let resends = 0;; resends++) {
    try {
      return await nodes.create(spec);
    } catch (error) {
      if (isConnectionLoss(error) && resends < MAX_RESENDS) {
        nodes.session.emit({
          type: "retry",
          operation,
          attempt: resends + 1,
          error,
        });
        // It may have been created: look for it before trying again.
        const names = await resending(
          nodes.session,
          operation,
          () => nodes.children(dir),
        );
        const found = names?.find((name) => name.startsWith(prefix));
        if (found) return `${dir}/${found}`;
        continue;
      }
      if (!isCode(error, Code.noNode)) throw error;
    }
    await makeContainer(nodes, dir);
  }
}

async function makeContainer(nodes: Nodes, path: string): Promise<void> {
  for (const node of [nodes.paths.locksPath, path]) {
    try {
      await nodes.create({
        path: node,
        data: null,
        acl: nodes.acl,
        mode: Mode.container,
      });
    } catch (error) {
      if (isCode(error, Code.nodeExists)) continue;
      if (!isCode(error, Code.noNode)) throw error;
      // The store's root is missing.
      await nodes.ensureParents(node);
      return makeContainer(nodes, path);
    }
  }
}

// Resolves once `path` is deleted, or the session that would see it is
// gone (our own node went with it); rejects when `signal` aborts.
function waitUntilGone(
  session: Session,
  path: string,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const finish = (error?: unknown) => {
      watch.stop();
      unlisten();
      signal?.removeEventListener("abort", onAbort);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = () => finish(signal!.reason);
    // A connection down again checks again once it is back; a waiter that
    // cannot watch or check the node before its own cannot wait, and says
    // why.
    const check = () => {
      session.request(Op.exists, (w) => w.string(path).bool(false)).then(
        () => {},
        (error) => {
          if (isCode(error, Code.noNode)) finish();
          else if (!isDisconnected(error)) finish(error);
        },
      );
    };
    const watch = session.watches.watch(path, false, {
      changed: (type) => {
        if (type === EventType.deleted) finish();
      },
    });
    const unlisten = session.listen({
      // Deletions while disconnected were not notified.
      connected: check,
      expired: () => finish(),
      closed: (error) => finish(error ?? new StoreClosedError("zookeeper")),
    });
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    watch.ready.then(check, (error) => {
      if (!isDisconnected(error)) finish(error);
    });
  });
}

// The lease of a held lock: `lost` follows the session and our node.
function held(
  context: LockContext,
  key: string,
  lockSession: LockSession,
  nodes: Nodes,
  mine: string,
  lastIndex: bigint,
): LockLease {
  const { session, release: releaseSession } = lockSession;
  const lost = new AbortController();
  const lose = (reason: string) => {
    if (!lost.signal.aborted) lost.abort(new StoreError(reason));
  };
  const watch = session.watches.watch(mine, false, {
    changed: (type) => {
      if (type === EventType.deleted) lose("its ZooKeeper node was deleted");
    },
  });
  const unlisten = session.listen({
    connected: (newSession) => {
      if (newSession) {
        lose("its ZooKeeper session expired");
        return;
      }
      // A deletion while disconnected was not notified.
      session.request(Op.exists, (w) => w.string(mine).bool(false)).catch(
        (error) => {
          if (isCode(error, Code.noNode)) {
            lose("its ZooKeeper node was deleted");
            return;
          }
          // A connection down again checks again once it is back, and a
          // session that ended loses the lock (`closed`); anything else
          // leaves this reconnection's check undone, unseen but for this.
          if (!isDisconnected(error) && !session.closed) {
            session.emit({ type: "error", source: "lock", error });
          }
        },
      );
    },
    expired: () => lose("its ZooKeeper session expired"),
    closed: () => lose("its ZooKeeper session closed"),
  });
  let released = false;
  /** The session was dropped by `pause`: the node goes when it expires. */
  let frozen = false;
  /** Deletes the node of a paused lock that shares its session. */
  let expiry: ReturnType<typeof setTimeout> | undefined;
  const lease: LockLease = {
    lastIndex,
    lost: lost.signal,
    // A frozen holder. Where the lock has a session of its own, its
    // connection is dropped without ending it (the store's session stays
    // up): ZooKeeper hears nothing more of it, expires it after its
    // timeout, the lock's ttl, and deletes the node, which frees the lock
    // and fails this lease's fences. A session shared with the store or
    // with other locks cannot be frozen without taking their nodes (and
    // the store's requests) along, so there only what the expiry would do
    // to this lock is done: its node is deleted once the session's timeout
    // has passed unheard, as ZooKeeper would, and the fence check is still
    // the server's.
    pause: () => {
      if (released || frozen || expiry !== undefined) return;
      if (lockSession.freeze()) {
        frozen = true;
        return;
      }
      expiry = setTimeout(() => {
        resending(session, "pause", () => nodes.delete(mine, -1)).catch(
          (error) => {
            // Released or deleted meanwhile, or gone with its session.
            if (isCode(error, Code.noNode) || session.closed) return;
            // The paused lock stays held, and nobody waits for this.
            session.emit({ type: "error", source: "lock", error });
          },
        );
      }, session.timeout);
      unrefTimer(expiry);
    },
    release: async (deleteKey, signal) => {
      if (released) return;
      released = true;
      clearTimeout(expiry);
      watch.stop();
      unlisten();
      try {
        if (deleteKey && !lost.signal.aborted) {
          await abortable(context.delete(key), signal);
        }
        // A dropped session cannot send; its node goes with it.
        if (!frozen) {
          await abortable(
            nodes.delete(mine, -1).catch((error) => {
              if (!isCode(error, Code.noNode)) throw error;
            }),
            signal,
          );
        }
      } finally {
        releaseSession();
      }
    },
  };
  fences.set(lease, mine);
  return lease;
}
