/**
 * Generations: how a write tells the znode it read from a later znode at the
 * same path.
 *
 * **Why.** A compare-and-set reads a key's node (its `mzxid` is the key's
 * `lastIndex`), then sends a `multi` that carries the node's `version`.
 * ZooKeeper's conditions (`check`, and `setData` and `delete` with a
 * version) compare a node's data version and nothing else, and a node
 * deleted and created again starts over at version 0. So a `multi` built on
 * the old node is accepted by a new one that is back at the old version: a
 * new node at version 0 at once, or after as many writes as the old one
 * had. The compare-and-set then overwrites (or deletes) a write it never saw
 * — an acknowledged `atomicPut(key, value, null)`, say (issue 22). The
 * `mzxid` and `czxid` cannot be conditions; neither can the ACL's version
 * (`setACL` is not a `multi` operation) nor the parent's `cversion`. And
 * anything that is itself deleted and created again — a companion node
 * deleted with its key, the parent — starts over at version 0 too: the
 * condition has to rest on a node that is never deleted.
 *
 * **How.** Every znode path maps (FNV-1a of the path, 256 ways, see
 * `Paths.generationPath`) to a generation node, `<root>/¤gen/<xx>`: a
 * hidden, permanent node without data, never deleted by the store.
 *
 * - A write that rests on a node it read (a compare-and-set, an `atomic()`
 *   check, a put that rewrites an existing node with `setData`) reads the
 *   node's generation node too, in the same round trip and sent before the
 *   node's read, so the version it sees is no newer than the node it reads
 *   (a session's requests are answered in order, also by ZooKeeper's commit
 *   processor). Its `multi` checks that version first. If the generation
 *   node does not exist yet, the write makes it and reads again: generation
 *   nodes exist only where such writes happened.
 * - Every creation of a node at a key's path — a key, a key made again with
 *   another kind, a parent made for a deeper key — moves its generation node
 *   on (`setData` at version -1, so creators never conflict with each
 *   other) in the same `multi`, or, where the generation node does not
 *   exist, asserts that in the same `multi` (it creates and deletes the
 *   generation node, or `¤gen` itself when that is missing too, which fails
 *   if it exists by then). Which of the two a store does it learns from one
 *   listing of `¤gen`, kept: a `multi` whose generation operation fails
 *   (the knowledge was stale) forgets it, lists again and tries again.
 *
 * If a write's check holds, no node was created at the path since the read
 * (a creation meanwhile found the generation node, which existed since
 * before the read, and moved it), so the node there is the one read; its
 * version being the same, nothing wrote it since: its `mzxid` is still the
 * `lastIndex` the write named. Deletions need no generation: a node deleted
 * and not created again fails the `multi` on its own (`NONODE`). Nor does
 * the create-and-delete that asserts a key's absence: it leaves no node.
 *
 * A plain put that rewrites a node needs it because a node's kind (with or
 * without a TTL) is fixed at creation: it could otherwise rewrite a node
 * made again meanwhile with a TTL, and its permanent value would expire.
 *
 * **Cost.** No extra round trip. A write resting on a node sends one
 * `exists` more per generation node with its reads, and its `multi` has
 * one `check` more per generation node. A creation's `multi` has one
 * operation more (two where the generation node does not exist). Plain
 * deletes need none of it. A `multi` also fails, and the write reads and
 * tries again, when another key of the same generation node (1 in 256) is
 * created between its read and its `multi`. The first write that needs a
 * generation node that does not exist makes it (two creates in one round
 * trip) and reads again: once per node. 257 hidden nodes at most per store
 * root, whatever the number of keys; none in a store that never writes on
 * what it read.
 *
 * **Limits.** Nodes created by other clients (`zkCli.sh create`) do not move
 * a generation: a compare-and-set racing a foreign re-creation is guarded
 * by the version only. Generation nodes live under the store's root, as
 * lock nodes do: two stores whose chroots nest (`/app` and `/app/sub`)
 * share keys but not generations. Deleting `¤gen` by hand makes its versions
 * start over.
 *
 * @module
 */

import { isCode } from "./errors.ts";
import type { Nodes } from "./nodes.ts";
import type { Paths } from "./paths.ts";
import { Code, Mode, type MultiOp, Op, readStat } from "./protocol.ts";

/**
 * The version of a generation node, or `null` when it does not exist yet.
 * Sends its request at once (before any request made after this call).
 */
