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
 * @module
 */

import { Buffer } from "node:buffer";
import { CompareTarget, SortOrder, SortTarget } from "etcd3";
import { StoreError } from "../../core/errors.ts";
import type { DriverLockOptions, LockLease } from "../../core/driver.ts";
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
 * Waits until the lock on `key` is held, writes the holder's value there and
 * returns the lease of the lock.
 *
 * @param context The store's connection.
 * @param key The full key.
 * @param options The value, TTL and abort signal.
 */
export async function lock(
  context: LockContext,
  key: string,
  options: DriverLockOptions,
): Promise<LockLease> {
  const { signal } = options;
  while (true) {
    signal?.throwIfAborted();
    const session = await context.keepAlives.grant(options.ttl, signal);
    let held: LockLease | null;
    try {
      held = await acquire(context, key, options, session);
    } catch (error) {
      session.revoke().catch(() => {});
      // A lease lost while waiting (etcd out of reach for longer than the
      // TTL) only means queueing again.
      if (session.lost.aborted && !signal?.aborted) continue;
      throw error;
    }
    if (held) return held;
    session.revoke().catch(() => {});
  }
}

// Queues, waits for the predecessors, then writes the value. Resolves `null`
// when the waiter key vanished before the value could be written.
async function acquire(
  context: LockContext,
  key: string,
  options: DriverLockOptions,
  session: Session,
): Promise<LockLease | null> {
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
  if (!written.succeeded) return null;
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
  return {
    lastIndex: token,
    lost: lost.signal,
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
