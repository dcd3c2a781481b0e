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
 * @module
 */

import { abortable } from "../../core/abort.ts";
import { StoreClosedError, StoreError } from "../../core/errors.ts";
import type { DriverLockOptions, LockLease } from "../../core/driver.ts";
import { isCode, isConnectionLoss, MAX_RESENDS, resending } from "./errors.ts";
import { Nodes } from "./nodes.ts";
import { Code, EventType, Mode, Op } from "./protocol.ts";
import type { Session } from "./session.ts";

/** What the lock recipe needs from the driver. */
export interface LockContext {
  /** The store's nodes (the value at the key is written through them). */
  nodes: Nodes;
  /** A session whose timeout is `ttl`, and what hands it back. */
  sessionFor(
    ttl: number,
    signal?: AbortSignal,
  ): Promise<{ session: Session; release(): void }>;
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

/** Waits until the lock on `key` is held and its value written. */
export async function lock(
  context: LockContext,
  key: string,
  options: DriverLockOptions,
): Promise<LockLease> {
  const { signal } = options;
  const { session, release } = await context.sessionFor(options.ttl, signal);
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
        // The session that made our node was lost: its node goes with it.
        await nodes.delete(mine, -1).catch(() => {});
        mine = undefined;
      }
      if (mine === undefined) {
        mine = await createContender(nodes, dir, prefix);
        createdIn = session.sessionId;
      }
      const names = await resending(() => nodes.children(dir));
      const contenders = (names ?? []).filter((name) => CONTENDER.test(name))
        .sort((a, b) => sequence(a) - sequence(b));
      const at = contenders.indexOf(mine.slice(dir.length + 1));
      if (at < 0) {
        // Our node is gone: its session expired. Queue up again.
        mine = undefined;
        continue;
      }
      if (at === 0) break;
      await waitUntilGone(session, `${dir}/${contenders[at - 1]}`, signal);
    }
    const lastIndex = await context.put(key, options.value);
    return held(context, key, session, nodes, mine, lastIndex, release);
  } catch (error) {
    if (mine !== undefined) {
      await nodes.delete(mine, -1).catch(() => {});
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
        // It may have been created: look for it before trying again.
        const names = await resending(() => nodes.children(dir));
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
    const check = () => {
      session.request(Op.exists, (w) => w.string(path).bool(false)).then(
        () => {},
        (error) => {
          if (isCode(error, Code.noNode)) finish();
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
    watch.ready.then(check, () => {});
  });
}

// The lease of a held lock: `lost` follows the session and our node.
function held(
  context: LockContext,
  key: string,
  session: Session,
  nodes: Nodes,
  mine: string,
  lastIndex: bigint,
  releaseSession: () => void,
): LockLease {
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
          }
        },
      );
    },
    expired: () => lose("its ZooKeeper session expired"),
    closed: () => lose("its ZooKeeper session closed"),
  });
  let released = false;
  return {
    lastIndex,
    lost: lost.signal,
    release: async (deleteKey, signal) => {
      if (released) return;
      released = true;
      watch.stop();
      unlisten();
      try {
        if (deleteKey && !lost.signal.aborted) {
          await abortable(context.delete(key), signal);
        }
        await abortable(
          nodes.delete(mine, -1).catch((error) => {
            if (!isCode(error, Code.noNode)) throw error;
          }),
          signal,
        );
      } finally {
        releaseSession();
      }
    },
  };
}
