/**
 * Keys as znode paths.
 *
 * A key maps to the znode of the same path under the store's root (the
 * URL's chroot path): `config/db/host` is `/config/db/host`, as `zkCli.sh`
 * shows it. ZooKeeper forbids some characters that keys may hold
 * (`PathUtils.validatePath`: U+0080–U+009F, U+D800–U+F8FF, which includes
 * every character above U+FFFF such as emoji, and U+FFF0–U+FFFF); those,
 * and the escape character `¤` (U+00A4) itself, are written as `¤HEX;` with
 * the code point in upper-case hex: `emoji😀` is the znode `emoji¤1F600;`.
 * Every other character is kept as it is. At the root of ZooKeeper's tree
 * the first segment `zookeeper` is ZooKeeper's own, so a key starting with
 * it is stored as `¤7A;ookeeper`.
 *
 * A znode name containing `¤` that this escaping never produces (`¤locks`,
 * `¤gen`) is not a key: the backend keeps its bookkeeping there, and lists
 * skip it.
 *
 * @module
 */

/** The escape character. */
export const ESCAPE = "\u00a4";

/** ZooKeeper's own subtree at the root of its tree. */
const SYSTEM_NODE = "zookeeper";

/** Where lock contenders live: a hidden child of the store's root. */
const LOCKS_NODE = `${ESCAPE}locks`;

/**
 * Where the generation nodes live (see `generations.ts`): a hidden child of
 * the store's root.
 */
const GENERATIONS_NODE = `${ESCAPE}gen`;

/**
 * How many generation nodes the paths of a store are spread over. Part of
 * the layout in ZooKeeper: every writer of a store must agree on it.
 */
export const GENERATION_SHARDS = 256;

/** FNV-1a (32 bits) of the UTF-8 bytes of `text`. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * Whether ZooKeeper refuses UTF-16 unit `c` in a path (its
 * `PathUtils.validatePath`).
 */
export function forbidden(c: number): boolean {
  return (c > 0 && c <= 0x1f) || (c >= 0x7f && c <= 0x9f) ||
    (c >= 0xd800 && c <= 0xf8ff) || c >= 0xfff0;
}

// Keys never hold U+0000–U+001F or U+007F, so these are all to escape.
function mustEscape(c: number): boolean {
  return forbidden(c) || c === 0xa4;
}

/**
 * Escapes one key segment into a znode name.
 *
 * @param segment A valid key segment.
 * @param reserved Whether the name `zookeeper` is taken here.
 */
export function escapeSegment(segment: string, reserved: boolean): string {
  let out: string | undefined;
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charCodeAt(i);
    if (!mustEscape(c)) {
      if (out !== undefined) out += segment[i];
      continue;
    }
    out ??= segment.slice(0, i);
    const point = segment.codePointAt(i)!;
    if (point > 0xffff) i++;
    out += `${ESCAPE}${point.toString(16).toUpperCase()};`;
  }
  const name = out ?? segment;
  return reserved && name === SYSTEM_NODE ? `${ESCAPE}7A;ookeeper` : name;
}

/**
 * The key segment a znode name stands for, or `undefined` when the name is
 * not one this escaping produces (bookkeeping, or another client's node).
 */
export function unescapeSegment(
  name: string,
  reserved: boolean,
): string | undefined {
  if (reserved && name === SYSTEM_NODE) return undefined;
  if (!name.includes(ESCAPE)) return name;
  let segment = "";
  let at = 0;
  while (at < name.length) {
    const escape = name.indexOf(ESCAPE, at);
    if (escape < 0) {
      segment += name.slice(at);
      break;
    }
    segment += name.slice(at, escape);
    const end = name.indexOf(";", escape);
    const hex = end < 0 ? "" : name.slice(escape + 1, end);
    if (!/^[0-9A-F]{1,6}$/.test(hex)) return undefined;
    const point = parseInt(hex, 16);
    if (point > 0x10ffff) return undefined;
    segment += String.fromCodePoint(point);
    at = end + 1;
  }
  // Only the one spelling this escaping produces stands for a key.
  return escapeSegment(segment, reserved) === name ? segment : undefined;
}

