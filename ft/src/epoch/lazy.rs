// SPDX-License-Identifier: MIT OR Apache-2.0
//! The lazy sender's bookkeeping (US20170177441, lazy transmission of modified pages, with
//! copy-on-write during checkpoint generation). At the stun, the epoch's dirty pages are
//! split by their modification history: hot pages (dirtied in most recent epochs, so the guest
//! will write them again at once) are copied into stun buffers during the stun; cold pages
//! are write-protected and left in guest memory. The guest resumes; the sender streams pages
//! from their buffer or straight from guest memory. A guest write to a cold page not yet sent
//! faults; the fault handler copies the page into a stun buffer first ([`LazyEpoch::on_write`]),
//! then lets the write proceed. The pool of stun buffers is bounded; when it runs dry the page
//! must be sent before the write proceeds ([`WriteVerdict::SendNow`]), which stalls only the
//! writing vCPU, and the shortfall is counted for the report.
//!
//! Hardware (write protection in EPT/NPT, the copy itself) stays with the caller: this module
//! says what to do with each page and keeps every page's epoch contents reachable exactly once.

use alloc::vec::Vec;

/// A guest-physical page number.
pub type Pfn = u64;

/// Where the sender reads a page from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Stun buffer `n` (copied during the stun or by a write fault).
    Buffer(usize),
    /// Guest memory, still write-protected and unchanged since the stun.
    Guest,
    /// Guest memory as [`Source::Guest`], with stun buffer `n` set aside for it: a hot page whose
    /// copy was left for after the stun, to a CPU beside the guest
    /// ([`LazyEpoch::next_hot_copy`]); a write fault copies it into that buffer.
    Reserved(usize),
    /// Guest memory as it is when sent, not protected: a pre-copy round, whose pages the guest
    /// may change after they are read (its dirty log has them for the next round).
    Live,
}

/// What to do with a guest write fault on a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteVerdict {
    /// Not part of this epoch's lazy set (or already sent or copied): just let it write.
    Proceed,
    /// Copy the page into stun buffer `n`, then let the write proceed.
    CopyTo(usize),
    /// No stun buffer is free: send the page now, then let the write proceed.
    SendNow,
}

/// Per-page modification history over the last 8 recorded epochs: bit `i` set if the page
/// was dirty `i` epochs ago (bit 0: the latest harvested epoch).
///
/// Each page keeps its bits as of the epoch it was last dirtied in, with that epoch's number;
/// they age (shift) when read or recorded again. Recording costs what is dirty, not what guest
/// RAM holds: shifting every page's bits each epoch cost 0.4 ms per stun of a 16 MiB guest
/// under emulation, most of a 6-page stun.
#[derive(Clone, Debug)]
pub struct History {
    bits: Vec<u8>,
    /// The epoch (of [`History::epoch`]'s count) each page's bits were last recorded in.
    stamps: Vec<u32>,
    /// Epochs recorded so far (wrapping resets the history).
    epoch: u32,
    /// Whether a page with these bits is hot: dirtied in at least the threshold's number of
    /// the last 8 epochs (one load in the stun's per-page loop, rather than a population count,
    /// which x86-64's baseline lacks as one instruction).
    hot: [bool; 256],
}

impl History {
    /// History for `pages` guest pages; `hot_threshold` in 1..=8.
    #[must_use]
    pub fn new(pages: usize, hot_threshold: u32) -> Self {
        Self {
            bits: alloc::vec![0; pages],
            stamps: alloc::vec![0; pages],
            epoch: 0,
            hot: core::array::from_fn(|bits| bits.count_ones() >= hot_threshold.clamp(1, 8)),
        }
    }

    /// Page `i`'s bits as of the latest recorded epoch.
    fn aged(&self, i: usize) -> u8 {
        let age = self.epoch.wrapping_sub(self.stamps[i]);
        self.bits[i].checked_shl(age).unwrap_or(0)
    }

    /// Records a harvested epoch's dirty set (pages beyond guest RAM are ignored).
    pub fn record(&mut self, dirty: &[Pfn]) {
        if self.epoch == u32::MAX {
            // Once in 2^32 epochs: forget everything rather than misread old stamps.
            self.bits.fill(0);
            self.stamps.fill(0);
            self.epoch = 0;
        }
        self.epoch += 1;
        for &p in dirty {
            let Some(i) = usize::try_from(p).ok().filter(|&i| i < self.bits.len()) else {
                continue;
            };
            self.bits[i] = self.aged(i) | 1;
            self.stamps[i] = self.epoch;
        }
    }

    /// Whether page `pfn` is hot.
    #[must_use]
    pub fn is_hot(&self, pfn: Pfn) -> bool {
        usize::try_from(pfn)
            .ok()
            .filter(|&i| i < self.bits.len())
            .is_some_and(|i| self.hot[usize::from(self.aged(i))])
    }
}

