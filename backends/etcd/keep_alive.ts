/**
 * Leases kept alive for as long as a lock is wanted or held, all on one
 * keepalive stream per store. A lease whose renewal etcd has not confirmed
 * within its TTL (counted from when the confirmed request was sent, so never
 * later than etcd itself lets it expire) is reported lost.
 *
 * etcd3's `Lease` is not used: it opens a stream per lease and reports a
 * loss only after twice the TTL, when another client may long have taken
 * the lock.
 *
 * @module
 */

import type {
  IDuplexStream,
  ILeaseKeepAliveRequest,
  ILeaseKeepAliveResponse,
} from "etcd3";
import { timerDelay, unrefTimer } from "../../core/abort.ts";
import { StoreError } from "../../core/errors.ts";
import type { EtcdClient } from "./client.ts";
import type { LeaseId } from "./ttl_leases.ts";

/**
 * Renewals per TTL, as etcd's Go client does (`TTL / 3`): two may be lost
 * before the lease runs out.
 */
const RENEWALS_PER_TTL = 3;

/**
 * After the stream broke (a member died, an election is under way), renew
 * again this soon rather than at the next regular renewal, so a failover
 * costs the lease as little of its TTL as possible.
 */
const RENEW_RETRY_MS = 250;

type Stream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

/** A lease kept alive until it is revoked or lost. */
export interface Session {
  /** The lease's id. */
  readonly id: LeaseId;
  /** Aborts (with a `StoreError` that says why) when the lease is lost. */
  readonly lost: AbortSignal;
  /** Stops renewing and revokes the lease, deleting its keys. */
  revoke(signal?: AbortSignal): Promise<void>;
  /** Stops renewing only: the lease expires after its TTL, as if we died. */
  drop(): void;
}

class KeptLease implements Session {
  readonly id: LeaseId;
  readonly #lost = new AbortController();
  readonly #owner: KeepAlives;
  /** The lease's TTL as etcd granted it, in milliseconds. */
  ttlMs: number;
  /** When the last confirmed renewal (or the grant) was sent. */
  confirmedSentAt: number;
  /** Send times of renewals not yet answered, oldest first. */
  unanswered: number[] = [];
  #tick: ReturnType<typeof setInterval>;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #deadline: ReturnType<typeof setTimeout> | undefined;

  constructor(owner: KeepAlives, id: LeaseId, ttlMs: number, sentAt: number) {
    this.#owner = owner;
    this.id = id;
    this.ttlMs = ttlMs;
    this.confirmedSentAt = sentAt;
    this.#tick = setInterval(
      () => owner.renew(this),
      timerDelay(ttlMs / RENEWALS_PER_TTL),
    );
    unrefTimer(this.#tick);
    this.armDeadline();
  }

  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  /** Renews again shortly, once, unless a retry is already due. */
  retrySoon(): void {
    if (this.#retry !== undefined || this.#lost.signal.aborted) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#owner.renew(this);
    }, RENEW_RETRY_MS);
    unrefTimer(this.#retry);
  }

