// The helpers every backend shares, written once in core/: backoff with
// jitter, the serial re-runner of watches, the `tls` setting, `host:port`
// parsing, number checks and the shape of error translators.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MAX_TIMER_MS } from "../../core/abort.ts";
import { Backoff } from "../../core/backoff.ts";
import { ConfigReader, positiveNumber } from "../../core/config.ts";
import {
  InvalidConfigurationError,
  NotReachableError,
  StoreError,
} from "../../core/errors.ts";
import { formatHostPort, parseHostPort } from "../../core/host_port.ts";
import { serial } from "../../core/serial.ts";
import { TLS_SETTINGS, tlsConnectionOptions } from "../../core/tls.ts";
import {
  describeOperation,
  type ErrorTranslator,
  translating,
} from "../../core/translate.ts";

const configError = (message: RegExp) => (error: Error) =>
  error instanceof InvalidConfigurationError && message.test(error.message);

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("Backoff", () => {
  test("full jitter draws below a ceiling that doubles up to the cap", () => {
    const top = new Backoff({ baseMs: 50, capMs: 300, random: () => 0.999999 });
    assert.deepEqual(
      Array.from({ length: 5 }, () => top.next()),
      [50, 100, 200, 300, 300],
    );
    const bottom = new Backoff({ baseMs: 50, capMs: 300, random: () => 0 });
    // Never 0: a retry does not come back in the same tick.
    assert.equal(bottom.next(), 1);
  });

  test("equal jitter keeps at least half the ceiling", () => {
    const backoff = new Backoff({
      baseMs: 100,
      capMs: 5_000,
      jitter: "equal",
      random: () => 0,
    });
    assert.deepEqual(
      Array.from({ length: 8 }, () => backoff.next()),
      [50, 100, 200, 400, 800, 1_600, 2_500, 2_500],
    );
  });

  test("delays stay within their ceiling with real randomness", () => {
    const backoff = new Backoff({ baseMs: 20, capMs: 500 });
    for (let i = 0; i < 100; i++) {
      const ceiling = Math.min(500, 20 * 2 ** i);
      const ms = backoff.next();
      assert.ok(ms >= 1 && ms <= ceiling, `${ms} > ${ceiling}`);
    }
  });

  test("reset starts again from the base and counts attempts from 0", () => {
    const backoff = new Backoff({ baseMs: 10, capMs: 1_000, random: () => 1 });
    backoff.next();
    backoff.next();
    assert.equal(backoff.attempts, 2);
    backoff.reset();
    assert.equal(backoff.attempts, 0);
    assert.equal(backoff.next(), 10);
  });

  test("a huge number of attempts does not overflow the ceiling", () => {
    const backoff = new Backoff({ baseMs: 1, capMs: 7, random: () => 1 });
    for (let i = 0; i < 2_000; i++) backoff.next();
    assert.equal(backoff.next(), 7);
  });
});

describe("serial", () => {
  test("calls in one synchronous burst make one run", async () => {
    let runs = 0;
    const run = serial(() => {
      runs++;
      return Promise.resolve();
    }, { onError: assert.fail });
    run();
    run();
    run();
    assert.equal(runs, 0, "a run starts in a microtask");
    await tick();
    assert.equal(runs, 1);
  });

  test("calls during a run make exactly one more run, never overlapping", async () => {
    let running = 0;
    let most = 0;
    let runs = 0;
    const gates: Array<() => void> = [];
    const run = serial(async () => {
      runs++;
      running++;
      most = Math.max(most, running);
      await new Promise<void>((resolve) => gates.push(resolve));
      running--;
    }, { onError: assert.fail });
    run();
    await tick();
    assert.equal(runs, 1);
    run();
    run();
    run();
    gates.shift()!();
    await tick();
    assert.equal(runs, 2, "one more run for the three calls");
    gates.shift()!();
    await tick();
    assert.equal(runs, 2);
    assert.equal(most, 1);
  });

  test("onIdle is told when a run ends with none asked for", async () => {
    const events: string[] = [];
    let release = () => {};
    const run = serial(async () => {
      events.push("run");
      await new Promise<void>((resolve) => (release = resolve));
    }, { onError: assert.fail, onIdle: () => events.push("idle") });
    run();
    await tick();
    run();
    release();
    await tick();
    assert.deepEqual(events, ["run", "run"]);
    release();
    await tick();
    assert.deepEqual(events, ["run", "run", "idle"]);
  });

  test("a failed run goes to onError once and stops the runner", async () => {
    const errors: unknown[] = [];
    let runs = 0;
    const run = serial(() => {
      runs++;
      return Promise.reject(new Error("read failed"));
    }, { onError: (error) => errors.push(error) });
    run();
    await tick();
    run();
    await tick();
    assert.equal(runs, 1);
    assert.equal(errors.length, 1);
    assert.match((errors[0] as Error).message, /read failed/);
  });
});

