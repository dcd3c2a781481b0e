/**
 * One page of a scan as a sorted walk of the tree: only the nodes the page
 * needs are read, in the byte order of their full keys.
 *
 * Byte order of full keys is not the order of znode names level by level:
 * `a-c` sorts between `a` and `a/b` (`-` is below `/`). So each node's
 * children are ordered as two candidates each, the child's own key `s` and
 * its subtree `s/` (every key below it starts with that), sorted together.
 * Candidates outside the range are dropped before the walk, so siblings
 * below the lower bound or past the upper one are never read.
 *
 * The walk goes in rounds. Each round runs through what is known so far in
 * order; every node it meets that is not read yet (a child's state, a
 * node's children) gets its request, and the round goes on past it on a
 * guess of how many keys it holds (one per unread child, `numChildren` per
 * unlisted subtree), until the guess fills the page. The round's requests
 * are in flight together on the session, then the next round starts over.
 * It ends when a round meets nothing unread before the page is full.
 *
 * @module
 */

import type { Entry, ScanRange } from "../../core/driver.ts";
import { compareKeys } from "../../core/keys.ts";
import { inRange } from "../../core/scan.ts";
import { entryOf, type NodeState } from "./nodes.ts";
import type { Paths } from "./paths.ts";

/** Requests one round sends at most, so a huge page stays bounded. */
const MAX_IN_FLIGHT = 256;

/** What the walk reads znodes through: `Nodes`, or a stand-in in tests. */
export interface TreeReader {
  readonly paths: Paths;
  /** The names of a node's children, or `null` when it does not exist. */
  children(path: string, signal?: AbortSignal): Promise<string[] | null>;
  /** A node's state (its data when `withData`), or `null` when absent. */
  read(
    path: string,
    withData: boolean,
    signal?: AbortSignal,
  ): Promise<NodeState | null>;
}

/** One of a node's children in the walk. */
interface Child {
  key: string;
  path: string;
  /** `undefined`: not read yet; `null`: gone. */
  state?: NodeState | null;
  /** Its children in the walk's order, once listed. */
  below?: Candidate[];
}

/** A child's key (`subtree` false) or the keys below it, in the walk. */
interface Candidate {
  child: Child;
  subtree: boolean;
}

/** A candidate as {@linkcode orderCandidates} takes it. */
export interface Ordered {
  /** The child's key segment. */
  name: string;
  /** The keys below the child (`name/...`) rather than the child's own. */
  subtree: boolean;
}

/**
 * Orders candidates so the full keys they stand for come out in UTF-8 byte
 * order (descending when `reverse`): each is compared as `name` or
 * `name + "/"`, which every key of a subtree starts with. Subtrees of
 * siblings never interleave with each other in that order, since no name
 * holds a `/`.
 */
export function orderCandidates<T extends Ordered>(
  candidates: readonly T[],
  reverse: boolean,
): T[] {
  // The texts are made once, not per comparison: a node may have millions
  // of children.
  const keyed = candidates.map((c) => ({
    text: c.subtree ? `${c.name}/` : c.name,
    c,
  }));
  const sign = reverse ? -1 : 1;
  keyed.sort((a, b) => sign * compareKeys(a.text, b.text));
  return keyed.map(({ c }) => c);
}

/**
 * Whether some key below `key` (one starting with `key + "/"`) can lie in
 * `range`.
 */
export function subtreeInRange(key: string, range: ScanRange): boolean {
  const prefix = `${key}/`;
  if (!prefix.startsWith(range.dir) && !range.dir.startsWith(prefix)) {
    return false;
  }
  // Every key below is above the prefix: none below `upper` once the
  // prefix is at or past it.
  if (range.upper !== undefined && compareKeys(prefix, range.upper) >= 0) {
    return false;
  }
  // All of them sort before `lower` unless `lower` is itself below the
  // prefix or the prefix is above it.
  if (
    range.lower !== undefined && compareKeys(prefix, range.lower) < 0 &&
    !range.lower.startsWith(prefix)
  ) {
    return false;
  }
  return true;
}

function childPath(parent: string, name: string): string {
  return parent === "/" ? `/${name}` : `${parent}/${name}`;
}

