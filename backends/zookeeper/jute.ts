/**
 * Jute, ZooKeeper's wire encoding: big-endian integers, length-prefixed
 * buffers and strings (length -1 for null), vectors with a count prefix.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false });

/** Builds one request body, growing its buffer as needed. */
export class JuteWriter {
  #bytes = new Uint8Array(256);
  #view = new DataView(this.#bytes.buffer);
  #length = 0;

  /** How many bytes were written. */
  get length(): number {
    return this.#length;
  }

  int(value: number): this {
    this.#reserve(4);
    this.#view.setInt32(this.#length, value);
    this.#length += 4;
    return this;
  }

  long(value: bigint): this {
    this.#reserve(8);
    this.#view.setBigInt64(this.#length, value);
    this.#length += 8;
    return this;
  }

  bool(value: boolean): this {
    this.#reserve(1);
    this.#bytes[this.#length++] = value ? 1 : 0;
    return this;
  }

  /** A buffer; `null` is written as length -1 (ZooKeeper keeps it apart). */
  buffer(value: Uint8Array | null): this {
    if (value === null) return this.int(-1);
    this.int(value.length);
    this.#reserve(value.length);
    this.#bytes.set(value, this.#length);
    this.#length += value.length;
    return this;
  }

  string(value: string): this {
    return this.buffer(encoder.encode(value));
  }

  strings(values: readonly string[]): this {
    this.int(values.length);
    for (const value of values) this.string(value);
    return this;
  }

  /** The bytes written so far, prefixed with their length: one frame. */
  frame(): Uint8Array {
    const frame = new Uint8Array(this.#length + 4);
    new DataView(frame.buffer).setInt32(0, this.#length);
    frame.set(this.#bytes.subarray(0, this.#length), 4);
    return frame;
  }

  #reserve(n: number): void {
    if (this.#length + n <= this.#bytes.length) return;
    let size = this.#bytes.length * 2;
    while (size < this.#length + n) size *= 2;
    const bytes = new Uint8Array(size);
    bytes.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer);
  }
}

/** Reads one reply body. Reading past its end throws. */
export class JuteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }

  int(): number {
    const value = this.#view.getInt32(this.#offset);
    this.#offset += 4;
    return value;
  }

  long(): bigint {
    const value = this.#view.getBigInt64(this.#offset);
    this.#offset += 8;
    return value;
  }

  bool(): boolean {
    this.#need(1);
    return this.#bytes[this.#offset++] !== 0;
  }

  /** A buffer, or `null` when the server sent length -1. A private copy. */
  buffer(): Uint8Array | null {
    const length = this.int();
    if (length < 0) return null;
    this.#need(length);
    const value = this.#bytes.slice(this.#offset, this.#offset + length);
    this.#offset += length;
    return value;
  }

  string(): string {
    const length = this.int();
    if (length < 0) return "";
    this.#need(length);
    const value = decoder.decode(
      this.#bytes.subarray(this.#offset, this.#offset + length),
    );
    this.#offset += length;
    return value;
  }

  strings(): string[] {
    const count = this.int();
    const values: string[] = [];
    for (let i = 0; i < count; i++) values.push(this.string());
    return values;
  }

  #need(n: number): void {
    if (this.#offset + n > this.#bytes.length) {
      throw new RangeError("ZooKeeper reply ended early");
    }
  }
}
