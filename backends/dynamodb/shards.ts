/**
 * Which shards of a DynamoDB stream to read, and from where.
 *
 * A stream is a tree of shards: a shard closes (every few hours, or when
 * the table's partitions split) and its records continue in one or two
 * child shards. An item's records are in order only if a parent is read to
 * its end before its children, so a child is started only once its parent
 * is done. This module decides that from DescribeStream's shard list; it
 * does no I/O.
 *
 * @module
 */

/** A shard as DescribeStream lists it. */
export interface ShardInfo {
  /** `ShardId`. */
  id: string;
  /** `ParentShardId`, if any. */
  parentId?: string;
  /** Whether it has an `EndingSequenceNumber` (no new records). */
  closed: boolean;
}

/** What a reader knows of a shard: being read, or read to its end. */
export type ShardState = "reading" | "done";

/** A shard to start reading, and where in it. */
export interface ShardStart {
  /** The shard. */
  id: string;
  /** `LATEST` (only what comes next) or `TRIM_HORIZON` (all it holds). */
  position: "LATEST" | "TRIM_HORIZON";
}

/**
 * The first plan of a reader that wants only what happens from now on: the
 * open shards from `LATEST`. Closed shards hold only the past; they are
 * marked done so that their children, when they appear, are read from their
 * start.
 *
 * @param shards The stream's shards.
 * @param known Filled with the state of every shard listed.
 * @returns Where to start.
 */
export function initialPlan(
  shards: ShardInfo[],
  known: Map<string, ShardState>,
): ShardStart[] {
  const starts: ShardStart[] = [];
  for (const shard of shards) {
    if (shard.closed) known.set(shard.id, "done");
    else {
      known.set(shard.id, "reading");
      starts.push({ id: shard.id, position: "LATEST" });
    }
  }
  return starts;
}

/**
 * The shards to start after the reader has been running: every shard it has
 * not seen yet whose parent is done (or unknown: trimmed from the stream, or
 * a new root), from its start. A shard whose parent is still being read
 * waits for the parent's end.
 *
 * @param shards The stream's shards now.
 * @param known The reader's shards; the started ones are added.
 * @returns Where to start.
 */
export function nextPlan(
  shards: ShardInfo[],
  known: Map<string, ShardState>,
): ShardStart[] {
  const starts: ShardStart[] = [];
  for (const shard of shards) {
    if (known.has(shard.id)) continue;
    const parent = shard.parentId === undefined
      ? undefined
      : known.get(shard.parentId);
    if (parent === "reading") continue;
    // A parent listed in this same answer but not yet started comes first.
    if (
      parent === undefined && shard.parentId !== undefined &&
      shards.some((s) => s.id === shard.parentId)
    ) continue;
    known.set(shard.id, "reading");
    starts.push({ id: shard.id, position: "TRIM_HORIZON" });
  }
  // Parents started in this pass may free their children on a later pass.
  return starts;
}
