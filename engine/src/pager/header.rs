//! The file header (the first 512 bytes of page 0) and its codec.
//!
//! ```text
//!   0  magic (16 bytes)
//!  16  format version u32, page size u32
//!  24  god byte: which commit slot is current (0 or 1)
//!  32  XXH64 of bytes 0..24
//!  64  commit slot 0 (128 bytes)
//! 192  commit slot 1 (128 bytes)
//! ```
//!
//! A slot: txn u64, revision u64, reserved u64, synced u64, count u64, main
//! root ref, ttl root ref, bitmap directory ref (20 bytes each), page count
//! u32, zero padding, and at 120 the XXH64 of bytes 0..120.
//!
//! A commit rewrites the whole 512 bytes in one write (one sector): the slot
//! that is not current, and the god byte naming it.
//!
//! Redundancy against damage. A second copy of each slot would not fit the
//! sector (192 of its bytes are free, two more slots take 256), and moving
//! the slots would change the format, so that files of earlier engines
//! need another reader and files of this one are refused by them. Instead
//! a slot's 64-bit checksum also corrects it: when a slot does not match
//! its checksum, each of the 1024 single-bit changes is tried, and one that
//! makes it match is the slot as written (a wrong match would be a 64-bit
//! collision among 1024 candidates, about one in 2^54). So one flipped bit
//! in a slot is repaired, and `Db::open` (in `db/open.rs`) reports what
//! cannot be repaired instead of silently opening the older commit.

use crate::checksum::xxh64;
use crate::error::{corrupt, Error, Result};
use crate::page::{get_ref, get_u32, get_u64, put_ref, put_u32, put_u64, Ref, PAGE};

/// The first bytes of every database file.
pub const MAGIC: &[u8; 16] = b"\x89valkeyrie\r\n\x1a\n\0\0";
/// The file format this engine writes and reads.
pub const FORMAT: u32 = 1;
const GOD: usize = 24;
const HEADER_SUM: usize = 32;
const SLOT_AT: [usize; 2] = [64, 192];
const SLOT_LEN: usize = 128;
const SLOT_SUM: usize = 120;
const SLOT_SEED: u64 = 0x5107;
/// The part of page 0 a commit rewrites: one sector, so the slot and the
/// god byte land together or not at all on disks with 512-byte sectors.
pub const HEADER_BYTES: usize = 512;

/// A committed state of the database.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct State {
    pub txn: u64,
    pub main: Ref,
    pub ttl: Ref,
    /// The highest revision given to a write.
    pub revision: u64,
    /// Entries in the main tree (expired ones included until swept).
    pub count: u64,
}

/// A commit slot: a committed state and what opening needs to recover it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Slot {
    pub state: State,
    /// Revisions up to this one may have been seen by readers.
    pub reserved: u64,
    /// The last transaction known durable when this slot was written.
    pub synced: u64,
    /// The allocation bitmap's directory (only after a clean close).
    pub dir: Ref,
    /// Pages the file spans; 0 marks a slot never written.
    pub page_count: u32,
}

impl Slot {
    /// Whether the slot holds a commit.
    pub fn is_written(&self) -> bool {
        self.page_count != 0
    }
}

/// How a slot read from the file decoded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Read {
    /// It matches its checksum.
    Intact(Slot),
    /// One bit (the number given) was wrong; this is the slot as written.
    Repaired(Slot, usize),
    /// Never written (all zeros, or a slot with no pages).
    Empty,
    /// It does not match its checksum, even with one bit changed.
    Damaged,
}

impl Read {
    pub fn slot(&self) -> Option<Slot> {
        match *self {
            Read::Intact(s) | Read::Repaired(s, _) => Some(s),
            Read::Empty | Read::Damaged => None,
        }
    }
}

/// The decoded header.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    /// The god byte as found (0 or 1 unless damaged).
    pub god: u8,
    pub slots: [Read; 2],
}

impl Header {
    /// The slot the god byte names, unless the byte is damaged (neither 0
    /// nor 1).
    pub fn named(&self) -> Option<usize> {
        match self.god {
            0 => Some(0),
            1 => Some(1),
            _ => None,
        }
    }
}

