// SPDX-License-Identifier: MIT OR Apache-2.0
//! The primary's bounded cache of the page copies it sent, so a page sent before travels as a
//! delta against the copy the backup holds (US9489265: send the modifications, not the page).
//!
//! Why a cached copy is the backup's copy: the checkpoint stream is one ordered, reliable
//! stream, and the backup applies its epochs whole and in order, refusing any epoch that does
//! not follow the last one it applied ([`crate::pair::backup`]). So when the backup applies an
//! epoch, every earlier epoch is already in its memory, and its copy of a page is the one last
//! sent, acknowledged or not. A backup that fails an epoch applies no later one, so no delta is
//! ever applied over another base. The backup holds every page of guest memory (the first
//! epoch sends them all), so the feedback on which pages it holds is the stream itself; a new
//! backup means a new [`super::Primary`] and an empty cache.
//!
//! Bounded: at most `capacity` pages, allocated as they are first needed (an allocation that
//! fails only stops the growth). When full, the CLOCK algorithm picks the copy to replace: a
//! hand sweeps the slots, sparing (once) each slot used since it last passed. The pages of the
//! first, whole-memory epoch are not cached: they would only push each other out.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::stream::PageBuf;

/// How well the cache served the pages sent after the first epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Pages looked up (pages sent after the first epoch).
    pub lookups: u64,
    /// Lookups that found the copy the backup holds.
    pub hits: u64,
    /// Pages that went as deltas.
    pub deltas: u64,
}

impl CopyStats {
    /// Hits per thousand lookups.
    #[must_use]
    pub fn hit_permille(&self) -> u64 {
        self.hits * 1000 / self.lookups.max(1)
    }
}

/// No slot: marks a page with no cached copy in [`SentCopies::slot_of`].
const NONE: u32 = u32::MAX;

struct Slot {
    gfn: u64,
    /// Used since the clock hand last passed.
    referenced: bool,
    page: Box<PageBuf>,
}

/// The cache. See the [module docs](self).
pub(super) struct SentCopies {
    /// Per guest page: its slot, or [`NONE`].
    slot_of: Vec<u32>,
    slots: Vec<Slot>,
    capacity: usize,
    hand: usize,
    pub(super) stats: CopyStats,
}

impl SentCopies {
    /// A cache of at most `capacity` copies for a guest of `ram_pages` pages (`None` when even
    /// its index cannot be allocated: the primary then sends no deltas).
    pub(super) fn new(ram_pages: usize, capacity: usize) -> Option<Self> {
        let capacity = capacity.min(NONE as usize);
        let mut slot_of = Vec::new();
        if capacity > 0 {
            slot_of.try_reserve_exact(ram_pages).ok()?;
            slot_of.resize(ram_pages, NONE);
        }
        Some(Self {
            slot_of,
            slots: Vec::new(),
            capacity,
            hand: 0,
            stats: CopyStats::default(),
        })
    }

    /// The copy of `gfn` the backup holds, if cached (counted as a lookup).
    pub(super) fn base(&mut self, gfn: u64) -> Option<&PageBuf> {
        self.stats.lookups += 1;
        let slot = self.slot(gfn)?;
        self.stats.hits += 1;
        let s = self.slots.get_mut(slot)?;
        s.referenced = true;
        Some(&s.page)
    }

    /// `page` is what was just sent for `gfn`: keeps it as the backup's copy, replacing an
    /// older copy of `gfn` or, with the cache full, the copy the clock hand picks.
    pub(super) fn remember(&mut self, gfn: u64, page: &PageBuf) {
        if self.capacity == 0 || usize::try_from(gfn).map_or(true, |g| g >= self.slot_of.len()) {
            return;
        }
        let slot = match self.slot(gfn) {
            Some(slot) => slot,
            None => match self.grow(gfn) {
                Some(slot) => slot,
                None => self.evict_for(gfn),
            },
        };
        if let Some(s) = self.slots.get_mut(slot) {
            s.page.copy_from_slice(page);
            s.referenced = true;
        }
    }

