// Reverse scans on file: walk the range forward a page at a time keeping
// the last entries (the engine's cursor goes forward only): across more
// keys than one walk page (1,024), with bounds, limits and cursors, they
// give exactly the reverse of the forward scan.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { EmbeddedStore } from "../../backends/file/mod.ts";

const dir = mkdtempSync(join(tmpdir(), "file-scan-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function keys(
  iterator: AsyncIterable<{ key: string }>,
): Promise<string[]> {
  const out: string[] = [];
  for await (const pair of iterator) out.push(pair.key);
  return out;
}

describe("file: reverse scans", () => {
  test("across several walk pages, with bounds, limits and cursors", async () => {
    await using store = await EmbeddedStore.connect({
      path: join(dir, "reverse.db"),
    });
    const all = Array.from(
      { length: 3_000 },
      (_, i) => `r/${String(i).padStart(5, "0")}`,
    );
    await store.putMany(all.map((key) => ({ key, value: key })));
    await store.put("s/after", "outside the tree");
    for (
      const options of [
        {},
        { batchSize: 7 },
        { batchSize: 2_000 },
        { start: "r/00500", end: "r/02500", batchSize: 300 },
        { limit: 1_500, batchSize: 1_000 },
      ]
    ) {
      const forward = await keys(store.scan("r", options));
      const reverse = await keys(
        store.scan("r", { ...options, reverse: true }),
      );
      const expected = "limit" in options
        ? (await keys(store.scan("r", { ...options, limit: undefined })))
          .reverse().slice(0, options.limit)
        : [...forward].reverse();
      assert.deepEqual(reverse, expected, JSON.stringify(options));
    }
    // A cursor from a reverse scan resumes below its key.
    const first = store.scan("r", { reverse: true, limit: 1_100 });
    await keys(first);
    const rest = await keys(
      store.scan("r", { reverse: true, cursor: first.cursor }),
    );
    assert.equal(rest[0], all[all.length - 1_101]);
    assert.equal(rest.length, all.length - 1_100);
  });
});