/// Encodes the header with `slots` and `god` naming the current one into
/// `b` (HEADER_BYTES long). A slot never written is left all zeros.
pub fn encode(b: &mut [u8], god: usize, slots: &[Slot; 2]) {
    b[..HEADER_BYTES].fill(0);
    b[..16].copy_from_slice(MAGIC);
    put_u32(b, 16, FORMAT);
    put_u32(b, 20, PAGE as u32);
    let sum = xxh64(&b[..GOD], 0);
    put_u64(b, HEADER_SUM, sum);
    b[GOD] = god as u8;
    for s in 0..2 {
        if slots[s].is_written() {
            encode_slot(&slots[s], &mut b[SLOT_AT[s]..SLOT_AT[s] + SLOT_LEN]);
        }
    }
}

/// Decodes a header; the file is refused when it is not a database of this
/// engine or its fixed part is damaged.
pub fn decode(b: &[u8]) -> Result<Header> {
    if b.len() < HEADER_BYTES {
        return Err(Error::Foreign(format!("the file is only {} bytes long", b.len())));
    }
    if &b[..16] != MAGIC {
        return Err(Error::Foreign("it does not start with the engine's magic number".into()));
    }
    if get_u64(b, HEADER_SUM) != xxh64(&b[..GOD], 0) {
        return corrupt("the file header does not match its checksum".into());
    }
    let format = get_u32(b, 16);
    if format != FORMAT {
        return Err(Error::Invalid(format!(
            "the file has format version {}, and this engine reads version {}",
            format, FORMAT
        )));
    }
    if get_u32(b, 20) as usize != PAGE {
        return corrupt(format!("the file has pages of {} bytes", get_u32(b, 20)));
    }
    let slot = |s: usize| read_slot(&b[SLOT_AT[s]..SLOT_AT[s] + SLOT_LEN]);
    Ok(Header { god: b[GOD], slots: [slot(0), slot(1)] })
}

fn encode_slot(s: &Slot, b: &mut [u8]) {
    b.fill(0);
    put_u64(b, 0, s.state.txn);
    put_u64(b, 8, s.state.revision);
    put_u64(b, 16, s.reserved);
    put_u64(b, 24, s.synced);
    put_u64(b, 32, s.state.count);
    put_ref(b, 40, &s.state.main);
    put_ref(b, 60, &s.state.ttl);
    put_ref(b, 80, &s.dir);
    put_u32(b, 100, s.page_count);
    let sum = xxh64(&b[..SLOT_SUM], SLOT_SEED);
    put_u64(b, SLOT_SUM, sum);
}

/// The slot in `b` if it matches its checksum.
fn decode_slot(b: &[u8]) -> Option<Slot> {
    if get_u64(b, SLOT_SUM) != xxh64(&b[..SLOT_SUM], SLOT_SEED) {
        return None;
    }
    Some(Slot {
        state: State {
            txn: get_u64(b, 0),
            revision: get_u64(b, 8),
            count: get_u64(b, 32),
            main: get_ref(b, 40),
            ttl: get_ref(b, 60),
        },
        reserved: get_u64(b, 16),
        synced: get_u64(b, 24),
        dir: get_ref(b, 80),
        page_count: get_u32(b, 100),
    })
}

fn read_slot(b: &[u8]) -> Read {
    match decode_slot(b) {
        Some(s) if s.is_written() => return Read::Intact(s),
        Some(_) => return Read::Empty,
        None if b.iter().all(|&x| x == 0) => return Read::Empty,
        None => {}
    }
    let mut copy = [0u8; SLOT_LEN];
    copy.copy_from_slice(b);
    for bit in 0..SLOT_LEN * 8 {
        copy[bit / 8] ^= 1 << (bit % 8);
        if let Some(s) = decode_slot(&copy) {
            if s.is_written() {
                return Read::Repaired(s, bit);
            }
        }
        copy[bit / 8] ^= 1 << (bit % 8);
    }
    Read::Damaged
}

