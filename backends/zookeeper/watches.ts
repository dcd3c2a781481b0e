/**
 * The session's watches, as the server should hold them: persistent watches
 * (ZooKeeper 3.6+ `addWatch`) on a node, or on a node and everything under
 * it, shared by every local listener of a path.
 *
 * ZooKeeper 3.6–3.8 keeps one watch mode per path and session, so a path
 * watched both ways is watched recursively on the server (which also reports
 * the node's own changes) and the listeners are told apart here.
 *
 * @module
 */

import { EventType, type WatcherEvent, WatchMode } from "./protocol.ts";

/** Who hears a watched path. */
export interface WatchListener {
  /** A change at `path` (the node itself, or below it for a tree). */
  changed(type: number, path: string): void;
}

interface PathWatches {
  node: Set<WatchListener>;
  tree: Set<WatchListener>;
  /** The mode last asked of the server, or `undefined` for none. */
  mode: number | undefined;
}

/** How the registry talks to the server. */
export interface WatchRequests {
  /** Sends `addWatch(path, mode)`. */
  add(path: string, mode: number): Promise<void>;
  /** Sends `addWatch(path, mode)` for a path whose mode changed; nobody waits. */
  change(path: string, mode: number): void;
  /** Sends `removeWatches(path, any)`, ignoring that there was none. */
  remove(path: string): void;
}

/** The persistent watches of one session. */
export class WatchRegistry {
  #paths = new Map<string, PathWatches>();
  #requests: WatchRequests;

  constructor(requests: WatchRequests) {
    this.#requests = requests;
  }

  /**
   * Starts `listener` hearing changes of `path` (and below it when `tree`).
   * `ready` resolves once the server holds the watch; `stop` ends it.
   */
  watch(
    path: string,
    tree: boolean,
    listener: WatchListener,
  ): { ready: Promise<void>; stop(): void } {
    let watches = this.#paths.get(path);
    if (!watches) {
      watches = { node: new Set(), tree: new Set(), mode: undefined };
      this.#paths.set(path, watches);
    }
    (tree ? watches.tree : watches.node).add(listener);
    const wanted = this.#wanted(watches);
    let ready = Promise.resolve();
    if (watches.mode !== wanted) {
      watches.mode = wanted;
      ready = this.#requests.add(path, wanted!);
      // Whoever waits for it hears a failure; nobody else needs to.
      ready.catch(() => {});
    }
    let stopped = false;
    return {
      ready,
      stop: () => {
        if (stopped) return;
        stopped = true;
        this.#remove(path, tree, listener);
      },
    };
  }

  /** Hands a notification to the listeners it concerns. */
  dispatch(event: WatcherEvent): void {
    const { type, path } = event;
    const own = this.#paths.get(path);
    if (own) {
      for (const listener of [...own.node]) listener.changed(type, path);
    }
    // A recursive watch hears creations, deletions and data changes of the
    // node and of everything under it, never child-list changes.
    if (type === EventType.childrenChanged) return;
    for (let at = path; at !== ""; at = parentOf(at)) {
      const watches = this.#paths.get(at);
      if (!watches) continue;
      for (const listener of [...watches.tree]) listener.changed(type, path);
    }
  }

  /** The paths to re-register after a reconnection, by mode. */
  modes(): { persistent: string[]; recursive: string[] } {
    const persistent: string[] = [];
    const recursive: string[] = [];
    for (const [path, watches] of this.#paths) {
      if (watches.mode === WatchMode.persistentRecursive) recursive.push(path);
      else if (watches.mode === WatchMode.persistent) persistent.push(path);
    }
    return { persistent, recursive };
  }

  #remove(path: string, tree: boolean, listener: WatchListener): void {
    const watches = this.#paths.get(path);
    if (!watches) return;
    (tree ? watches.tree : watches.node).delete(listener);
    const wanted = this.#wanted(watches);
    if (wanted === watches.mode) return;
    watches.mode = wanted;
    if (wanted === undefined) {
      this.#paths.delete(path);
      this.#requests.remove(path);
    } else {
      // Asking again replaces the server's mode for the path.
      this.#requests.change(path, wanted);
    }
  }

  #wanted(watches: PathWatches): number | undefined {
    if (watches.tree.size > 0) return WatchMode.persistentRecursive;
    if (watches.node.size > 0) return WatchMode.persistent;
    return undefined;
  }
}

/** `"/a/b"` → `"/a"`, `"/a"` → `"/"`, `"/"` → `""`. */
export function parentOf(path: string): string {
  if (path === "/") return "";
  const at = path.lastIndexOf("/");
  return at <= 0 ? "/" : path.slice(0, at);
}
