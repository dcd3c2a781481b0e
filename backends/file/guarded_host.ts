/**
 * A host that refuses to write over another process's commit. It keeps the
 * header it last read or wrote; right before a commit writes the header, it
 * reads the header on disk and compares. A difference means another process
 * committed to the file (it was opened twice past the owner's socket: a
 * deleted socket, a copy of the file swapped in), and the write throws, so
 * the engine refuses writes until reopened instead of replacing the other
 * process's commit. Pages this commit wrote before may then have landed on
 * pages the other process uses: its reads find them by their checksums, as
 * damage, never as data. It costs one 512-byte read per commit. (Checking
 * before a commit's first page write as well cost about 0.5 ms per durable
 * put here, half again a put's time.)
 *
 * @module
 */

import type { Host } from "../../engine/host.ts";

/** The bytes of the header a commit rewrites (one sector, see db.rs). */
const HEADER_BYTES = 512;

function equal(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A {@linkcode Host} that detects another writer of the same file. */
export class GuardedHost implements Host {
  readonly #inner: Host;
  readonly #path: string;
  /** The header as this process last read or wrote it; null before. */
  #header: Uint8Array | null = null;
  readonly #scratch = new Uint8Array(HEADER_BYTES);

  /**
   * Wraps `inner`, the host of the file at `path`.
   *
   * @param inner The file's host.
   * @param path The file (for messages).
   */
  constructor(inner: Host, path: string) {
    this.#inner = inner;
    this.#path = path;
  }

  len(): number {
    return this.#inner.len();
  }

  read(offset: number, target: Uint8Array): void {
    this.#inner.read(offset, target);
    if (offset === 0 && target.length >= HEADER_BYTES) {
      this.#header = target.slice(0, HEADER_BYTES);
    }
  }

  write(offset: number, data: Uint8Array): void {
    if (offset === 0) this.#check();
    this.#inner.write(offset, data);
    if (offset === 0 && data.length >= HEADER_BYTES) {
      this.#header = data.slice(0, HEADER_BYTES);
    }
  }

  setLen(len: number): void {
    this.#inner.setLen(len);
  }

  sync(): void {
    this.#inner.sync();
  }

  syncAsync(): Promise<void> {
    return this.#inner.syncAsync();
  }

  close(): void {
    this.#inner.close();
  }

  #check(): void {
    if (this.#header === null) return;
    this.#inner.read(0, this.#scratch);
    if (!equal(this.#scratch, this.#header)) {
      throw new Error(
        `another process committed to ${this.#path} since this one read it: the file is open twice past its owner's socket, so this process stops writing to it`,
      );
    }
  }
}
