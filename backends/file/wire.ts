/**
 * The messages between the process that owns a database file and the other
 * processes that use it: each a JSON document behind a 4-byte big-endian
 * length, on one Unix socket per client. Bytes travel as base64 and bigints
 * as decimal strings, tagged so they come back as themselves.
 *
 * One socket carries a client's requests, their answers and its watches'
 * notifications in the order the owner sent them, which is what keeps a
 * watch's first state and its changes in commit order.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { Socket } from "node:net";
import { StoreError } from "../../core/errors.ts";

/**
 * The protocol's version; an owner refuses a client of another version.
 * Version 2: a put answers the key's new revision. Version 3: pages of a
 * scan. Version 4: fenced commits (an older owner would ignore the fences).
 */
export const WIRE_VERSION = 4;

/**
 * The largest message: a value at the store's limit (16 MiB) as base64 and
 * its envelope, with room to spare. A bigger length means a broken peer.
 */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** A message: a JSON object whose bytes and bigints are tagged. */
export type Message = Record<string, unknown>;

function replacer(this: unknown, _key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) {
    return {
      $b: Buffer.from(value.buffer, value.byteOffset, value.length).toString(
        "base64",
      ),
    };
  }
  if (typeof value === "bigint") return { $n: value.toString() };
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === "object") {
    const tagged = value as { $b?: string; $n?: string };
    if (typeof tagged.$b === "string") {
      return new Uint8Array(Buffer.from(tagged.$b, "base64"));
    }
    if (typeof tagged.$n === "string") return BigInt(tagged.$n);
  }
  return value;
}

/** The bytes of `message` on the wire: its length, then its JSON. */
export function encode(message: Message): Uint8Array {
  const body = Buffer.from(JSON.stringify(message, replacer), "utf8");
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

/**
 * Reads messages off `socket`, calling `onMessage` for each in order; a
 * malformed stream destroys the socket.
 *
 * @param socket The connection.
 * @param onMessage Hears each message.
 */
export function readMessages(
  socket: Socket,
  onMessage: (message: Message) => void,
): void {
  let pending: Buffer = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 4) {
      const length = pending.readUInt32BE(0);
      if (length > MAX_MESSAGE_BYTES) {
        socket.destroy(
          new StoreError(`A message of ${length} bytes is too large`),
        );
        return;
      }
      if (pending.length < 4 + length) break;
      const body = pending.subarray(4, 4 + length).toString("utf8");
      pending = pending.subarray(4 + length);
      let message: Message;
      try {
        message = JSON.parse(body, reviver) as Message;
      } catch (error) {
        socket.destroy(new StoreError("A malformed message", { cause: error }));
        return;
      }
      onMessage(message);
      if (socket.destroyed) return;
    }
  });
}

/** An error as it travels: its name, message and the library's code. */
export interface WireError {
  name: string;
  message: string;
}

/** `error` as it travels. */
export function toWireError(error: unknown): WireError {
  if (error instanceof Error) {
    return { name: error.name, message: error.message };
  }
  return { name: "StoreError", message: String(error) };
}
