/**
 * Leader election: three nodes campaign, one leads; when it steps down,
 * another takes over, and a follower reports each leader once.
 *
 *     deno run -A examples/leader_election.ts [STORE_URL]
 *
 * @module
 */

import { openStore, type Store } from "../mod.ts";
import { Candidate, Follower } from "../leadership/mod.ts";

/** Runs the example on the store at `url`; returns the leaders seen. */
export async function run(
  url = "memory:examples",
  log = console.log,
): Promise<string[]> {
  const prefix = "example/leader-election";
  const stores: Store[] = [];
  for (let i = 0; i < 4; i++) stores.push(await openStore(url, { prefix }));
  try {
    const key = "service/leader";
    const seen: string[] = [];
    const following = (async () => {
      for await (const leader of new Follower(stores[3], key).leaders()) {
        log(
          leader === "" ? "follower: no leader" : `follower: ${leader} leads`,
        );
        if (leader !== "") seen.push(leader);
        if (seen.length === 2) return;
      }
    })();

    const nodes = [0, 1, 2].map((i) =>
      new Candidate(stores[i], key, { value: `node-${i}`, ttl: 3_000 })
    );
    const elected = nodes.map((node) => node.campaign().getReader());
    const first = await Promise.any(elected.map(async (reader, i) => {
      for (
        let next = await reader.read();
        !next.done;
        next = await reader.read()
      ) {
        if (next.value) return i;
      }
      throw new Error(`node-${i} stopped campaigning`);
    }));
    log(`node-${first} was elected`);
    await nodes[first].stop(); // it steps down; another one takes over
    await following;
    await Promise.all(nodes.map((node) => node.stop()));
    return seen;
  } finally {
    await Promise.all(stores.map((store) => store.close()));
  }
}

if (import.meta.main) await run(process.argv[2]);