/** What one round of the walk found. */
interface Round {
  entries: Entry[];
  /** Entries found plus the guess for what is unread before them. */
  estimate: number;
  /** Whether the round met anything unread. */
  unread: boolean;
  /** The requests sent, one per node: a child meets the walk twice. */
  requests: Map<Child, Promise<void>>;
  now: number;
}

/**
 * One page of a scan (see `ScanRange`) of the keys under the node of
 * `range.dir`.
 */
export async function scanTree(
  reader: TreeReader,
  range: ScanRange,
  signal?: AbortSignal,
): Promise<Entry[]> {
  const paths = reader.paths;
  const top = range.dir.endsWith("/") ? range.dir.slice(0, -1) : range.dir;
  // The scan's top node is never an entry of its own scan: only its subtree.
  const root: Child = { key: top, path: paths.path(top) };
  const need = range.limit;

  const load = (child: Child, round: Round) => {
    if (round.requests.has(child)) return;
    round.requests.set(
      child,
      readState(reader, child.path, range.keysOnly, signal).then((state) => {
        child.state = state;
      }),
    );
  };

  const expand = (child: Child, round: Round) => {
    if (round.requests.has(child)) return;
    round.requests.set(
      child,
      reader.children(child.path, signal).then((names) => {
        const named: (Ordered & Candidate)[] = [];
        const skip = child.key === "" ? 0 : child.key.length + 1;
        for (const name of names ?? []) {
          const key = paths.childKey(child.key, name);
          if (key === undefined) continue;
          const node: Child = { key, path: childPath(child.path, name) };
          const segment = key.slice(skip);
          if (inRange(range, key)) {
            named.push({ name: segment, subtree: false, child: node });
          }
          if (subtreeInRange(key, range)) {
            named.push({ name: segment, subtree: true, child: node });
          }
        }
        child.below = orderCandidates(named, range.reverse).map((
          { child, subtree },
        ) => ({ child, subtree }));
      }),
    );
  };

  // Runs through `candidates` in order; true when the round must stop.
  const visit = (candidates: Candidate[], round: Round): boolean => {
    for (const { child, subtree } of candidates) {
      if (round.estimate >= need || round.requests.size >= MAX_IN_FLIGHT) {
        return true;
      }
      if (child.state === undefined) {
        round.unread = true;
        load(child, round);
        if (!subtree) round.estimate++;
        continue;
      }
      if (child.state === null) continue;
      if (!subtree) {
        const entry = entryOf(child.key, child.state, round.now);
        if (entry) {
          round.entries.push(entry);
          round.estimate++;
        }
        continue;
      }
      const count = child.state.stat.numChildren;
      if (count === 0) continue;
      if (child.below === undefined) {
        round.unread = true;
        expand(child, round);
        round.estimate += count;
        continue;
      }
      if (visit(child.below, round)) return true;
    }
    return false;
  };

  while (true) {
    signal?.throwIfAborted();
    const round: Round = {
      entries: [],
      estimate: 0,
      unread: false,
      requests: new Map(),
      now: Date.now(),
    };
    if (root.below === undefined) {
      round.unread = true;
      expand(root, round);
    } else {
      visit(root.below, round);
    }
    if (!round.unread) return round.entries.slice(0, need);
    // Every request settles before the page fails, so none of this scan's
    // is left running behind it.
    const results = await Promise.allSettled(round.requests.values());
    const failed = results.find((result) => result.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }
}

/**
 * A node's state for the walk. Without values, a node with data is read by
 * its metadata alone (its value left empty); only a node of zero data
 * length needs its data read too, to tell an empty value from a parent the
 * backend created (both have a `dataLength` of 0).
 */
async function readState(
  reader: TreeReader,
  path: string,
  keysOnly: boolean,
  signal?: AbortSignal,
): Promise<NodeState | null> {
  if (!keysOnly) return await reader.read(path, true, signal);
  const meta = await reader.read(path, false, signal);
  if (!meta) return null;
  if (meta.stat.dataLength > 0) return { ...meta, data: new Uint8Array(0) };
  return await reader.read(path, true, signal);
}