describe("tlsConnectionOptions", () => {
  test("maps PEM text and bytes to node:tls options, checking by default", () => {
    const pem = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n";
    assert.deepEqual(tlsConnectionOptions("redis", {}), {
      rejectUnauthorized: true,
    });
    assert.deepEqual(
      tlsConnectionOptions("etcd", {
        ca: new TextEncoder().encode(pem),
        cert: pem,
        key: new TextEncoder().encode("key"),
        servername: "db.internal",
        rejectUnauthorized: false,
      }),
      {
        ca: [pem],
        cert: pem,
        key: "key",
        servername: "db.internal",
        rejectUnauthorized: false,
      },
    );
    assert.deepEqual(
      tlsConnectionOptions("consul", { ca: [pem, new Uint8Array([65])] }).ca,
      [pem, "A"],
    );
  });

  test("an unknown field is refused, naming it and the known ones", () => {
    assert.throws(
      () => tlsConnectionOptions("zookeeper", { rejectUnauthorised: false }),
      configError(
        /^Unknown zookeeper TLS setting "rejectUnauthorised" \(known: ca, cert, key, servername, rejectUnauthorized\)$/,
      ),
    );
    assert.deepEqual(TLS_SETTINGS, [
      "ca",
      "cert",
      "key",
      "servername",
      "rejectUnauthorized",
    ]);
  });

  test("a field of the wrong type is refused with the field's name", () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ ca: 5 }, /"tls\.ca" must be PEM text or bytes, or a list of them/],
      [{ ca: ["ok", 5] }, /"tls\.ca"/],
      [{ cert: {} }, /"tls\.cert" must be PEM text or bytes/],
      [{ key: true }, /"tls\.key" must be PEM text or bytes/],
      [{ servername: "" }, /"tls\.servername" must be a non-empty string/],
      [
        { rejectUnauthorized: "false" },
        /"tls\.rejectUnauthorized" must be a boolean, not "false"/,
      ],
    ];
    for (const [tls, message] of bad) {
      assert.throws(
        () => tlsConnectionOptions("dynamodb", tls),
        configError(message),
        JSON.stringify(tls),
      );
    }
    assert.throws(
      () => tlsConnectionOptions("redis", [] as never),
      configError(/"tls" must be a boolean or an object/),
    );
  });

  test("ConfigReader checks tls when it is made, before anything connects", () => {
    assert.throws(
      () =>
        new ConfigReader("redis", { tls: { rejectUnauthorised: false } }, {}),
      configError(/Unknown redis TLS setting "rejectUnauthorised"/),
    );
    assert.deepEqual(
      new ConfigReader("redis", { tls: { servername: "a" } }, {}).tls,
      { servername: "a", rejectUnauthorized: true },
    );
  });
});

describe("parseHostPort", () => {
  test("reads host:port, [v6]:port, and bare hosts with the default port", () => {
    assert.deepEqual(parseHostPort("redis", "cache:6380", 6379), {
      host: "cache",
      port: 6380,
    });
    assert.deepEqual(parseHostPort("redis", "cache", 6379), {
      host: "cache",
      port: 6379,
    });
    assert.deepEqual(parseHostPort("etcd", "[::1]:2380", 2379), {
      host: "::1",
      port: 2380,
    });
    assert.deepEqual(parseHostPort("etcd", "[fe80::1%eth0]", 2379), {
      host: "fe80::1%eth0",
      port: 2379,
    });
    assert.deepEqual(parseHostPort("zookeeper", " 10.0.0.1:1 ", 2181), {
      host: "10.0.0.1",
      port: 1,
    });
    assert.deepEqual(parseHostPort("consul", "h:65535", 8500).port, 65_535);
  });

  test("refuses ports outside 1-65535 with the backend and the endpoint", () => {
    for (const text of ["h:0", "h:65536", "h:99999", "[::1]:0"]) {
      assert.throws(
        () => parseHostPort("zookeeper", text, 2181),
        configError(
          /^The zookeeper endpoint ".*" has port \d+: a port is from 1 to 65535$/,
        ),
        text,
      );
    }
  });

  test("refuses what is not an address", () => {
    for (
      const text of [
        "",
        "h:",
        "h:port",
        "h:1:2",
        "h/path",
        "u@h:1",
        "[::1",
        "a b",
      ]
    ) {
      assert.throws(
        () => parseHostPort("redis", text, 6379),
        configError(
          /^The redis endpoint .* is not host, host:port or \[ipv6\]:port/,
        ),
        JSON.stringify(text),
      );
    }
    assert.throws(
      () => parseHostPort("etcd", "::1", 2379),
      configError(/IPv6 address goes in brackets/),
    );
  });

  test("formatHostPort writes IPv6 hosts back in brackets", () => {
    assert.equal(formatHostPort({ host: "::1", port: 2379 }), "[::1]:2379");
    assert.equal(formatHostPort({ host: "h", port: 1 }), "h:1");
    const parsed = parseHostPort("etcd", "[::1]:2379", 1);
    assert.equal(formatHostPort(parsed), "[::1]:2379");
  });
});

