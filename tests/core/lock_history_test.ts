// The kit's lock-history checker must be able to fail: it rejects hand-made
// unsafe histories and accepts safe ones.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  lockViolations,
  type RecordedHold,
} from "../../testing/lock_history.ts";

function hold(
  token: bigint,
  invokedAt: number,
  acquiredAt: number,
  releasedAt: number,
  writes: number[] = [],
): RecordedHold {
  return {
    holder: `h${token}`,
    token,
    invokedAt,
    acquiredAt,
    releasedAt,
    paused: false,
    writes: writes.map((at) => ({ invokedAt: at, completedAt: at + 1 })),
  };
}

describe("lockViolations", () => {
  test("accepts a safe history, paused holder included", () => {
    const paused = { ...hold(1n, 0, 1, 5, [2, 4]), paused: true };
    const safe = [paused, hold(2n, 3, 20, 30, [21]), hold(3n, 25, 31, 40)];
    assert.deepEqual(lockViolations(safe), []);
  });

  test("finds a token that did not grow", () => {
    const found = lockViolations([hold(5n, 0, 1, 2), hold(4n, 3, 4, 5)]);
    assert.equal(found.length, 1);
    assert.match(found[0], /token not above/);
  });

  test("finds overlapping holds", () => {
    const found = lockViolations([hold(1n, 0, 1, 10), hold(2n, 0, 5, 12)]);
    assert.ok(found.some((v) => /2 holders at once/.test(v)), String(found));
    assert.deepEqual(
      lockViolations([hold(1n, 0, 1, 10), hold(2n, 0, 5, 12)], 2),
      [],
      "two permits allow it",
    );
  });

  test("finds a fenced write after the next holder held the lock", () => {
    const stale = { ...hold(1n, 0, 1, 2, [2, 25]), paused: true };
    const found = lockViolations([stale, hold(2n, 3, 20, 30)]);
    assert.equal(found.length, 1);
    assert.match(found[0], /wrote, fenced, 5 ms after/);
  });
});
