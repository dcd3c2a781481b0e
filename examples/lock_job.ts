/**
 * A lock-protected job: several workers want to run the nightly report; the
 * lock lets one run at a time, and the fencing token keeps a late, stale
 * worker from overwriting a newer result.
 *
 *     deno run -A examples/lock_job.ts [STORE_URL]
 *
 * @module
 */

import { openStore, type Store } from "../mod.ts";

/** Runs the example on the store at `url`; returns the final report. */
export async function run(
  url = "memory:examples",
  log = console.log,
): Promise<string> {
  const prefix = "example/lock-job";
  const workers: Store[] = [];
  for (let i = 0; i < 3; i++) workers.push(await openStore(url, { prefix }));
  try {
    await workers[0].deleteTree("");
    await Promise.all(
      workers.map((store, i) => worker(store, `worker-${i}`, log)),
    );
    const report = await workers[0].get("report");
    const text = new TextDecoder().decode(report!.value);
    log(`final report: ${text}`);
    await workers[0].deleteTree("");
    return text;
  } finally {
    await Promise.all(workers.map((store) => store.close()));
  }
}

async function worker(store: Store, name: string, log: (line: string) => void) {
  await using lock = await store.lock("jobs/report", {
    value: name,
    ttl: 5_000,
  });
  log(`${name} holds the lock (fencing token ${lock.lastIndex})`);
  await new Promise((resolve) => setTimeout(resolve, 20)); // the work
  lock.lost.throwIfAborted();
  // Write the result only if no holder with a newer token wrote already.
  const last = await store.get("report/token");
  const lastToken = last ? BigInt(new TextDecoder().decode(last.value)) : -1n;
  if (lastToken >= lock.lastIndex) return log(`${name} is stale, skips`);
  const written = await store.atomic()
    .check("report/token", last?.lastIndex ?? null)
    .put("report/token", String(lock.lastIndex))
    .put("report", `made by ${name} with token ${lock.lastIndex}`)
    .commit();
  log(`${name} ${written.ok ? "wrote the report" : "lost a race, skips"}`);
}

if (import.meta.main) await run(process.argv[2]);