describe("positiveNumber", () => {
  test("accepts positive numbers within the rule", () => {
    assert.equal(positiveNumber("d", "n", 0.5), 0.5);
    assert.equal(positiveNumber("d", "n", 3, { integer: true }), 3);
    assert.equal(
      positiveNumber("d", "n", MAX_TIMER_MS, { timer: true }),
      MAX_TIMER_MS,
    );
    assert.equal(
      positiveNumber("d", "n", 1_000, { min: 1_000, max: 2_000 }),
      1_000,
    );
  });

  test("says one thing for every backend: the setting, the rule, the value", () => {
    const bad: Array<[unknown, Parameters<typeof positiveNumber>[3], string]> =
      [
        [0, {}, 'The demo setting "n" must be a positive number, not 0'],
        [-1, {}, 'The demo setting "n" must be a positive number, not -1'],
        [
          Number.NaN,
          {},
          'The demo setting "n" must be a positive number, not NaN',
        ],
        [
          Infinity,
          {},
          'The demo setting "n" must be a positive number, not Infinity',
        ],
        ["5", {}, 'The demo setting "n" must be a positive number, not "5"'],
        [
          1.5,
          { integer: true },
          'The demo setting "n" must be a positive whole number, not 1.5',
        ],
        [
          MAX_TIMER_MS + 1,
          { timer: true },
          'The demo setting "n" must be a positive number of milliseconds up to 2147483647, not 2147483648',
        ],
        [
          100,
          { timer: true, min: 1_000, max: 600_000 },
          'The demo setting "n" must be a positive number of milliseconds from 1000 to 600000, not 100',
        ],
        [
          11,
          { max: 10 },
          'The demo setting "n" must be a positive number up to 10, not 11',
        ],
      ];
    for (const [value, rule, message] of bad) {
      assert.throws(
        () => positiveNumber("demo", "n", value, rule),
        (error: Error) =>
          error instanceof InvalidConfigurationError &&
          error.message === message,
        message,
      );
    }
  });

  test("ConfigReader.get reads URL strings, applies the default and checks both", () => {
    const schema = {
      wait: { kind: "number", timer: true, default: 1, doc: "d" },
      other: { kind: "number", default: 7, doc: "d" },
    } as const;
    const config = new ConfigReader("demo", { wait: "250" }, schema);
    assert.equal(config.get("wait"), 250);
    assert.equal(config.get("other"), 7);
    assert.throws(
      () => new ConfigReader("demo", { wait: "0" }, schema),
      configError(
        /"wait" must be a positive number of milliseconds up to 2147483647, not 0/,
      ),
    );
  });

  test("connectTimeout is a timer: beyond 2^31 - 1 ms it is refused", () => {
    assert.throws(
      () => new ConfigReader("demo", { connectTimeout: 2 ** 31 }, {}),
      configError(
        /"connectTimeout" must be a positive number of milliseconds up to 2147483647/,
      ),
    );
  });
});

describe("error translators", () => {
  const translate: ErrorTranslator = (error, context) =>
    error instanceof Error && error.message === "ECONNREFUSED"
      ? new NotReachableError(`demo ${describeOperation(context)} failed`, {
        cause: error,
      })
      : undefined;

  test("describeOperation names the operation and its key", () => {
    assert.equal(describeOperation({ op: "watch" }), "watch");
    assert.equal(describeOperation({ op: "get", key: "a/b" }), 'get of "a/b"');
  });

  test("translating throws what the translator makes, or the error itself", async () => {
    await assert.rejects(
      translating(
        translate,
        { op: "get", key: "k" },
        () => Promise.reject(new Error("ECONNREFUSED")),
      ),
      (error: Error) =>
        error instanceof NotReachableError &&
        error.message === 'demo get of "k" failed',
    );
    const reason = new DOMException("stop", "AbortError");
    await assert.rejects(
      translating(translate, { op: "get" }, () => Promise.reject(reason)),
      (error) => error === reason,
    );
    const own = new StoreError("own");
    await assert.rejects(
      translating(translate, { op: "get" }, () => Promise.reject(own)),
      (error) => error === own,
    );
    assert.equal(
      await translating(translate, { op: "get" }, () => Promise.resolve(7)),
      7,
    );
  });
});
