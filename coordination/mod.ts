/**
 * Coordination recipes on any store: leader election ({@linkcode Candidate},
 * {@linkcode Follower}) and group membership ({@linkcode Group}). Locks,
 * `tryLock`, semaphores and read-write locks are methods of the store
 * itself (`store.lock`, `store.tryLock`, `store.semaphore`,
 * `store.readWriteLock`), and every hold they give fences writes.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "@valkeyrie/valkeyrie/memory";
 * import { Group } from "@valkeyrie/valkeyrie/coordination";
 *
 * await using store = new MemoryStore();
 * await using member = await new Group(store, "workers").join("w1");
 * console.log(member.id); // "w1"
 * ```
 *
 * @module
 */

export { Candidate, type CandidateOptions } from "../leadership/candidate.ts";
export { Follower, type FollowerOptions } from "../leadership/follower.ts";
export {
  Group,
  type JoinOptions,
  type Member,
  type Membership,
} from "./group.ts";
