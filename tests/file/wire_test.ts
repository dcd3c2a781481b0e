/**
 * The messages between a file's owner and its clients: what they carry comes
 * back as itself, however it is cut into chunks, and a message past the
 * limit is refused by its sender with the reason, for that call alone.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { describe, test } from "node:test";
import {
  encode,
  MAX_MESSAGE_BYTES,
  type Message,
  readMessages,
} from "../../backends/file/wire.ts";

// Just what readMessages uses of a socket: its data events and destroy.
function fakeSocket(): EventEmitter & { destroyed: boolean; error?: Error } {
  const socket = Object.assign(new EventEmitter(), {
    destroyed: false,
    error: undefined as Error | undefined,
    destroy(error?: Error) {
      socket.destroyed = true;
      socket.error = error;
    },
  });
  return socket;
}

describe("file: wire", () => {
  test("messages come back as themselves, cut into chunks of any size", () => {
    const messages: Message[] = [
      { id: 1, op: "put", key: "a/b", value: new Uint8Array([0, 1, 255]) },
      { id: 2, ok: true, result: 12345678901234567890n },
      { id: 3, big: new Uint8Array(300_000).fill(9) },
    ];
    const wire = Buffer.concat(messages.map((m) => encode(m)));
    for (const size of [1, 3, 7, 4096, 65536, wire.length]) {
      const socket = fakeSocket();
      const got: Message[] = [];
      readMessages(socket as unknown as Socket, (m) => got.push(m));
      for (let at = 0; at < wire.length; at += size) {
        socket.emit("data", wire.subarray(at, at + size));
      }
      assert.equal(socket.destroyed, false);
      assert.deepEqual(got, messages, `chunks of ${size} bytes`);
    }
  });

  test("a message past the limit is refused by its sender, naming what and how large", () => {
    assert.throws(
      () =>
        encode(
          { id: 1, value: new Uint8Array(3000) },
          "the answer to list",
          1000,
        ),
      (error: Error) =>
        error.name === "StoreError" &&
        /^the answer to list is 0\.0 MiB on the socket/.test(error.message) &&
        /a scan in pages instead of a list/.test(error.message),
    );
    assert.ok(encode({ id: 1, value: new Uint8Array(100) }, "x", 1000));
  });

  test("a length past the limit read off the socket is a broken peer: the socket is destroyed", () => {
    const socket = fakeSocket();
    readMessages(socket as unknown as Socket, () => assert.fail("no message"));
    const header = Buffer.alloc(4);
    header.writeUInt32BE(MAX_MESSAGE_BYTES + 1, 0);
    socket.emit("data", header);
    assert.equal(socket.destroyed, true);
    assert.match(socket.error!.message, /too large/);
  });
});
