/**
 * Locks with etcd's own recipe (the one of its `concurrency.Mutex`): each
 * contender puts a waiter key, bound to a lease it keeps alive, under the
 * lock's hidden prefix; the waiter with the lowest create revision holds the
 * lock, and every other one waits for the deletion of the waiter just before
 * it (a watch: no polling, no thundering herd). A holder that dies stops
 * renewing its lease; etcd then deletes its waiter key and the next one goes.
 *
 * Once held, the lock writes the holder's value at the key itself, in a
 * transaction that checks the waiter key is still there: the revision of that
 * write is the fencing token, so it grows with every acquisition and equals
 * the key's `lastIndex`.
 *
 * `tryLock` is one attempt of the same recipe: it queues, and where a waiter
 * created before it is still there (a live holder, or a dead one whose lease
 * has not expired yet) it revokes its own lease, which deletes its waiter
 * key, instead of waiting.
 *
 * A fenced commit compares the holder's waiter key's create revision in its
 * own transaction (see {@linkcode fenceOf}).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { CompareTarget, SortOrder, SortTarget } from "etcd3";
import { StoreError } from "../../core/errors.ts";
import type { DriverTryLockOptions, LockLease } from "../../core/driver.ts";
import type { EtcdClient } from "./client.ts";
import type { KeepAlives, Session } from "./keep_alive.ts";
import { keyBytes, lockPrefix, prefixRange, waiterKey } from "./keyspace.ts";
import type { TtlLeases } from "./ttl_leases.ts";
import type { WatchHub } from "./watch_hub.ts";

/** What the lock recipe works with: the store's connection and helpers. */
export interface LockContext {
  client: EtcdClient;
  hub: WatchHub;
  keepAlives: KeepAlives;
  ttlLeases: TtlLeases;
}

/**
 * What a fenced commit compares for a lease of this module: the holder's
 * waiter key and its create revision.
 */
export interface LockFence {
  /** The holder's waiter key. */
  key: Buffer;
  /** Its create revision, from when the holder queued. */
  createRevision: bigint;
}

// The fence of each lease this module handed out, filled where it is made.
const fences = new WeakMap<LockLease, LockFence>();

/**
 * What a fenced commit must find in etcd for `lease` to be held still:
 * its waiter key with the create revision it was queued with (`undefined`
 * for a lease of anything else). That proves the hold: the lease was handed
 * out only once no waiter created before it was left, every waiter queued
 * later has a higher create revision, and the key goes when the lock's lease
 * is revoked (release) or expires (a dead or paused holder), or is deleted by
 * hand; a key of the same name put again has a new create revision.
 *
 * @param lease A lease the driver handed out.
 */
export function fenceOf(lease: LockLease): LockFence | undefined {
  return fences.get(lease);
}

/**
 * Queues for the lock on `key` under a fresh lease, writes the holder's value
 * there once it is held and returns the lease: `lock` waits (`wait`);
 * `tryLock` gets `null` where someone holds it now, with nothing of the
 * attempt left in etcd.
 *
 * @param context The store's connection.
 * @param key The full key.
 * @param options The value, TTL and abort signal.
 * @param wait Whether to wait for the holder before it.
 */
export async function takeLock(
  context: LockContext,
  key: string,
  options: DriverTryLockOptions,
  wait: boolean,
): Promise<LockLease | null> {
  const { signal } = options;
  while (true) {
    signal?.throwIfAborted();
    const session = await context.keepAlives.grant(options.ttl, signal);
    let held: LockLease | "taken" | "vanished";
    try {
      held = await acquire(context, key, options, session, wait);
    } catch (error) {
      session.revoke().catch(() => {});
      // A lease lost while waiting (etcd out of reach for longer than the
      // TTL) only means queueing again.
      if (session.lost.aborted && !signal?.aborted) continue;
      throw error;
    }
    if (typeof held === "object") return held;
    if (held === "taken") {
      // Revoking the lease deletes the waiter key with it, and is awaited:
      // once tryLock resolves, no waiter of ours holds up the next taker.
      await session.revoke(signal);
      return null;
    }
    session.revoke().catch(() => {});
  }
}

