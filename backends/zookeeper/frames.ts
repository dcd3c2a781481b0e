/**
 * Cutting a byte stream into ZooKeeper frames (a 4-byte big-endian length,
 * then the body), refusing frames over a size limit without buffering them.
 *
 * @module
 */

/** Bytes of a reply header (xid, zxid, err): what an oversized frame keeps. */
const REPLY_HEADER_BYTES = 16;

/** What the splitter hands on. */
export interface FrameSink {
  /** A whole frame's body. */
  frame(body: Uint8Array): void;
  /**
   * A frame longer than the limit: its first bytes (enough for a reply
   * header) and its length. The rest of it is skipped.
   */
  oversized(head: Uint8Array, length: number): void;
}

/** Splits the chunks of one connection into frames. */
export class FrameSplitter {
  readonly #limit: number;
  readonly #sink: FrameSink;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  /** Bytes of an oversized frame still to skip. */
  #skip = 0;

  constructor(limit: number, sink: FrameSink) {
    this.#limit = limit;
    this.#sink = sink;
  }

  push(data: Uint8Array): void {
    // Node hands out Buffers, whose slice() shares memory: use plain views.
    let chunk = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (this.#skip > 0) {
      const skipped = Math.min(this.#skip, chunk.length);
      this.#skip -= skipped;
      chunk = chunk.subarray(skipped);
      if (chunk.length === 0) return;
    }
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    while (this.#buffered >= 4) {
      const head = this.#peek(4);
      const length = new DataView(head.buffer, head.byteOffset).getInt32(0);
      if (length < 0) throw new RangeError(`Invalid frame length ${length}`);
      if (length > this.#limit) {
        if (this.#buffered < 4 + REPLY_HEADER_BYTES) return;
        const head = this.#take(4 + REPLY_HEADER_BYTES).subarray(4);
        const rest = length - REPLY_HEADER_BYTES;
        const now = Math.min(rest, this.#buffered);
        this.#take(now);
        this.#skip = rest - now;
        this.#sink.oversized(head, length);
        if (this.#skip > 0) return;
        continue;
      }
      if (this.#buffered < 4 + length) return;
      const frame = this.#take(4 + length);
      this.#sink.frame(frame.subarray(4));
    }
  }

  // A copy of the first n buffered bytes, without consuming them.
  #peek(n: number): Uint8Array {
    const first = this.#chunks[0];
    if (first.length >= n) return first.slice(0, n);
    const out = new Uint8Array(n);
    let at = 0;
    for (const chunk of this.#chunks) {
      const part = chunk.subarray(0, n - at);
      out.set(part, at);
      at += part.length;
      if (at === n) break;
    }
    return out;
  }

  // Consumes the first n buffered bytes.
  #take(n: number): Uint8Array {
    const first = this.#chunks[0];
    this.#buffered -= n;
    if (first.length === n) {
      this.#chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const chunk = this.#chunks[0];
      const part = chunk.subarray(0, n - at);
      out.set(part, at);
      at += part.length;
      if (part.length === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(part.length);
    }
    return out;
  }
}
