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
 * The most raw bytes (keys and values) one write a client sends may carry:
 * the `file:` store's `maxAtomicBytes`, and the size of each run a client's
 * `putMany` or `deleteMany` is sent in. Four of them fit in a message.
 */
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

/**
 * The largest message: a payload at its limit as base64 (4/3) with its
 * keys escaped and its envelope, with room to spare; an answer as large as
 * a few payloads (a `list`, a tree watch's first report). A message that
 * would be longer is refused by its sender, for that call alone; a longer
 * length read off the socket means a broken peer.
 */
export const MAX_MESSAGE_BYTES = 4 * MAX_PAYLOAD_BYTES;

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

/**
 * The bytes of `message` on the wire: its length, then its JSON.
 *
 * @param message The message.
 * @param what What it carries, for the error (`the answer to list`).
 * @param limit The longest body (tests pass a small one).
 * @throws {StoreError} When the message would be longer than `limit`
 *   (nothing is sent).
 */
export function encode(
  message: Message,
  what = "a message",
  limit: number = MAX_MESSAGE_BYTES,
): Uint8Array {
  let json: string;
  try {
    json = JSON.stringify(message, replacer);
  } catch (error) {
    // Past the runtime's longest string: far past the limit.
    if (!(error instanceof RangeError)) throw error;
    throw tooLarge(what, undefined, limit);
  }
  // A UTF-8 body is at least as long as its string.
  if (json.length > limit) throw tooLarge(what, json.length, limit);
  const body = Buffer.from(json, "utf8");
  if (body.length > limit) throw tooLarge(what, body.length, limit);
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

function tooLarge(
  what: string,
  bytes: number | undefined,
  limit: number,
): StoreError {
  const size = bytes === undefined
    ? "too long to encode"
    : `${(bytes / 1048576).toFixed(1)} MiB`;
  return new StoreError(
    `${what} is ${size} on the socket to the process that owns the file, more than the ${
      limit / 1048576
    } MiB a message may be: ask for less at once (a scan in pages instead of a list, fewer keys)`,
  );
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
  // A long message comes in many chunks: they wait here until it is all
  // in, and are joined once (joining on each chunk copied it over and over).
  const parts: Buffer[] = [];
  let partsBytes = 0;
  let needed = 0;
  socket.on("data", (chunk: Buffer) => {
    if (parts.length > 0) {
      parts.push(chunk);
      partsBytes += chunk.length;
      if (partsBytes < needed) return;
      pending = Buffer.concat(parts, partsBytes);
      parts.length = 0;
      partsBytes = 0;
    } else {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    }
    while (pending.length >= 4) {
      const length = pending.readUInt32BE(0);
      if (length > MAX_MESSAGE_BYTES) {
        socket.destroy(
          new StoreError(`A message of ${length} bytes is too large`),
        );
        return;
      }
      if (pending.length < 4 + length) {
        parts.push(pending);
        partsBytes = pending.length;
        needed = 4 + length;
        pending = Buffer.alloc(0);
        break;
      }
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
