// SPDX-License-Identifier: MIT OR Apache-2.0
//! A digest of all of guest memory that can be kept up to date page by page.
//!
//! The digest is the wrapping sum over every guest page of a 128-bit hash of (frame number,
//! contents). A sum can be updated when one page changes (subtract its old hash, add the new),
//! so the primary keeps it current at the cost of the pages it sends, while the backup
//! computes it over its whole copy once, at takeover. Equal memories give equal digests; the
//! page hash is not cryptographic (it checks the replication, it does not authenticate: the
//! link does that).

use alloc::vec;
use alloc::vec::Vec;

use crate::stream::PageBuf;

const K0: u64 = 0x9E37_79B9_7F4A_7C15;
const K1: u64 = 0xC2B2_AE3D_27D4_EB4F;

fn mix(x: u64) -> u64 {
    let x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The 128-bit hash of page `gfn` holding `page`.
#[must_use]
pub fn page_hash(gfn: u64, page: &PageBuf) -> u128 {
    let (mut a, mut b) = (gfn ^ K0, gfn.rotate_left(32) ^ K1);
    for word in page.chunks_exact(8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        a = (a ^ w).wrapping_mul(K1).rotate_left(29);
        b = (b.wrapping_add(w)).wrapping_mul(K0).rotate_left(31);
    }
    (u128::from(mix(a ^ b.rotate_left(17))) << 64) | u128::from(mix(b ^ a.rotate_left(43)))
}

/// The digest of a whole memory given page by page (in any order).
#[must_use]
pub fn memory_digest<'a>(pages: impl IntoIterator<Item = (u64, &'a PageBuf)>) -> u128 {
    pages.into_iter().fold(0u128, |sum, (gfn, page)| {
        sum.wrapping_add(page_hash(gfn, page))
    })
}

/// The memory digest kept up to date as pages change: one hash per page.
#[derive(Clone, Debug)]
pub struct TrackedDigest {
    hashes: Vec<u128>,
    sum: u128,
}

impl TrackedDigest {
    /// A digest for `pages` pages, none of them known yet: it describes the memory once every
    /// page went through [`update`](Self::update) (the first epoch sends them all).
    #[must_use]
    pub fn new(pages: usize) -> Self {
        Self {
            hashes: vec![0; pages],
            sum: 0,
        }
    }

    /// Page `gfn` now holds `page` (frames beyond the memory are ignored).
    pub fn update(&mut self, gfn: u64, page: &PageBuf) {
        if let Some(slot) = usize::try_from(gfn)
            .ok()
            .and_then(|i| self.hashes.get_mut(i))
        {
            let new = page_hash(gfn, page);
            self.sum = self.sum.wrapping_sub(*slot).wrapping_add(new);
            *slot = new;
        }
    }

    /// The digest now.
    #[must_use]
    pub fn value(&self) -> u128 {
        self.sum
    }
}
