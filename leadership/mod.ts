/**
 * Leader election on any store, the job valkeyrie was made for (as
 * docker/leadership did for libkv): a {@linkcode Candidate} campaigns with
 * `lock()`, a {@linkcode Follower} reports the leader with `watch()`, so both
 * work on every backend.
 *
 * Unlike docker/leadership, a lost lock and `resign()` cannot deadlock, a
 * resigning leader leaves the field to the others instead of winning again
 * at once, a follower whose watch fails reports it instead of hanging, and
 * the first event is always sent.
 *
 * @example
 * ```ts
 * import { openStore } from "@valkeyrie/valkeyrie";
 * import { Candidate, Follower } from "@valkeyrie/valkeyrie/leadership";
 *
 * await using store = await openStore("memory:");
 * await using candidate = new Candidate(store, "service/leader", { value: "node-1", ttl: 5_000 });
 * const elected = candidate.campaign().getReader();
 * console.log(await elected.read()); // { value: false, done: false }
 * console.log(await elected.read()); // { value: true, done: false }
 * const leaders = new Follower(store, "service/leader").leaders().getReader();
 * console.log((await leaders.read()).value); // "node-1"
 * await leaders.cancel();
 * ```
 *
 * @module
 */

export { Candidate, type CandidateOptions } from "./candidate.ts";
export { Follower, type FollowerOptions } from "./follower.ts";
