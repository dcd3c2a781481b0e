/**
 * Live configuration: a service watches its configuration tree and applies
 * each new version as it is written, without restarting.
 *
 *     deno run -A examples/config_watch.ts [STORE_URL]
 *
 * @module
 */

import { openStore } from "../mod.ts";

/** Runs the example on the store at `url`; returns what the service applied. */
export async function run(
  url = "memory:examples",
  log = console.log,
): Promise<string[]> {
  await using service = await openStore(url, {
    prefix: "example/config-watch",
  });
  await using operator = await openStore(url, {
    prefix: "example/config-watch",
  });
  await operator.deleteTree("");
  await operator.put("db/host", "10.0.0.5");
  await operator.put("db/pool", "10");

  const applied: string[] = [];
  const stop = new AbortController();
  let started!: () => void;
  const ready = new Promise<void>((resolve) => (started = resolve));
  const watching = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const tree of service.watchTree("", { signal: stop.signal })) {
        const config = Object.fromEntries(
          tree.map((pair) => [pair.key, decoder.decode(pair.value)]),
        );
        const line = `applied ${JSON.stringify(config)}`;
        applied.push(line);
        log(line);
        started();
        if (config["db/pool"] === "50") stop.abort();
      }
    } catch (error) {
      if (!stop.signal.aborted) throw error;
    }
  })();

  // Once the service runs, an operator changes its configuration.
  await ready;
  await operator.put("db/pool", "20");
  await operator.atomic().put("db/host", "10.0.0.6").put("db/pool", "50")
    .commit();
  await watching;
  await operator.deleteTree("");
  return applied;
}

if (import.meta.main) await run(process.argv[2]);