/// Most hot pages one stun copies (2 MiB): the copy is the stun's largest part when the
/// guest's CPU does it, so a larger pool serves copy-on-write faults instead of lengthening
/// the stun.
pub const MAX_COPIED_IN_STUN: usize = 512;

/// A bounded pool of page-sized stun buffers, by index.
#[derive(Clone, Debug)]
pub struct StunPool {
    free: Vec<usize>,
    size: usize,
}

impl StunPool {
    /// A pool of `size` buffers, all free.
    #[must_use]
    pub fn new(size: usize) -> Self {
        Self {
            free: (0..size).rev().collect(),
            size,
        }
    }

    fn take(&mut self) -> Option<usize> {
        self.free.pop()
    }

    fn give_back(&mut self, n: usize) {
        debug_assert!(n < self.size && !self.free.contains(&n));
        self.free.push(n);
    }

    /// Buffers free now.
    #[must_use]
    pub fn free(&self) -> usize {
        self.free.len()
    }

    /// Buffers in all.
    #[must_use]
    pub fn size(&self) -> usize {
        self.size
    }
}

/// Counts for the epoch report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LazyStats {
    /// Hot pages copied during the stun.
    pub copied_in_stun: u64,
    /// Cold pages left in guest memory, write-protected.
    pub deferred: u64,
    /// Cold pages copied by a write fault before being sent.
    pub copied_on_write: u64,
    /// Pages that had to be sent from a write fault because the pool was empty.
    pub sent_on_fault: u64,
    /// Hot pages that found no stun buffer and were deferred instead.
    pub hot_without_buffer: u64,
    /// Hot pages copied into their buffer after the stun, before the guest wrote them.
    pub copied_after_stun: u64,
}

/// One epoch's lazy transmission.
///
/// The pages are kept in a vector in page order (a stun plans hundreds of pages: building a
/// vector costs a push each, where a tree cost an allocation and a rebalancing each, most of
/// the stun's planning time under emulation); a page is looked up by binary search, and the
/// sender walks them in order from a cursor.
#[derive(Debug)]
pub struct LazyEpoch {
    /// Every page of the epoch, ascending, with where its contents are (`None` once sent).
    pages: Vec<(Pfn, Option<Source>)>,
    /// Every page before this index is sent.
    cursor: usize,
    /// Pages not yet sent.
    left: usize,
    /// The hot pages whose copy was left for after the stun, ascending.
    hot: Vec<Pfn>,
    /// Every page of `hot` before this index is copied, written or sent.
    hot_cursor: usize,
    /// Counts.
    pub stats: LazyStats,
}

/// The stun's plan: which pages to copy now, which to write-protect.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StunPlan {
    /// Copy page `pfn` into buffer `n` now (during the stun).
    pub copy: Vec<(Pfn, usize)>,
    /// Write-protect these pages before resuming the guest.
    pub protect: Vec<Pfn>,
}

/// `pages` ascending, each once (a copy only if they are not so already).
fn ascending(pages: &[Pfn]) -> alloc::borrow::Cow<'_, [Pfn]> {
    if pages.windows(2).all(|w| w[0] < w[1]) {
        return alloc::borrow::Cow::Borrowed(pages);
    }
    let mut sorted = pages.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    alloc::borrow::Cow::Owned(sorted)
}

impl LazyEpoch {
    fn with_pages(pages: Vec<(Pfn, Option<Source>)>) -> Self {
        Self {
            left: pages.len(),
            pages,
            cursor: 0,
            hot: Vec::new(),
            hot_cursor: 0,
            stats: LazyStats::default(),
        }
    }

    /// Plans the epoch whose dirty set is `dirty`: hot pages into stun buffers while they last
    /// (at most [`MAX_COPIED_IN_STUN`]), everything else write-protected for lazy sending.
    /// Duplicate page numbers count once.
    /// With `hot_later` (a CPU beside the guest copies them), hot pages are write-protected
    /// too, each with its buffer set aside ([`Source::Reserved`]), and the stun copies nothing.
    pub fn plan(
        dirty: &[Pfn],
        history: &History,
        pool: &mut StunPool,
        hot_later: bool,
    ) -> (Self, StunPlan) {
        let dirty = ascending(dirty);
        let mut stats = LazyStats::default();
        // Sized up front: no reallocation (nor allocator call) inside the stun.
        let mut plan = StunPlan {
            copy: Vec::with_capacity(if hot_later {
                0
            } else {
                pool.free().min(dirty.len()).min(MAX_COPIED_IN_STUN)
            }),
            protect: Vec::with_capacity(dirty.len()),
        };
        let mut hot = Vec::with_capacity(if hot_later {
            pool.free().min(dirty.len())
        } else {
            0
        });
        let pages = dirty
            .iter()
            .map(|&pfn| {
                let room = hot_later || plan.copy.len() < MAX_COPIED_IN_STUN;
                let source = match (room && history.is_hot(pfn)).then(|| pool.take()) {
                    Some(Some(n)) if hot_later => {
                        plan.protect.push(pfn);
                        hot.push(pfn);
                        Source::Reserved(n)
                    }
                    Some(Some(n)) => {
                        plan.copy.push((pfn, n));
                        stats.copied_in_stun += 1;
                        Source::Buffer(n)
                    }
                    hot => {
                        if hot.is_some() {
                            stats.hot_without_buffer += 1;
                        }
                        plan.protect.push(pfn);
                        stats.deferred += 1;
                        Source::Guest
                    }
                };
                (pfn, Some(source))
            })
            .collect();
        let mut epoch = Self::with_pages(pages);
        epoch.stats = stats;
        epoch.hot = hot;
        (epoch, plan)
    }

