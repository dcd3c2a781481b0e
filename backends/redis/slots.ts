/**
 * Redis Cluster hash slots, and tags that name a slot.
 *
 * Redis Cluster spreads names over 16 384 hash slots: a name's slot is the
 * CRC16 (XMODEM) of its bytes, modulo 16 384, or of only its hash tag when it
 * has one: the part between the first `{` and the first `}` after it, when
 * that part is not empty. A script may only touch names of one slot.
 *
 * The store keeps a key's bookkeeping in the key's slot by starting each
 * bookkeeping name with a tag that hashes to that slot (`/v/{TAG}KEY`). The
 * tag of a slot is part of the stored layout, so every client must pick the
 * same one: it is the first three-character string, in the order `000`,
 * `001`, ..., `zzz` over the alphabet `0-9A-Za-z` (first character most
 * significant), whose CRC16 modulo 16 384 is the slot. Every slot has one.
 *
 * @module
 */

/** How many hash slots Redis Cluster has. */
export const SLOT_COUNT = 16_384;

/** The characters of slot tags, in their order. */
const TAG_ALPHABET =
  "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** How long every slot tag is (three characters reach every slot). */
export const TAG_LENGTH = 3;

// The CRC16 of Redis Cluster: CCITT polynomial 0x1021, initial value 0, no
// reflection (XMODEM), one table entry per byte value.
const CRC_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    }
    table[byte] = crc & 0xffff;
  }
  return table;
})();

function crcStep(crc: number, byte: number): number {
  return ((crc << 8) ^ CRC_TABLE[((crc >> 8) ^ byte) & 0xff]) & 0xffff;
}

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < bytes.length; i++) crc = crcStep(crc, bytes[i]);
  return crc;
}

const encoder = new TextEncoder();

/**
 * The hash slot of a name, by Redis's rule (a non-empty `{tag}` decides).
 * `{` and `}` are ASCII, so finding them in the string finds them in its
 * UTF-8 bytes.
 */
export function keySlot(name: string): number {
  let hashed = name;
  const open = name.indexOf("{");
  if (open >= 0) {
    const close = name.indexOf("}", open + 1);
    if (close > open + 1) hashed = name.slice(open + 1, close);
  }
  return crc16(encoder.encode(hashed)) % SLOT_COUNT;
}

let tags: string[] | undefined;

/** The tag of a slot: three characters whose hash slot is `slot`. */
export function slotTag(slot: number): string {
  tags ??= buildTags();
  return tags[slot];
}

// The first tag of each slot, in alphabet order. About 240 000 three-byte
// CRCs, reusing the CRC of the first two characters: a few milliseconds,
// once per process.
function buildTags(): string[] {
  const table = new Array<string>(SLOT_COUNT);
  const codes = encoder.encode(TAG_ALPHABET);
  let missing = SLOT_COUNT;
  for (let i = 0; i < codes.length; i++) {
    const one = crcStep(0, codes[i]);
    for (let j = 0; j < codes.length; j++) {
      const two = crcStep(one, codes[j]);
      for (let k = 0; k < codes.length; k++) {
        const slot = crcStep(two, codes[k]) % SLOT_COUNT;
        if (table[slot] !== undefined) continue;
        table[slot] = String.fromCharCode(codes[i], codes[j], codes[k]);
        if (--missing === 0) return table;
      }
    }
  }
  throw new Error("Some hash slot has no three-character tag");
}