export async function readGeneration(
  nodes: Nodes,
  path: string,
): Promise<number | null> {
  try {
    const reply = await nodes.session.request(
      Op.exists,
      (w) => w.string(path).bool(false),
      readStat,
    );
    nodes.generations.exists(path);
    return reply.value.version;
  } catch (error) {
    if (isCode(error, Code.noNode)) return null;
    throw error;
  }
}

/** The operation that fails unless a generation node is still at `version`. */
export function checkGeneration(path: string, version: number): MultiOp {
  return { type: "check", path, version };
}

/**
 * Makes the generation node `path` and `¤gen` above it unless they exist
 * (and the store's root if need be): both requests go out together.
 */
export async function ensureGeneration(
  nodes: Nodes,
  path: string,
  signal?: AbortSignal,
): Promise<void> {
  const specs = [nodes.paths.generationsPath, path].map((node) => ({
    path: node,
    data: null,
    acl: nodes.acl,
    mode: Mode.persistent,
  }));
  for (let round = 1;; round++) {
    // Sent in order, so `¤gen` is made before its child.
    const results = await Promise.allSettled(
      specs.map((spec) => nodes.create(spec, signal)),
    );
    const errors = results.flatMap((result) =>
      result.status === "rejected" && !isCode(result.reason, Code.nodeExists)
        ? [result.reason]
        : []
    );
    if (errors.length === 0) {
      nodes.generations.exists(path);
      return;
    }
    if (round > 1 || !errors.every((error) => isCode(error, Code.noNode))) {
      throw errors[0];
    }
    // The store's root is missing. `¤gen`'s ancestors are not keys: making
    // them moves no generation.
    await nodes.ensureParents(specs[0].path, signal);
  }
}

/**
 * What a store knows of its generation nodes: which exist. A generation
 * node it has not seen it takes for missing, and every `multi` that relies
 * on that asserts it; one whose generation operation fails calls
 * {@linkcode forget}.
 */
export class Generations {
  readonly #paths: Paths;
  #listing: Promise<void> | undefined;
  /** Whether `¤gen` exists. */
  #dir = false;
  /** The generation nodes that exist. */
  readonly #present = new Set<string>();

  constructor(paths: Paths) {
    this.#paths = paths;
  }

  /**
   * Lists the generation nodes unless known (the request goes out at once);
   * resolves when they are known. After a failure they are listed again
   * next time.
   */
  known(nodes: Nodes): Promise<void> {
    if (this.#listing) return this.#listing;
    const listing = nodes.children(this.#paths.generationsPath).then(
      (names) => {
        if (names === null) return;
        this.#dir = true;
        for (const name of names) {
          this.#present.add(`${this.#paths.generationsPath}/${name}`);
        }
      },
      (error) => {
        if (this.#listing === listing) this.#listing = undefined;
        throw error;
      },
    );
    // Whoever waits for it hears a failure; nobody else needs to.
    listing.catch(() => {});
    this.#listing = listing;
    return listing;
  }

  /** Records that the generation node `path` exists (it is never deleted). */
  exists(path: string): void {
    this.#dir = true;
    this.#present.add(path);
  }

  /** Forgets what is known: a `multi` found it stale. */
  forget(): void {
    this.#listing = undefined;
    this.#dir = false;
    this.#present.clear();
  }

  /**
   * The operations that make a `multi` creating nodes at the paths of
   * `generations` move each on, or fail unless it still does not exist.
   */
  creationOps(nodes: Nodes, generations: Iterable<string>): MultiOp[] {
    const ops: MultiOp[] = [];
    let dirAsserted = false;
    for (const path of generations) {
      if (this.#present.has(path)) {
        ops.push({ type: "setData", path, data: null, version: -1 });
      } else if (this.#dir) {
        ops.push(...absent(nodes, path));
      } else if (!dirAsserted) {
        // No generation node exists while `¤gen` does not.
        dirAsserted = true;
        ops.push(...absent(nodes, this.#paths.generationsPath));
      }
    }
    return ops;
  }
}

// Operations that fail unless `path` does not exist (and leave none).
function absent(nodes: Nodes, path: string): MultiOp[] {
  return [
    {
      type: "create",
      spec: { path, data: null, acl: nodes.acl, mode: Mode.persistent },
    },
    { type: "delete", path, version: 0 },
  ];
}
