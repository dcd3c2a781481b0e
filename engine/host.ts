/**
 * Host storage for the engine: the five calls it imports (`len`, `read`,
 * `write`, `setLen`, `sync`), over a file through `node:fs` positional
 * reads and writes (one code path for Deno, Bun and Node), or over memory.
 *
 * @module
 */

import * as fs from "node:fs";

/** What the engine reads and writes: one file. Calls throw on failure. */
export interface Host {
  /** The file's length in bytes. */
  len(): number;
  /** Fills `target` from `offset`; reading past the end throws. */
  read(offset: number, target: Uint8Array): void;
  /** Writes `data` at `offset`, growing the file as needed. */
  write(offset: number, data: Uint8Array): void;
  /** Truncates or extends the file. */
  setLen(len: number): void;
  /** Makes every write so far durable, blocking. */
  sync(): void;
  /** Makes every write so far durable without blocking the event loop. */
  syncAsync(): Promise<void>;
  /** Lets go of the file. */
  close(): void;
}

/** A file on disk, through `node:fs` positional calls. */
export class FileHost implements Host {
  #fd: number;
  #closed = false;

  /**
   * Opens (creating if needed) the file at `path` for reading and writing.
   *
   * @param path The file.
   */
  constructor(path: string) {
    // Not "a+": appending mode would ignore the positions of writes.
    this.#fd = fs.openSync(
      path,
      fs.constants.O_RDWR | fs.constants.O_CREAT,
      0o644,
    );
  }

  len(): number {
    return fs.fstatSync(this.#fd).size;
  }

  read(offset: number, target: Uint8Array): void {
    let done = 0;
    while (done < target.length) {
      const n = fs.readSync(
        this.#fd,
        target,
        done,
        target.length - done,
        offset + done,
      );
      if (n === 0) {
        throw new Error(
          `Read of ${target.length} bytes at ${offset} went past the end of the file`,
        );
      }
      done += n;
    }
  }

  write(offset: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) {
      done += fs.writeSync(
        this.#fd,
        data,
        done,
        data.length - done,
        offset + done,
      );
    }
  }

  setLen(len: number): void {
    fs.ftruncateSync(this.#fd, len);
  }

  sync(): void {
    fs.fdatasyncSync(this.#fd);
  }

  syncAsync(): Promise<void> {
    return new Promise((resolve, reject) => {
      fs.fdatasync(this.#fd, (error) => error ? reject(error) : resolve());
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    fs.closeSync(this.#fd);
  }
}

/** A file in memory: for stores that need no disk, and for tests. */
export class MemoryHost implements Host {
  #data = new Uint8Array(0);
  #len = 0;

  /** The file's current bytes (a copy). */
  bytes(): Uint8Array {
    return this.#data.slice(0, this.#len);
  }

  len(): number {
    return this.#len;
  }

  read(offset: number, target: Uint8Array): void {
    if (offset + target.length > this.#len) {
      throw new Error(
        `Read of ${target.length} bytes at ${offset} went past the end of the file`,
      );
    }
    target.set(this.#data.subarray(offset, offset + target.length));
  }

  write(offset: number, data: Uint8Array): void {
    const end = offset + data.length;
    if (end > this.#len) this.#resize(end);
    this.#data.set(data, offset);
  }

  setLen(len: number): void {
    this.#resize(len);
  }

  #resize(len: number): void {
    if (len > this.#data.length) {
      const grown = new Uint8Array(Math.max(len, this.#data.length * 2));
      grown.set(this.#data.subarray(0, this.#len));
      this.#data = grown;
    } else if (len < this.#len) {
      this.#data.fill(0, len, this.#len);
    }
    this.#len = len;
  }

  sync(): void {}

  syncAsync(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {}
}