  armDeadline(): void {
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(
      () =>
        this.lose(
          `etcd did not confirm a renewal within the lease's TTL of ${this.ttlMs} ms`,
        ),
      timerDelay(this.confirmedSentAt + this.ttlMs - Date.now()),
    );
    unrefTimer(this.#deadline);
  }

  lose(why: string): void {
    if (this.#lost.signal.aborted) return;
    this.drop();
    this.#lost.abort(new StoreError(`The lock's lease was lost: ${why}`));
  }

  drop(): void {
    clearInterval(this.#tick);
    clearTimeout(this.#retry);
    clearTimeout(this.#deadline);
    this.#owner.forget(this);
  }

  revoke(signal?: AbortSignal): Promise<void> {
    this.drop();
    return this.#owner.revoke(this.id, signal);
  }
}

/** The kept-alive leases of one store and their keepalive stream. */
export class KeepAlives {
  readonly #client: EtcdClient;
  readonly #leases = new Map<LeaseId, KeptLease>();
  #stream: Promise<Stream> | undefined;

  constructor(client: EtcdClient) {
    this.#client = client;
  }

  /**
   * Grants a lease of at least `ttl` milliseconds (whole seconds, at least
   * etcd's minimum) and keeps it alive.
   *
   * @param ttl The TTL in milliseconds.
   * @param signal Aborts the grant.
   */
  async grant(ttl: number, signal?: AbortSignal): Promise<Session> {
    const sentAt = Date.now();
    const seconds = Math.max(1, Math.ceil(ttl / 1_000));
    const response = await this.#client.call(
      "idempotent",
      (options) =>
        this.#client.etcd.leaseClient.leaseGrant({ TTL: seconds }, options),
      signal,
    );
    const lease = new KeptLease(
      this,
      response.ID,
      Number(response.TTL) * 1_000,
      sentAt,
    );
    this.#leases.set(lease.id, lease);
    if (signal?.aborted) {
      lease.revoke().catch(() => {});
      throw signal.reason;
    }
    return lease;
  }

  /** Sends one renewal of `lease`. */
  renew(lease: KeptLease): void {
    const sentAt = Date.now();
    this.#open().then((stream) => {
      if (!this.#leases.has(lease.id)) return;
      lease.unanswered.push(sentAt);
      stream.write({ ID: lease.id });
    }, () => {
      // No stream now: try again soon; the deadline still runs.
      if (this.#leases.has(lease.id)) lease.retrySoon();
    });
  }

  /** Revokes a lease (its keys go with it); an expired one is no error. */
  async revoke(id: LeaseId, signal?: AbortSignal): Promise<void> {
    await this.#client.call(
      "idempotent",
      (options) =>
        this.#client.etcd.leaseClient.leaseRevoke({ ID: id }, options),
      signal,
    ).catch((error) => {
      if (!String(error?.message).includes("requested lease not found")) {
        throw error;
      }
    });
  }

  /** Stops tracking a lease. */
  forget(lease: KeptLease): void {
    if (this.#leases.get(lease.id) === lease) this.#leases.delete(lease.id);
    if (this.#leases.size === 0) this.#drop();
  }

  /** Stops every renewal and closes the stream (leases expire on their own). */
  close(): void {
    for (const lease of [...this.#leases.values()]) lease.drop();
    this.#drop();
  }

  #open(): Promise<Stream> {
    if (this.#stream) return this.#stream;
    const opening = this.#client.stream<
      ILeaseKeepAliveRequest,
      ILeaseKeepAliveResponse
    >("Lease", "leaseKeepAlive");
    this.#stream = opening;
    opening.then((stream) => {
      const broken = () => {
        if (this.#stream !== opening) return;
        this.#stream = undefined;
        // Renewals sent on it will never be answered: send them again.
        for (const lease of this.#leases.values()) {
          lease.unanswered = [];
          lease.retrySoon();
        }
      };
      stream.on("data", (response) => this.#answered(response));
      stream.on("error", broken);
      stream.on("end", broken);
    }, () => {
      if (this.#stream === opening) this.#stream = undefined;
    });
    return opening;
  }

  #answered(response: ILeaseKeepAliveResponse): void {
    const lease = this.#leases.get(response.ID);
    if (!lease) return;
    const sentAt = lease.unanswered.shift() ?? lease.confirmedSentAt;
    if (Number(response.TTL) <= 0) {
      lease.lose("etcd says it expired or was revoked");
      return;
    }
    lease.ttlMs = Number(response.TTL) * 1_000;
    if (sentAt > lease.confirmedSentAt) lease.confirmedSentAt = sentAt;
    lease.armDeadline();
  }

  #drop(): void {
    const stream = this.#stream;
    this.#stream = undefined;
    stream?.then((s) => s.cancel(), () => {});
  }
}