// Queues, waits for the predecessors (or, without `wait`, finds one and
// resolves "taken"), then writes the value. Resolves "vanished" when the
// waiter key vanished before the value could be written.
async function acquire(
  context: LockContext,
  key: string,
  options: DriverTryLockOptions,
  session: Session,
  wait: boolean,
): Promise<LockLease | "taken" | "vanished"> {
  const { client } = context;
  const kv = client.etcd.kv;
  const waiting = options.signal
    ? AbortSignal.any([options.signal, session.lost])
    : session.lost;
  const me = waiterKey(key, session.id);

  // Queue: put the waiter key unless it is there already (a retried call).
  const queued = await client.call("idempotent", (o) =>
    kv.txn({
      compare: [{
        key: me,
        target: CompareTarget.Create,
        result: "Equal",
        create_revision: "0",
      }],
      success: [{
        request_put: { key: me, value: Buffer.alloc(0), lease: session.id },
      }],
      failure: [{ request_range: { key: me } }],
    }, o), waiting);
  const myRevision = queued.succeeded
    ? BigInt(queued.header.revision)
    : BigInt(queued.responses[0].response_range.kvs[0].create_revision);

  // Wait until no waiter created before us is left.
  const queue = prefixRange(lockPrefix(key));
  while (true) {
    const before = await client.call("idempotent", (o) =>
      kv.range({
        key: queue.key,
        range_end: queue.end,
        max_create_revision: (myRevision - 1n).toString(),
        sort_order: SortOrder.Descend,
        sort_target: SortTarget.Create,
        limit: 1,
        keys_only: true,
      }, o), waiting);
    if (before.kvs.length === 0) break;
    if (!wait) return "taken";
    await deleted(
      context.hub,
      before.kvs[0].key,
      BigInt(before.header.revision) + 1n,
      waiting,
    );
  }

  // Held: write the value while the waiter key still proves it.
  const written = await client.call("idempotent", (o) =>
    kv.txn({
      compare: [{
        key: me,
        target: CompareTarget.Create,
        result: "Equal",
        create_revision: myRevision.toString(),
      }],
      success: [{
        request_put: {
          key: keyBytes(key),
          value: Buffer.from(
            options.value.buffer,
            options.value.byteOffset,
            options.value.byteLength,
          ),
          prev_kv: true,
        },
      }],
    }, o), waiting);
  if (!written.succeeded) return "vanished";
  const previous = written.responses[0].response_put.prev_kv;
  if (previous) context.ttlLeases.released([previous.lease]);
  const token = BigInt(written.header.revision);
  return held(context, key, me, myRevision, token, session);
}

function held(
  context: LockContext,
  key: string,
  me: Buffer,
  myRevision: bigint,
  token: bigint,
  session: Session,
): LockLease {
  const lost = new AbortController();
  const onLost = () => lost.abort(session.lost.reason);
  session.lost.addEventListener("abort", onLost, { once: true });
  // The waiter key deleted by hand (etcdctl del) frees the lock for the next
  // waiter just as an expired lease does.
  const watching = watchOwnKey(context, me, token + 1n, () =>
    lost.abort(
      new StoreError("the lock's waiter key was deleted in etcd"),
    ));
  const stop = () => {
    watching.cancel();
    session.lost.removeEventListener("abort", onLost);
  };
  // A holder that knows it lost the lock frees it for the next waiter at
  // once, in case etcd still keeps the lease (a new leader extends leases).
  lost.signal.addEventListener("abort", () => {
    stop();
    session.revoke().catch(() => {});
  }, { once: true });
  const lease: LockLease = {
    lastIndex: token,
    lost: lost.signal,
    // A frozen holder: its lease is no longer renewed (the store's client
    // stays open), so etcd expires it after its TTL and deletes the waiter
    // key, which frees the lock for the next waiter and fails this lease's
    // fences. Nothing here reports the loss: the process is "frozen".
    pause: () => session.drop(),
    release: async (deleteKey, signal) => {
      stop();
      if (deleteKey && !lost.signal.aborted) {
        await context.client.call(
          "idempotent",
          (o) =>
            context.client.etcd.kv.txn({
              compare: [{
                key: me,
                target: CompareTarget.Create,
                result: "Equal",
                create_revision: myRevision.toString(),
              }],
              success: [{ request_delete_range: { key: keyBytes(key) } }],
            }, o),
          signal,
        );
      }
      await session.revoke(signal);
    },
  };
  fences.set(lease, { key: me, createRevision: myRevision });
  return lease;
}

// Watches the holder's waiter key; `gone` is called once if it is deleted.
function watchOwnKey(
  context: LockContext,
  me: Buffer,
  from: bigint,
  gone: () => void,
): { cancel(): void } {
  let cancelled = false;
  let handle = { cancel() {} };
  const start = (revision: bigint) => {
    handle = context.hub.watch({ key: me }, revision, {
      events: (events) => {
        if (events.some((event) => event.type === "Delete")) {
          handle.cancel();
          gone();
        }
      },
      // History gone: look whether the key is still there, then go on.
      compacted: () => {
        context.client.call(
          "idempotent",
          (o) => context.client.etcd.kv.range({ key: me }, o),
        ).then((now) => {
          if (cancelled) return;
          if (now.kvs.length === 0) gone();
          else start(BigInt(now.header.revision) + 1n);
        }, () => {
          // Unreachable: the lease's keepalive deadline reports the loss.
        });
      },
      failed: () => {},
    });
  };
  start(from);
  return {
    cancel: () => {
      cancelled = true;
      handle.cancel();
    },
  };
}

// Resolves once `key` is deleted (or its history is compacted, when the
// caller must look again); rejects with the signal's reason on abort.
function deleted(
  hub: WatchHub,
  key: Buffer,
  from: bigint,
  signal: AbortSignal,
): Promise<void> {
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const finish = (settle: () => void) => {
      handle.cancel();
      signal.removeEventListener("abort", onAbort);
      settle();
    };
    const onAbort = () => finish(() => reject(signal.reason));
    const handle = hub.watch({ key }, from, {
      events: (events) => {
        if (events.some((event) => event.type === "Delete")) finish(resolve);
      },
      compacted: () => finish(resolve),
      failed: (error) => finish(() => reject(error)),
    });
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
