// core/config.ts: settings are checked, URL strings accepted for numbers and
// booleans, and unknown settings refused.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigReader, DEFAULT_CONNECT_TIMEOUT_MS } from "../../core/config.ts";
import { InvalidConfigurationError } from "../../core/errors.ts";

describe("ConfigReader", () => {
  test("reads typed settings and URL strings", () => {
    const config = new ConfigReader("demo", {
      db: "2",
      retries: 3,
      fast: "true",
      slow: false,
      name: "n",
      extra: { a: 1 },
    }, {
      db: "number",
      retries: "number",
      fast: "boolean",
      slow: "boolean",
      name: "string",
      extra: "object",
    });
    assert.equal(config.number("db"), 2);
    assert.equal(config.number("retries"), 3);
    assert.equal(config.boolean("fast"), true);
    assert.equal(config.boolean("slow"), false);
    assert.equal(config.string("name"), "n");
    assert.deepEqual(config.object("extra"), { a: 1 });
    assert.equal(config.number("missing"), undefined);
    assert.equal(config.connectTimeout, DEFAULT_CONNECT_TIMEOUT_MS);
    assert.equal(config.tls, undefined);
  });

  test("refuses unknown settings and wrong types with the setting's name", () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ colour: 1 }, /Unknown demo setting "colour"/],
      [{ db: "two" }, /"db" must be a number, not "two"/],
      [{ db: Number.NaN }, /"db" must be a number/],
      [{ fast: "yes" }, /"fast" must be a boolean/],
      [{ connectTimeout: 0 }, /"connectTimeout" must be a positive number/],
      [{ signal: "abort" }, /AbortSignal/],
      [{ username: 1 }, /"username" must be a string/],
    ];
    for (const [config, message] of bad) {
      assert.throws(
        () =>
          new ConfigReader("demo", config, { db: "number", fast: "boolean" }),
        (error: Error) =>
          error instanceof InvalidConfigurationError &&
          message.test(error.message),
        JSON.stringify(config),
      );
    }
  });

  test("turns tls on from true or an object, and off from false", () => {
    assert.deepEqual(new ConfigReader("d", { tls: true }, {}).tls, {
      rejectUnauthorized: true,
    });
    assert.deepEqual(new ConfigReader("d", { tls: { ca: "x" } }, {}).tls, {
      ca: ["x"],
      rejectUnauthorized: true,
    });
    assert.equal(new ConfigReader("d", { tls: false }, {}).tls, undefined);
    assert.throws(
      () => new ConfigReader("d", { tls: "on" }, {}),
      InvalidConfigurationError,
    );
  });
});
