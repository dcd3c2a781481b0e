/**
 * A key's expiry deadline, kept in its Consul `Flags`.
 *
 * Consul deletes a key only when the session holding it is invalidated,
 * which may be up to twice the session's TTL, and a session's TTL is at
 * least the agent's `session_ttl_min` (10 s by default). So the exact
 * deadline travels with the key: readers of this library compare it with
 * their clock and report the key gone on time, while Consul deletes it
 * later. `Flags` is "an opaque unsigned integer ... clients can use however
 * makes sense for their application"
 * (https://developer.hashicorp.com/consul/api-docs/kv#read-key).
 *
 * Layout: `EXPIRY_TAG * 2^44 + deadline` (milliseconds since the epoch).
 * The tag keeps a foreign client's small flags from being taken for a
 * deadline, and the whole stays below 2^53, so JSON numbers carry it
 * exactly in every runtime.
 *
 * @module
 */

/** Room for a deadline in ms since the epoch: 2^44 ms reach year 2527. */
const DEADLINE_RANGE = 2 ** 44;

/** Marks flags that hold a deadline (an arbitrary 9-bit value, 0x1e5). */
const EXPIRY_TAG = 0x1e5;

const EXPIRY_BASE = EXPIRY_TAG * DEADLINE_RANGE;

/** The flags of a key that expires at `deadline` (ms since the epoch). */
export function expiryFlags(deadline: number): number {
  return EXPIRY_BASE +
    Math.max(0, Math.min(DEADLINE_RANGE - 1, Math.ceil(deadline)));
}

/** The deadline kept in `flags`, or `undefined` for a key that stays. */
export function expiryOf(flags: number | undefined): number | undefined {
  if (typeof flags !== "number") return undefined;
  const deadline = flags - EXPIRY_BASE;
  return deadline >= 0 && deadline < DEADLINE_RANGE ? deadline : undefined;
}
