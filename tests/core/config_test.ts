// core/config.ts: a backend's settings schema checks a configuration (URL
// strings accepted for numbers and booleans, unknown settings refused) and
// yields the defaults, the options interface and the docs table.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  COMMON_SETTINGS,
  ConfigReader,
  DEFAULT_CONNECT_TIMEOUT_MS,
  defaultText,
  type SettingsSchema,
  typeText,
} from "../../core/config.ts";
import { InvalidConfigurationError } from "../../core/errors.ts";
import { builtinBackends } from "../../backends/builtins.ts";

const isNames = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((v) => typeof v === "string");

const SCHEMA = {
  db: { kind: "number", integer: true, min: 0, default: 0, doc: "The db." },
  retries: { kind: "number", integer: true, doc: "Retries." },
  fast: { kind: "boolean", default: false, doc: "Fast." },
  name: { kind: "string", doc: "A name." },
  mode: {
    kind: "string",
    choices: ["a", "b"],
    default: "a",
    doc: "A mode.",
  },
  names: {
    kind: "value",
    type: "string[]",
    expected: "a list of names",
    check: isNames,
    doc: "Names.",
  },
  extra: { kind: "value", type: "object", expected: "an object", doc: "X." },
} as const satisfies SettingsSchema;

describe("ConfigReader", () => {
  test("reads typed settings and URL strings, with the schema's defaults", () => {
    const config = new ConfigReader("demo", {
      db: "2",
      retries: 3,
      fast: "true",
      name: "n",
      mode: "b",
      names: ["x"],
      extra: { a: 1 },
    }, SCHEMA);
    assert.equal(config.get("db"), 2);
    assert.equal(config.get("retries"), 3);
    assert.equal(config.get("fast"), true);
    assert.equal(config.get("name"), "n");
    assert.equal(config.get("mode"), "b");
    assert.deepEqual(config.get("names"), ["x"]);
    assert.deepEqual(config.get("extra"), { a: 1 });
    assert.equal(config.connectTimeout, DEFAULT_CONNECT_TIMEOUT_MS);
    assert.equal(config.tls, undefined);
    const empty = new ConfigReader("demo", {}, SCHEMA);
    assert.equal(empty.get("db"), 0);
    assert.equal(empty.get("fast"), false);
    assert.equal(empty.get("mode"), "a");
    assert.equal(empty.get("retries"), undefined);
    assert.equal(empty.has("db"), false);
    assert.equal(config.has("db"), true);
  });

  test("refuses unknown settings and wrong types with the setting's name", () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ colour: 1 }, /Unknown demo setting "colour" \(known: prefix, .*db/],
      [{ db: "two" }, /"db" must be a number, not "two"/],
      [{ db: Number.NaN }, /"db" must be a number/],
      [{ db: -1 }, /"db" must be a whole number from 0, not -1/],
      [{ retries: 0 }, /"retries" must be a positive whole number, not 0/],
      [{ fast: "yes" }, /"fast" must be a boolean/],
      [{ mode: "c" }, /"mode" must be "a" or "b", not "c"/],
      [{ names: [1] }, /"names" must be a list of names/],
      [{ extra: 1 }, /"extra" must be an object, not 1/],
      [{ connectTimeout: 0 }, /"connectTimeout" must be a positive number/],
      [{ signal: "abort" }, /"signal" must be an AbortSignal/],
      [{ username: 1 }, /"username" must be a string/],
      [{ prefix: 1 }, /"prefix" must be a string/],
    ];
    for (const [config, message] of bad) {
      assert.throws(
        () => new ConfigReader("demo", config, SCHEMA),
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

describe("settings schemas", () => {
  test("say each setting's values and default for the docs", () => {
    assert.equal(typeText(SCHEMA.db), "whole number, ≥ 0");
    assert.equal(typeText(SCHEMA.retries), "whole number, ≥ 1");
    assert.equal(typeText(SCHEMA.mode), '`"a"` \\| `"b"`');
    assert.equal(typeText(SCHEMA.names), "`string[]`");
    assert.equal(
      typeText({
        kind: "number",
        timer: true,
        min: 1_000,
        max: 600_000,
        doc: "",
      }),
      "number (ms), 1,000–600,000",
    );
    assert.equal(defaultText(SCHEMA.db), "`0`");
    assert.equal(defaultText(SCHEMA.name), "none");
    assert.equal(
      defaultText(COMMON_SETTINGS.tls),
      COMMON_SETTINGS.tls.defaultDoc,
    );
  });

  test("every built-in backend declares its settings, apart from the common ones", () => {
    for (const backend of builtinBackends) {
      assert.ok(backend.settings, `${backend.name} has a settings schema`);
      for (const [name, setting] of Object.entries(backend.settings)) {
        assert.ok(!(name in COMMON_SETTINGS), `${backend.name}: ${name}`);
        assert.ok(setting.doc.length > 0, `${backend.name}: ${name} has docs`);
        // A default a backend declares passes its own checks.
        new ConfigReader(backend.name, {}, backend.settings).get(name);
      }
    }
  });
});
