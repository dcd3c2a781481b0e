/**
 * Key and tree watches on persistent ZooKeeper watches (3.6+ `addWatch`).
 *
 * A notification says only that a node changed, not how: each one makes
 * the watch read the node again, and the read's answer is what it reports.
 * Reads of one node never overlap (a change heard during a read makes
 * another read after it), so the last report is the node's final state.
 * After every reconnection, and after the session is replaced, the watch
 * reads everything again, since changes made while it was away were not
 * notified: a watch resumes by itself and never loses the final state,
 * and says so with a `watch-resume` event.
 *
 * @module
 */

import type { KeySink, TreeSink } from "../../core/driver.ts";
import { serial } from "../../core/serial.ts";
import { isDisconnected, translateError } from "./errors.ts";
import { entryOf, type Nodes } from "./nodes.ts";
import { EventType } from "./protocol.ts";
import { listTree } from "./tree.ts";

/** Watches the node of `key`, reporting its state to `sink`. */
export function watchKey(
  nodes: Nodes,
  key: string,
  sink: KeySink,
  signal: AbortSignal,
): void {
  const path = nodes.paths.path(key);
  const reread = serial(async () => {
    if (signal.aborted) return;
    try {
      const state = await nodes.read(path, true);
      if (!signal.aborted) sink.state(entryOf(key, state));
    } catch (error) {
      if (!signal.aborted && !isDisconnected(error)) {
        sink.error(translateError(error, { op: "watch", key }) ?? error);
      }
    }
  }, { onError: (error) => sink.error(error) });
  follow(nodes, path, key, false, signal, sink, {
    changed: (type) => {
      if (type !== EventType.childrenChanged) reread();
    },
    resync: reread,
  });
}

/** Watches every key under `dir`, reporting them to `sink`. */
export function watchTree(
  nodes: Nodes,
  dir: string,
  sink: TreeSink,
  signal: AbortSignal,
): void {
  const key = dir.endsWith("/") ? dir.slice(0, -1) : dir;
  const base = nodes.paths.path(key);
  const readers = new Map<string, () => void>();
  // Paths changed before or while the whole tree is read: read after it.
  let listing = true;
  let heardWhileListing = new Set<string>();
  const fail = (error: unknown) => {
    if (!signal.aborted && !isDisconnected(error)) {
      sink.error(translateError(error, { op: "watch", key: dir }) ?? error);
    }
  };
  const readNode = (path: string, child: string) => {
    let reader = readers.get(path);
    if (!reader) {
      reader = serial(async () => {
        try {
          const state = await nodes.read(path, true);
          if (signal.aborted) return;
          const entry = entryOf(child, state);
          if (entry) sink.put(entry);
          else sink.delete(child);
        } catch (error) {
          fail(error);
        }
      }, {
        onError: (error) => sink.error(error),
        onIdle: () => readers.delete(path),
      });
      readers.set(path, reader);
    }
    reader();
  };
  const relist = serial(async () => {
    if (signal.aborted) return;
    listing = true;
    try {
      const entries = await listTree(nodes, key);
      if (signal.aborted) return;
      sink.reset(entries);
    } catch (error) {
      fail(error);
    } finally {
      listing = false;
    }
    const heard = heardWhileListing;
    heardWhileListing = new Set();
    for (const path of heard) changed(path);
  }, { onError: (error) => sink.error(error) });
  const changed = (path: string) => {
    // The watched node itself is not in its tree.
    if (path === base) return;
    const child = nodes.paths.key(path);
    if (child === undefined) return;
    if (listing) heardWhileListing.add(path);
    else readNode(path, child);
  };
  follow(nodes, base, dir, true, signal, sink, {
    changed: (_type, path) => changed(path),
    resync: relist,
  });
}

/** What a watch does on a notification and after a reconnection. */
interface Follower {
  changed(type: number, path: string): void;
  resync(): void;
}

// Registers the server watch, then reads once it is held (and again after
// every reconnection, which is a `watch-resume` of `key`), until `signal`
// aborts. Reads that fail because the connection is down are redone when it
// is back; anything else ends the watch.
function follow(
  nodes: Nodes,
  path: string,
  key: string,
  tree: boolean,
  signal: AbortSignal,
  sink: { error(error: unknown): void },
  follower: Follower,
): void {
  const session = nodes.session;
  // Listening starts on an open session: every connection it hears of is
  // one made again, with the watch registered again on it (SetWatches2).
  const unlisten = session.listen({
    connected: () => {
      session.emit({ type: "watch-resume", key });
      follower.resync();
    },
    closed: (error) => {
      if (error) sink.error(error);
    },
  });
  const watch = session.watches.watch(path, tree, follower);
  signal.addEventListener("abort", () => {
    unlisten();
    watch.stop();
  }, { once: true });
  watch.ready.then(
    () => follower.resync(),
    (error) => {
      // The watch is registered again on the next connection, and this
      // watch reads then.
      if (signal.aborted || isDisconnected(error)) return;
      sink.error(translateError(error, { op: "watch" }) ?? error);
    },
  );
}
