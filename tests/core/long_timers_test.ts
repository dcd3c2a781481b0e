// Durations beyond a timer's reach (2^31 - 1 ms, about 24.8 days): a timer
// given more fires after about 1 ms in every runtime. A 100-day TTL must
// keep its key, its watch must not report it gone, and a 100-day lock must
// not renew in a loop — on memory: and file:, and in core's timers.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { delay, MAX_TIMER_MS, timerDelay } from "../../core/abort.ts";
import { LockHandle } from "../../core/lock.ts";
import { openStore } from "../../mod.ts";

const DAYS_100 = 100 * 86_400_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const dir = mkdtempSync(join(tmpdir(), "valkeyrie-long-timers-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("timers beyond 2^31 - 1 ms", () => {
  test("timerDelay caps a delay at the largest a timer holds", () => {
    assert.equal(timerDelay(DAYS_100), MAX_TIMER_MS);
    assert.equal(timerDelay(-5), 0);
    assert.equal(timerDelay(Number.NaN), 0);
    assert.equal(timerDelay(1_500), 1_500);
  });

  test("a delay of 100 days has not ended after a while", async () => {
    const controller = new AbortController();
    let ended = false;
    const waiting = delay(DAYS_100, controller.signal).then(
      () => (ended = true),
      () => {},
    );
    // Several turns of the event loop: an overflowing timer fires after ~1 ms.
    await sleep(100);
    assert.equal(ended, false);
    controller.abort();
    await waiting;
  });

  for (const url of ["memory:long-timers", `file:${join(dir, "long.db")}`]) {
    test(`${url.split(":")[0]}: a key with a 100-day TTL stays, and its watch does not report it gone`, async () => {
      const store = await openStore(url);
      try {
        await store.put("session", "s", { ttl: DAYS_100 });
        const controller = new AbortController();
        const states: (string | null)[] = [];
        const reading = (async () => {
          for await (
            const pair of store.watch("session", { signal: controller.signal })
          ) {
            states.push(pair && new TextDecoder().decode(pair.value));
          }
        })().catch(() => {});
        await sleep(300);
        assert.notEqual(await store.get("session"), null);
        assert.deepEqual(states, ["s"]);
        controller.abort();
        await reading;
      } finally {
        await store.close();
      }
    });
  }

  test("a lock with a 100-day TTL does not renew in a loop", async () => {
    let renewals = 0;
    const handle = new LockHandle({
      key: "k",
      lease: {
        lastIndex: 1n,
        renew: () => {
          renewals++;
          return Promise.resolve(true);
        },
        release: () => Promise.resolve(),
      },
      ttl: DAYS_100,
      deleteOnUnlock: false,
      onEnd: () => {},
    });
    await sleep(200);
    await handle.unlock();
    assert.equal(renewals, 0, "renewed before a third of its TTL");
    assert.equal(handle.lost.aborted, false);
  });
});