/** Maps the driver's full keys to znode paths under one root and back. */
export class Paths {
  /** The store's root znode: `"/"`, or a chroot such as `"/app"`. */
  readonly root: string;
  /** The root followed by `/`: what every key's path starts with. */
  readonly #base: string;
  /** Whether the root is ZooKeeper's own root, where `zookeeper` is taken. */
  readonly #atTop: boolean;

  /**
   * @param root The root znode: `"/"` or `"/a/b"` (no trailing `/`).
   */
  constructor(root: string) {
    this.root = root;
    this.#atTop = root === "/";
    this.#base = this.#atTop ? "/" : `${root}/`;
  }

  /** The znode of a full key (`""`: the root itself). */
  path(key: string): string {
    if (key === "") return this.root;
    const segments = key.split("/");
    let path = this.#base;
    for (let i = 0; i < segments.length; i++) {
      if (i > 0) path += "/";
      path += escapeSegment(segments[i], this.#atTop && i === 0);
    }
    return path;
  }

  /** The znode whose subtree holds a driver `dir` (`""` or `"a/b/"`). */
  dirPath(dir: string): string {
    return this.path(dir.endsWith("/") ? dir.slice(0, -1) : dir);
  }

  /**
   * The full key of a znode, or `undefined` when the znode is not a key of
   * this store (outside the root, the root itself, bookkeeping, foreign).
   */
  key(path: string): string | undefined {
    if (!path.startsWith(this.#base) || path.length === this.#base.length) {
      return undefined;
    }
    const names = path.slice(this.#base.length).split("/");
    const segments: string[] = [];
    for (let i = 0; i < names.length; i++) {
      const segment = unescapeSegment(names[i], this.#atTop && i === 0);
      if (segment === undefined) return undefined;
      segments.push(segment);
    }
    return segments.join("/");
  }

  /**
   * The key of a child named `name` under the znode of key `parent` (`""`
   * for the root), or `undefined` when that child is not a key.
   */
  childKey(parent: string, name: string): string | undefined {
    const segment = unescapeSegment(name, this.#atTop && parent === "");
    if (segment === undefined) return undefined;
    return parent === "" ? segment : `${parent}/${segment}`;
  }

  /** The hidden node under which every lock of the store lives. */
  get locksPath(): string {
    return `${this.#base}${LOCKS_NODE}`;
  }

  /**
   * The hidden node holding the contenders for the lock on `key`: one flat
   * name per key, so a lock's node never nests in another's.
   */
  lockPath(key: string): string {
    return `${this.locksPath}/${
      key.split("/").map((s) => escapeSegment(s, false)).join(`${ESCAPE}2F;`)
    }`;
  }

  /** The hidden node under which the store's generation nodes live. */
  get generationsPath(): string {
    return `${this.#base}${GENERATIONS_NODE}`;
  }

  /**
   * The generation node of the znode at `path` (see `generations.ts`):
   * `<root>/¤gen/<xx>`, `xx` the FNV-1a hash of the path modulo
   * {@linkcode GENERATION_SHARDS}, in two hex digits.
   */
  generationPath(path: string): string {
    const shard = fnv1a(path) % GENERATION_SHARDS;
    return `${this.generationsPath}/${shard.toString(16).padStart(2, "0")}`;
  }

  /** Whether `path` is `¤gen` or one of the generation nodes under it. */
  isGeneration(path: string): boolean {
    const dir = this.generationsPath;
    return path === dir || path.startsWith(`${dir}/`);
  }

  /** Every ancestor of `path` strictly below ZooKeeper's root, top down. */
  ancestors(path: string): string[] {
    const out: string[] = [];
    for (
      let at = path.indexOf("/", 1);
      at > 0;
      at = path.indexOf("/", at + 1)
    ) {
      out.push(path.slice(0, at));
    }
    return out;
  }

  /** Whether `path` is strictly below the store's root. */
  below(path: string): boolean {
    return path.startsWith(this.#base) && path.length > this.#base.length;
  }
}