    /// The next hot page whose copy was left for after the stun and that is still in guest
    /// memory, protected, with its buffer: copy it there, then call
    /// [`LazyEpoch::hot_copied`] and lift its protection.
    pub fn next_hot_copy(&mut self) -> Option<(Pfn, usize)> {
        while let Some(&pfn) = self.hot.get(self.hot_cursor) {
            if let Some(Some(Source::Reserved(n))) = self.unsent(pfn).copied() {
                return Some((pfn, n));
            }
            self.hot_cursor += 1;
        }
        None
    }

    /// Hot page `pfn` ([`LazyEpoch::next_hot_copy`]) is in its buffer now: sent from there.
    pub fn hot_copied(&mut self, pfn: Pfn) {
        if let Some(source) = self.unsent(pfn)
            && let Some(Source::Reserved(n)) = *source
        {
            *source = Some(Source::Buffer(n));
            self.stats.copied_after_stun += 1;
        }
    }

    /// Where page `pfn`'s entry is, if the epoch has it and it is not sent yet.
    fn unsent(&mut self, pfn: Pfn) -> Option<&mut Option<Source>> {
        let i = self.pages.binary_search_by_key(&pfn, |&(p, _)| p).ok()?;
        let entry = &mut self.pages[i].1;
        entry.is_some().then_some(entry)
    }

    /// A guest write faulted on `pfn` (write-protected at the stun).
    pub fn on_write(&mut self, pfn: Pfn, pool: &mut StunPool) -> WriteVerdict {
        let Some(source) = self.unsent(pfn) else {
            return WriteVerdict::Proceed;
        };
        let reserved = match *source {
            Some(Source::Guest) => None,
            Some(Source::Reserved(n)) => Some(n),
            _ => return WriteVerdict::Proceed,
        };
        match reserved.or_else(|| pool.take()) {
            Some(n) => {
                *source = Some(Source::Buffer(n));
                self.stats.copied_on_write += 1;
                WriteVerdict::CopyTo(n)
            }
            None => {
                self.stats.sent_on_fault += 1;
                WriteVerdict::SendNow
            }
        }
    }

    /// The next page to send and where to read it; the caller sends it, then calls
    /// [`LazyEpoch::sent`].
    #[must_use]
    pub fn next(&self) -> Option<(Pfn, Source)> {
        self.pages[self.cursor..]
            .iter()
            .find_map(|&(pfn, source)| Some((pfn, source?)))
    }

    /// Page `pfn` went out (from the sender, or from a [`WriteVerdict::SendNow`] fault): its
    /// buffer returns to the pool. Returns whether it was still write-protected (the caller
    /// lifts the protection).
    pub fn sent(&mut self, pfn: Pfn, pool: &mut StunPool) -> bool {
        let Some(source) = self.unsent(pfn).and_then(Option::take) else {
            return false;
        };
        self.left -= 1;
        while self
            .pages
            .get(self.cursor)
            .is_some_and(|(_, s)| s.is_none())
        {
            self.cursor += 1;
        }
        match source {
            Source::Buffer(n) => {
                pool.give_back(n);
                false
            }
            Source::Reserved(n) => {
                pool.give_back(n);
                true
            }
            Source::Guest => true,
            Source::Live => false,
        }
    }

    /// A pre-copy round of `pages` (ascending or not; duplicates count once), all read live
    /// from guest memory ([`Source::Live`]): nothing is copied or protected.
    #[must_use]
    pub fn live(pages: &[Pfn]) -> Self {
        let pages = ascending(pages)
            .iter()
            .map(|&pfn| (pfn, Some(Source::Live)))
            .collect();
        Self::with_pages(pages)
    }

    /// Whether every page went out.
    #[must_use]
    pub fn done(&self) -> bool {
        self.left == 0
    }
}

#[cfg(test)]
mod tests;
