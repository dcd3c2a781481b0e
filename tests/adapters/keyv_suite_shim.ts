// Runs @keyv/test-suite — Keyv's published compliance suite, written for
// vitest — on node:test, in Deno, Bun and Node. The suite uses only `it`,
// `beforeEach`, `afterEach` and eight matchers of `expect`, given here.
import assert from "node:assert/strict";

type Hook = () => unknown;
type Expect = ReturnType<typeof makeExpect>;
type Body = (context: { expect: Expect }) => unknown;

// A fresh expect per test, counting assertions for expect.assertions(n).
function makeExpect() {
  let made = 0;
  let planned: number | undefined;
  const expect = Object.assign((actual: unknown) => {
    made++;
    return matchersFor(actual);
  }, {
    assertions: (count: number) => void (planned = count),
    verify: () => {
      if (planned !== undefined) {
        assert.equal(
          made,
          planned,
          `expected ${planned} assertions, made ${made}`,
        );
      }
    },
  });
  return expect;
}

function matchersFor(actual: unknown) {
  const matchers = {
    toBe: (expected: unknown) =>
      assert.ok(
        Object.is(actual, expected),
        `${String(actual)} is not ${String(expected)}`,
      ),
    toEqual: (expected: unknown) => assert.deepEqual(actual, expected),
    toBeTruthy: () => assert.ok(actual, `${String(actual)} is not truthy`),
    toBeFalsy: () => assert.ok(!actual, `${String(actual)} is not falsy`),
    toBeUndefined: () => assert.equal(actual, undefined),
    toBeDefined: () => assert.notEqual(actual, undefined),
    toBeNull: () => assert.equal(actual, null),
  };
  return {
    ...matchers,
    not: {
      toBe: (expected: unknown) =>
        assert.ok(
          !Object.is(actual, expected),
          `${String(actual)} is ${String(expected)}`,
        ),
    },
  };
}

/** The part of vitest's module the Keyv suite calls, over node:test's `test`. */
export function vitestShim(
  test: (name: string, fn: () => Promise<void>) => unknown,
) {
  const before: Hook[] = [];
  const after: Hook[] = [];
  return {
    beforeEach: (hook: Hook) => void before.push(hook),
    afterEach: (hook: Hook) => void after.push(hook),
    it: (name: string, body: Body) =>
      test(name, async () => {
        for (const hook of before) await hook();
        try {
          const expect = makeExpect();
          await body({ expect });
          expect.verify();
        } finally {
          for (const hook of after) await hook();
        }
      }),
  };
}
