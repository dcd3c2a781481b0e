//! The vocabulary every layer above the storage shares: the page size, the
//! reference to a checksummed page (the Merkle link), a page's checksum,
//! and little-endian field codecs.

use crate::checksum::xxh64;

/// Bytes of a page.
pub const PAGE: usize = 4096;

/// Where a page (or a subtree) lives and how to verify it.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Ref {
    /// The page number (0: nothing, page 0 is the header).
    pub pgno: u32,
    /// The XXH64 of the page, seeded with its number.
    pub checksum: u64,
    /// The transaction that wrote the page.
    pub txn: u64,
}

impl Ref {
    pub const EMPTY: Ref = Ref { pgno: 0, checksum: 0, txn: 0 };
    pub fn is_empty(&self) -> bool {
        self.pgno == 0
    }
}

/// The checksum of `data` stored at page `pgno` (a page, or a run of pages
/// holding one value): seeded with the page number, so data written to the
/// wrong place does not verify either.
pub fn page_checksum(data: &[u8], pgno: u32) -> u64 {
    xxh64(data, pgno as u64)
}

/// The number of pages `len` bytes take.
pub fn pages_for(len: u32) -> u32 {
    ((len as usize + PAGE - 1) / PAGE) as u32
}

#[inline(always)]
pub fn get_u16(p: &[u8], at: usize) -> usize {
    u16::from_le_bytes([p[at], p[at + 1]]) as usize
}
#[inline(always)]
pub fn put_u16(p: &mut [u8], at: usize, v: usize) {
    p[at..at + 2].copy_from_slice(&(v as u16).to_le_bytes());
}
#[inline(always)]
pub fn get_u32(p: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&p[at..at + 4]);
    u32::from_le_bytes(b)
}
#[inline(always)]
pub fn put_u32(p: &mut [u8], at: usize, v: u32) {
    p[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
#[inline(always)]
pub fn get_u64(p: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&p[at..at + 8]);
    u64::from_le_bytes(b)
}
#[inline(always)]
pub fn put_u64(p: &mut [u8], at: usize, v: u64) {
    p[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// A reference as 20 bytes: pgno u32, checksum u64, txn u64.
pub fn put_ref(b: &mut [u8], at: usize, r: &Ref) {
    put_u32(b, at, r.pgno);
    put_u64(b, at + 4, r.checksum);
    put_u64(b, at + 12, r.txn);
}

pub fn get_ref(b: &[u8], at: usize) -> Ref {
    Ref { pgno: get_u32(b, at), checksum: get_u64(b, at + 4), txn: get_u64(b, at + 12) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_refs_round_trip() {
        let mut b = [0u8; 40];
        put_u16(&mut b, 0, 0xBEEF);
        put_u32(&mut b, 2, 0xDEAD_BEEF);
        put_u64(&mut b, 6, u64::MAX - 5);
        assert_eq!(get_u16(&b, 0), 0xBEEF);
        assert_eq!(get_u32(&b, 2), 0xDEAD_BEEF);
        assert_eq!(get_u64(&b, 6), u64::MAX - 5);
        let r = Ref { pgno: 77, checksum: 0x0123_4567_89AB_CDEF, txn: 9 };
        put_ref(&mut b, 14, &r);
        assert_eq!(get_ref(&b, 14), r);
    }

    #[test]
    fn a_checksum_depends_on_where_the_page_is() {
        let page = vec![7u8; PAGE];
        assert_ne!(page_checksum(&page, 1), page_checksum(&page, 2));
        assert_eq!(pages_for(0), 0);
        assert_eq!(pages_for(1), 1);
        assert_eq!(pages_for(PAGE as u32), 1);
        assert_eq!(pages_for(PAGE as u32 + 1), 2);
    }
}
