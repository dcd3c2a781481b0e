// The runnable examples run, and do what their comments say.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { run as configWatch } from "../../examples/config_watch.ts";
import { run as leaderElection } from "../../examples/leader_election.ts";
import { run as lockJob } from "../../examples/lock_job.ts";

const quiet = () => {};

describe("examples", () => {
  test("config_watch applies each configuration, ending with the last", async () => {
    const applied = await configWatch("memory:examples", quiet);
    assert.equal(applied[0], 'applied {"db/host":"10.0.0.5","db/pool":"10"}');
    assert.equal(
      applied.at(-1),
      'applied {"db/host":"10.0.0.6","db/pool":"50"}',
    );
    assert.ok(
      !applied.some((line) => line.includes('"10.0.0.6","db/pool":"20"')),
      "the atomic change is seen whole",
    );
  });

  test("lock_job lets the workers run one at a time and keeps the newest report", async () => {
    const lines: string[] = [];
    const report = await lockJob("memory:examples", (line) => lines.push(line));
    assert.equal(lines.filter((l) => l.includes("holds the lock")).length, 3);
    const tokens = lines.filter((l) => l.includes("holds the lock"))
      .map((l) => BigInt(/token (\d+)/.exec(l)![1]));
    assert.match(report, new RegExp(`token ${tokens.at(-1)}$`));
  });

  test("leader_election hands leadership to another node when the leader steps down", async () => {
    const seen = await leaderElection("memory:examples", quiet);
    assert.equal(seen.length, 2);
    assert.notEqual(seen[0], seen[1]);
  });
});