    /// Copies cached now.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    fn slot(&self, gfn: u64) -> Option<usize> {
        let slot = *self.slot_of.get(usize::try_from(gfn).ok()?)?;
        (slot != NONE).then_some(slot as usize)
    }

    fn set_slot(&mut self, gfn: u64, slot: u32) {
        if let Some(s) = usize::try_from(gfn)
            .ok()
            .and_then(|g| self.slot_of.get_mut(g))
        {
            *s = slot;
        }
    }

    /// A new slot for `gfn` while below capacity and memory allows.
    fn grow(&mut self, gfn: u64) -> Option<usize> {
        if self.slots.len() >= self.capacity {
            return None;
        }
        let page = super::pages::zeroed_page()?;
        self.slots.try_reserve(1).ok()?;
        let slot = self.slots.len();
        self.slots.push(Slot {
            gfn,
            referenced: false,
            page,
        });
        self.set_slot(gfn, slot as u32);
        Some(slot)
    }

    /// Hands `gfn` the slot the clock hand stops at (the first not used since it last
    /// passed), forgetting that slot's page. Needs at least one slot (else returns one past).
    fn evict_for(&mut self, gfn: u64) -> usize {
        let n = self.slots.len();
        if n == 0 {
            return 0;
        }
        // Two sweeps at most: the first clears every reference bit it passes.
        for _ in 0..2 * n {
            let at = self.hand % n;
            self.hand = (at + 1) % n;
            let Some(s) = self.slots.get_mut(at) else {
                break;
            };
            if core::mem::take(&mut s.referenced) {
                continue;
            }
            let old = core::mem::replace(&mut s.gfn, gfn);
            self.set_slot(old, NONE);
            self.set_slot(gfn, at as u32);
            return at;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::PAGE_SIZE;

    fn page(byte: u8) -> Box<PageBuf> {
        Box::new([byte; PAGE_SIZE])
    }

    #[test]
    fn a_sent_page_is_the_base_of_its_next_send() {
        let mut c = SentCopies::new(16, 4).unwrap();
        assert!(c.base(3).is_none());
        c.remember(3, &page(7));
        assert_eq!(c.base(3).map(|p| p[0]), Some(7));
        c.remember(3, &page(9));
        assert_eq!(
            c.base(3).map(|p| p[100]),
            Some(9),
            "the newest copy, not the first"
        );
        assert_eq!(c.len(), 1);
        assert_eq!(
            c.stats,
            CopyStats {
                lookups: 3,
                hits: 2,
                deltas: 0
            }
        );
        assert_eq!(c.stats.hit_permille(), 666);
    }

    #[test]
    fn the_cache_stays_within_its_capacity_and_keeps_pages_in_use() {
        let mut c = SentCopies::new(64, 4).unwrap();
        for gfn in 0..4 {
            c.remember(gfn, &page(gfn as u8));
        }
        // A sweep clears the reference bits; page 2 is used again and so spared once.
        c.remember(10, &page(10));
        assert!(c.base(2).is_some());
        for gfn in 20..22 {
            c.remember(gfn, &page(gfn as u8));
        }
        assert_eq!(c.len(), 4);
        assert!(c.base(2).is_some(), "a page in use survives");
        let cached: Vec<u64> = (0..64).filter(|&g| c.slot(g).is_some()).collect();
        assert_eq!(cached.len(), 4);
        // Every index entry points at a slot holding that page.
        for g in cached {
            let slot = c.slot(g).unwrap();
            assert_eq!(c.slots[slot].gfn, g);
            assert_eq!(c.slots[slot].page[0], g as u8);
        }
    }

    #[test]
    fn zero_capacity_and_pages_beyond_ram_cache_nothing() {
        let mut c = SentCopies::new(8, 0).unwrap();
        c.remember(1, &page(1));
        assert!(c.base(1).is_none());
        let mut c = SentCopies::new(8, 4).unwrap();
        c.remember(8, &page(1));
        c.remember(u64::MAX, &page(1));
        assert_eq!(c.len(), 0);
        assert!(c.base(8).is_none() && c.base(u64::MAX).is_none());
    }

    #[test]
    fn a_long_run_of_random_sends_never_confuses_two_pages() {
        let mut c = SentCopies::new(256, 32).unwrap();
        let mut truth = alloc::vec![None::<u8>; 256];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Skewed: a few pages are hot.
            let gfn = if x.is_multiple_of(4) { x % 256 } else { x % 24 };
            let value = i as u8;
            if let Some(base) = c.base(gfn) {
                assert_eq!(Some(base[4095]), truth[gfn as usize], "page {gfn}");
            }
            c.remember(gfn, &page(value));
            truth[gfn as usize] = Some(value);
            assert!(c.len() <= 32);
        }
        assert!(c.stats.hit_permille() > 500, "{:?}", c.stats);
    }
}