/// Where bit `bit` of slot `s` is in the file: (byte offset, bit).
#[cfg(test)]
pub fn slot_bit(s: usize, bit: usize) -> (usize, u32) {
    (SLOT_AT[s] + bit / 8, (bit % 8) as u32)
}

/// Where the god byte is.
#[cfg(test)]
pub const GOD_AT: usize = GOD;
/// Bits of a slot.
#[cfg(test)]
pub const SLOT_BITS: usize = SLOT_LEN * 8;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(txn: u64) -> Slot {
        Slot {
            state: State {
                txn,
                main: Ref { pgno: 5, checksum: 0xAAAA_BBBB_CCCC_DDDD, txn },
                ttl: Ref { pgno: 9, checksum: 17, txn: txn - 1 },
                revision: 1234,
                count: 99,
            },
            reserved: 1234 + (1 << 20),
            synced: txn - 1,
            dir: Ref::EMPTY,
            page_count: 12,
        }
    }

    fn encoded(god: usize, slots: &[Slot; 2]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_BYTES];
        encode(&mut b, god, slots);
        b
    }

    #[test]
    fn a_header_round_trips() {
        let slots = [sample(7), sample(8)];
        let h = decode(&encoded(1, &slots)).unwrap();
        assert_eq!(h.god, 1);
        assert_eq!(h.named(), Some(1));
        assert_eq!(h.slots, [Read::Intact(slots[0]), Read::Intact(slots[1])]);
    }

    #[test]
    fn a_slot_never_written_is_empty() {
        let slots = [sample(3), Slot::default()];
        let b = encoded(0, &slots);
        assert!(b[SLOT_AT[1]..SLOT_AT[1] + SLOT_LEN].iter().all(|&x| x == 0));
        let h = decode(&b).unwrap();
        assert_eq!(h.slots[1], Read::Empty);
        assert_eq!(h.slots[1].slot(), None);
    }

    #[test]
    fn every_single_flipped_bit_of_a_slot_is_repaired() {
        let slots = [sample(7), sample(8)];
        let b = encoded(1, &slots);
        for bit in 0..SLOT_BITS {
            let mut d = b.clone();
            let (at, shift) = slot_bit(1, bit);
            d[at] ^= 1 << shift;
            let h = decode(&d).unwrap();
            assert_eq!(h.slots[1], Read::Repaired(slots[1], bit), "bit {}", bit);
            assert_eq!(h.slots[0], Read::Intact(slots[0]));
        }
    }

    #[test]
    fn two_flipped_bits_are_damage_not_a_different_slot() {
        let slots = [sample(7), sample(8)];
        let b = encoded(1, &slots);
        for (x, y) in [(0, 1), (3, 700), (64, 1023), (800, 801)] {
            let mut d = b.clone();
            for bit in [x, y] {
                let (at, shift) = slot_bit(1, bit);
                d[at] ^= 1 << shift;
            }
            assert_eq!(decode(&d).unwrap().slots[1], Read::Damaged, "bits {} and {}", x, y);
        }
    }

    #[test]
    fn a_damaged_god_byte_names_no_slot() {
        let mut b = encoded(0, &[sample(7), sample(8)]);
        b[GOD_AT] ^= 0x10;
        assert_eq!(decode(&b).unwrap().named(), None);
    }

    #[test]
    fn foreign_and_damaged_headers_are_refused() {
        let b = encoded(0, &[sample(7), Slot::default()]);
        assert!(matches!(decode(&b[..100]), Err(Error::Foreign(_))));
        let mut d = b.clone();
        d[3] ^= 1;
        assert!(matches!(decode(&d), Err(Error::Foreign(_))));
        let mut d = b.clone();
        d[20] ^= 1;
        assert!(matches!(decode(&d), Err(Error::Corrupt(_))), "page size is checksummed");
        let mut d = b.clone();
        put_u32(&mut d, 16, 2);
        let sum = xxh64(&d[..GOD], 0);
        put_u64(&mut d, HEADER_SUM, sum);
        assert!(matches!(decode(&d), Err(Error::Invalid(m)) if m.contains("format version 2")));
    }
}
