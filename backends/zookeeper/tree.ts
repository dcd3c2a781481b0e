/**
 * Trees of znodes: listing every key under a node, at any depth, and
 * deleting a node with everything under it. ZooKeeper reads one node per
 * request, so both walk the tree level by level, with many requests in
 * flight at once on the session's connection.
 *
 * @module
 */

import { eachLimited } from "../../core/concurrency.ts";
import type { Entry } from "../../core/driver.ts";
import { StoreError } from "../../core/errors.ts";
import { isCode } from "./errors.ts";
import { entryOf, type Nodes } from "./nodes.ts";
import { Code, type MultiOp } from "./protocol.ts";

/** Requests a walk keeps in flight at most, so a huge tree stays bounded. */
const MAX_IN_FLIGHT = 256;

/** Deletions sent in one `multi`, so each stays well under maxBufferSize. */
const DELETE_BATCH = 200;

/** Walks of a tree that writers keep growing, before giving up. */
const MAX_DELETE_ROUNDS = 10;

/** A child znode in a walk. */
interface Child {
  path: string;
  /** Its key, or `undefined` for the root of the walk. */
  key: string;
}

function childPath(parent: string, name: string): string {
  return parent === "/" ? `/${name}` : `${parent}/${name}`;
}

/**
 * Every key strictly under the node of `key` (`""`: the store's root), with
 * its value, skipping implicit parents, expired keys and hidden nodes.
 */
export async function listTree(
  nodes: Nodes,
  key: string,
  signal?: AbortSignal,
): Promise<Entry[]> {
  const entries: Entry[] = [];
  let level: Child[] = [{ path: nodes.paths.path(key), key }];
  while (level.length > 0) {
    const next: Child[] = [];
    const children: Child[] = [];
    // The children of this level.
    await eachLimited(level, MAX_IN_FLIGHT, async (parent) => {
      const names = await nodes.children(parent.path, signal);
      for (const name of names ?? []) {
        const child = nodes.paths.childKey(parent.key, name);
        if (child === undefined) continue;
        children.push({ path: childPath(parent.path, name), key: child });
      }
    });
    // Their data, and which of them have children of their own.
    await eachLimited(children, MAX_IN_FLIGHT, async (child) => {
      const state = await nodes.read(child.path, true, signal);
      if (!state) return;
      const entry = entryOf(child.key, state);
      if (entry) entries.push(entry);
      if (state.stat.numChildren > 0) next.push(child);
    });
    level = next;
  }
  return entries;
}

/**
 * Deletes every key under the node of `dir` (`""` or `"a/b/"`), and the node
 * of `key` too unless it is `null` (the root of the store, which stays).
 * Under ZooKeeper's own root, its `zookeeper` node and the hidden lock
 * contenders are left alone.
 */
export async function deleteTree(
  nodes: Nodes,
  key: string | null,
  dir: string,
  signal?: AbortSignal,
): Promise<void> {
  const top = dir.endsWith("/") ? dir.slice(0, -1) : dir;
  const root = nodes.paths.path(top);
  for (let round = 1;; round++) {
    // Every node of the tree, level by level.
    const levels: string[][] = [];
    let level: Child[] = [{ path: root, key: top }];
    if (key !== null) levels.push([root]);
    while (level.length > 0) {
      const next: Child[] = [];
      await eachLimited(level, MAX_IN_FLIGHT, async (parent) => {
        const names = await nodes.children(parent.path, signal);
        for (const name of names ?? []) {
          const child = nodes.paths.childKey(parent.key, name);
          // Nodes that are not keys are skipped at the store's root (the
          // hidden ones); below, the whole subtree goes.
          if (child === undefined && parent.path === nodes.paths.root) {
            continue;
          }
          next.push({ path: childPath(parent.path, name), key: child ?? "" });
        }
      });
      if (next.length > 0) levels.push(next.map((child) => child.path));
      level = next;
    }
    // Deepest first, so every node is empty when its turn comes.
    let raced = false;
    for (const paths of levels.reverse()) {
      if (!(await deleteAll(nodes, paths, signal))) raced = true;
    }
    if (!raced) break;
    if (round >= MAX_DELETE_ROUNDS) {
      throw new StoreError(
        `Writers kept adding keys under ${root} while it was being deleted`,
      );
    }
  }
  // The node of a prefixed store's root may now be an empty parent.
  if (key !== null) await nodes.prune(root, signal);
  else if (root !== nodes.paths.root) await nodes.prune(root, signal, true);
}

/**
 * Deletes `paths` (none an ancestor of another), in batches of one `multi`
 * each; a batch that fails (a node already gone, or given a child since it
 * was listed) is deleted one node at a time. Resolves `false` when a node
 * gained children meanwhile: the caller walks the tree again.
 */
async function deleteAll(
  nodes: Nodes,
  paths: string[],
  signal?: AbortSignal,
): Promise<boolean> {
  let complete = true;
  const budget = nodes.session.options.maxBufferSize / 2;
  const batches: string[][] = [];
  let batch: string[] = [];
  let bytes = 0;
  for (const path of paths) {
    // A delete in a multi: its header, the path and the version.
    const size = 21 + path.length * 3;
    if (
      batch.length > 0 &&
      (batch.length === DELETE_BATCH || bytes + size > budget)
    ) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(path);
    bytes += size;
  }
  if (batch.length > 0) batches.push(batch);
  await eachLimited(batches, 4, async (batch) => {
    const ops: MultiOp[] = batch.map((path) => ({
      type: "delete",
      path,
      version: -1,
    }));
    const { results } = await nodes.multi(ops, signal);
    if (results.every((result) => result.err === Code.ok)) return;
    await eachLimited(batch, MAX_IN_FLIGHT, async (path) => {
      try {
        await nodes.delete(path, -1, signal);
      } catch (error) {
        if (isCode(error, Code.noNode)) return;
        if (isCode(error, Code.notEmpty)) {
          complete = false;
          return;
        }
        throw error;
      }
    });
  });
  return complete;
}
