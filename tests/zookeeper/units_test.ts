// Pure modules of the ZooKeeper backend on their own: the key ↔ znode path
// escaping (paths.ts) and the Jute wire encoding (jute.ts).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { JuteReader, JuteWriter } from "../../backends/zookeeper/jute.ts";
import {
  escapeSegment,
  forbidden,
  Paths,
  unescapeSegment,
} from "../../backends/zookeeper/paths.ts";

describe("zookeeper paths", () => {
  const tricky = [
    "plain",
    "with space",
    "¤",
    "a¤b",
    "semi;colon",
    "zookeeper",
    "\u0085next-line",
    "\ue000private-use",
    "emoji 🙂",
    "\ufff0special",
    "ünïcödé",
  ];

  test("every segment survives escaping, and escaped names are valid znodes", () => {
    for (const reserved of [false, true]) {
      for (const segment of tricky) {
        const name = escapeSegment(segment, reserved);
        for (let i = 0; i < name.length; i++) {
          assert.ok(!forbidden(name.charCodeAt(i)), `${name} at ${i}`);
        }
        assert.equal(unescapeSegment(name, reserved), segment, segment);
      }
    }
  });

  test("the system node is taken only at the top, and only there escaped", () => {
    assert.equal(escapeSegment("zookeeper", false), "zookeeper");
    assert.notEqual(escapeSegment("zookeeper", true), "zookeeper");
    assert.equal(unescapeSegment("zookeeper", true), undefined);
    assert.equal(unescapeSegment("zookeeper", false), "zookeeper");
  });

  test("names this escaping never produces stand for no key", () => {
    // "a" is never escaped, so its escaped spelling is another client's node.
    assert.equal(unescapeSegment("¤61;", false), undefined);
    assert.equal(unescapeSegment("¤zz;", false), undefined);
    assert.equal(unescapeSegment("¤110000;", false), undefined);
    assert.equal(unescapeSegment("¤41", false), undefined);
  });

  test("Paths maps full keys under a chroot and back, hiding what is not a key", () => {
    for (const root of ["/", "/app/kv"]) {
      const paths = new Paths(root);
      for (const key of ["a", "a/b/c", "zookeeper/x", "¤/🙂"]) {
        const path = paths.path(key);
        assert.ok(path.startsWith(root === "/" ? "/" : `${root}/`), path);
        assert.equal(paths.key(path), key, `${root} ${key}`);
      }
      assert.equal(paths.path(""), root);
      assert.equal(paths.key(root), undefined, "the root is no key");
      assert.equal(
        paths.key("/elsewhere/x"),
        root === "/" ? "elsewhere/x" : undefined,
      );
    }
    assert.equal(new Paths("/").key("/zookeeper"), undefined);
  });
});

describe("jute", () => {
  test("what the writer writes, the reader reads back", () => {
    const writer = new JuteWriter()
      .int(-7)
      .long(-(2n ** 63n))
      .long(2n ** 63n - 1n)
      .bool(true)
      .bool(false)
      .buffer(null)
      .buffer(new Uint8Array([1, 2, 3]))
      .string("ünïcödé 🙂")
      .strings(["a", "", "c"]);
    // Past the writer's first 256 bytes: it grows.
    const big = new Uint8Array(1_000).fill(9);
    writer.buffer(big);
    const frame = writer.frame();
    const view = new DataView(frame.buffer);
    assert.equal(view.getInt32(0), frame.length - 4, "a length-prefixed frame");
    assert.equal(writer.length, frame.length - 4);
    const reader = new JuteReader(frame.subarray(4));
    assert.equal(reader.int(), -7);
    assert.equal(reader.long(), -(2n ** 63n));
    assert.equal(reader.long(), 2n ** 63n - 1n);
    assert.equal(reader.bool(), true);
    assert.equal(reader.bool(), false);
    assert.equal(reader.buffer(), null);
    assert.deepEqual(reader.buffer(), new Uint8Array([1, 2, 3]));
    assert.equal(reader.string(), "ünïcödé 🙂");
    assert.deepEqual(reader.strings(), ["a", "", "c"]);
    assert.deepEqual(reader.buffer(), big);
    assert.equal(reader.remaining, 0);
  });

  test("reading past the end throws instead of inventing data", () => {
    const reader = new JuteReader(new JuteWriter().int(1).frame().subarray(4));
    assert.equal(reader.int(), 1);
    assert.throws(() => reader.int());
    const short = new JuteReader(new JuteWriter().int(10).frame().subarray(4));
    assert.throws(() => short.buffer(), "a length beyond the bytes");
  });
});
