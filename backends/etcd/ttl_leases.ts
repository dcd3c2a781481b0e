/**
 * Keys with a TTL: each write with a TTL gets a lease of its own that ends
 * when the key should (etcd deletes a lease's keys when it expires), and a
 * lease whose keys were all overwritten or deleted is revoked at once, so a
 * loop of puts with a TTL leaves no trail of leases behind it.
 *
 * @module
 */

import { eachLimited } from "../../core/concurrency.ts";
import type { EtcdClient } from "./client.ts";

/**
 * etcd leases last whole seconds; a TTL is rounded up so a key is never gone
 * early. etcd raises any lease to its minimum TTL (2 s with the default
 * election timeout of 1 s: 1.5 election timeouts, rounded up).
 */
const MS_PER_LEASE_SECOND = 1_000;

/** Lease lookups of one read in flight at once. */
const EXPIRY_LOOKUPS = 16;

/** A lease id of etcd: a decimal int64; `"0"` is no lease. */
export type LeaseId = string;

/** The leases of one store's writes with a TTL. */
export class TtlLeases {
  readonly #client: EtcdClient;
  readonly #pending = new Set<Promise<void>>();

  constructor(client: EtcdClient) {
    this.#client = client;
  }

  /**
   * Grants a lease that ends `ttl` milliseconds from now, rounded up to whole
   * seconds.
   *
   * @param ttl The TTL in milliseconds.
   * @param signal Aborts the call.
   * @returns The lease's id.
   */
  async grant(ttl: number, signal?: AbortSignal): Promise<LeaseId> {
    const seconds = Math.max(1, Math.ceil(ttl / MS_PER_LEASE_SECOND));
    const response = await this.#client.call(
      "idempotent",
      (options) =>
        this.#client.etcd.leaseClient.leaseGrant({ TTL: seconds }, options),
      signal,
    );
    return response.ID;
  }

  /**
   * Revokes leases this store granted for a write that did not happen (a
   * failed check, an error), in the background.
   *
   * @param ids The leases.
   */
  discard(ids: Iterable<LeaseId>): void {
    for (const id of ids) this.#background(() => this.#revoke(id));
  }

  /**
   * Hears which leases the overwritten or deleted keys had; those left with
   * no key are revoked in the background. A lease that still has keys (etcd
   * lets several keys share one, as `atomic()` does for puts with the same
   * TTL, and as other clients may) is left alone.
   *
   * @param ids The leases the keys had before the write (`"0"`: none).
   */
  released(ids: Iterable<LeaseId>): void {
    for (const id of new Set(ids)) {
      if (id === "0") continue;
      this.#background(async () => {
        const lease = await this.#client.call(
          "idempotent",
          (options) =>
            this.#client.etcd.leaseClient.leaseTimeToLive(
              { ID: id, keys: true },
              options,
            ),
        );
        // TTL -1: the lease is already gone.
        if (Number(lease.TTL) > 0 && lease.keys.length === 0) {
          await this.#revoke(id);
        }
      });
    }
  }

  /**
   * When each lease ends, as etcd tells it (one `LeaseTimeToLive` per lease,
   * at most {@linkcode EXPIRY_LOOKUPS} at once). etcd reports whole seconds
   * left and ends the lease within one more, so the time given is the latest
   * it ends: a copy made from it is never gone before the original. A lease
   * already gone (TTL -1) ends now.
   *
   * @param ids The leases (`"0"`, no lease, is skipped).
   * @param signal Aborts the lookups.
   * @returns Each lease's end, in ms since the epoch.
   */
  async expiries(
    ids: Iterable<LeaseId>,
    signal?: AbortSignal,
  ): Promise<Map<LeaseId, number>> {
    const ends = new Map<LeaseId, number>();
    const wanted = [...new Set(ids)].filter((id) => id !== "0");
    await eachLimited(wanted, EXPIRY_LOOKUPS, async (id) => {
      const lease = await this.#client.call(
        "idempotent",
        (options) =>
          this.#client.etcd.leaseClient.leaseTimeToLive({ ID: id }, options),
        signal,
      );
      const left = Number(lease.TTL);
      ends.set(
        id,
        Date.now() + (left < 0 ? 0 : (left + 1) * MS_PER_LEASE_SECOND),
      );
    });
    return ends;
  }

  /** Waits for the revocations under way (for `close()`). */
  async settle(): Promise<void> {
    while (this.#pending.size > 0) {
      await Promise.allSettled([...this.#pending]);
    }
  }

  async #revoke(id: LeaseId): Promise<void> {
    await this.#client.call(
      "idempotent",
      (options) =>
        this.#client.etcd.leaseClient.leaseRevoke({ ID: id }, options),
    ).catch((error) => {
      // Already expired or revoked: nothing left to do.
      if (!String(error?.message).includes("requested lease not found")) {
        throw error;
      }
    });
  }

  // A revocation that fails only leaves a keyless lease that expires after
  // its TTL on its own: nothing for the caller to act on.
  #background(task: () => Promise<void>): void {
    const pending = task().catch(() => {}).finally(() =>
      this.#pending.delete(pending)
    );
    this.#pending.add(pending);
  }
}
