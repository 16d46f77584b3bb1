// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the primary puts pages on the stream with: the copy-on-write stun buffers and their
//! pool, the page encoder, the cache of sent copies deltas are made against, and the
//! whole-memory digest.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::copies::{CopyStats, SentCopies};
use super::{GuestRam, PrimaryError, Sending};
use crate::epoch::lazy::{Source, StunPool};
use crate::pair::digest::TrackedDigest;
use crate::stream::{PAGE_SIZE, PageBuf, PageEncoder, PageEncoding};

/// The primary's page machinery (everything sending a page touches but the epoch itself).
pub(super) struct Pages {
    /// Stun buffers: copies of pages taken at the stun or before a guest write.
    buffers: Vec<Box<PageBuf>>,
    /// Which stun buffers are free.
    pub(super) pool: StunPool,
    encoder: PageEncoder,
    /// The copies the backup holds of recently sent pages.
    copies: Option<SentCopies>,
    /// Whole-memory digest, when digests are on.
    pub(super) digest: Option<TrackedDigest>,
    /// Pages stay protected once sent: protection tracks writes ([`super::PrimaryConfig`]).
    track_writes: bool,
}

impl Pages {
    /// `stun_buffers` buffers, a cache of up to `delta_cache` sent copies for a guest of
    /// `ram_pages` pages, and a digest over them if `digests`; with `track_writes`, sent pages
    /// keep their protection.
    ///
    /// # Errors
    /// [`PrimaryError::Setup`] if the buffers cannot be allocated.
    pub(super) fn new(
        stun_buffers: usize,
        ram_pages: usize,
        delta_cache: usize,
        digests: bool,
        track_writes: bool,
    ) -> Result<Self, PrimaryError> {
        let buffers = (0..stun_buffers)
            .map(|_| zeroed_page())
            .collect::<Option<Vec<_>>>()
            .ok_or(PrimaryError::Setup("no memory for the stun buffers"))?;
        Ok(Self {
            buffers,
            pool: StunPool::new(stun_buffers),
            encoder: PageEncoder::new(),
            copies: SentCopies::new(ram_pages, delta_cache),
            digest: digests.then(|| TrackedDigest::new(ram_pages)),
            track_writes,
        })
    }

    /// Copies guest page `gfn` into stun buffer `n`.
    ///
    /// # Errors
    /// [`PrimaryError::NoSuchPage`] if `gfn` is not guest RAM (or `n` not a buffer).
    pub(super) fn copy_in(
        &mut self,
        ram: &dyn GuestRam,
        gfn: u64,
        n: usize,
    ) -> Result<(), PrimaryError> {
        let (Some(page), Some(buf)) = (ram.page(gfn), self.buffers.get_mut(n)) else {
            return Err(PrimaryError::NoSuchPage(gfn));
        };
        buf.copy_from_slice(page);
        Ok(())
    }

    /// Puts page `gfn` of the epoch being sent on the stream from `source`, and makes it
    /// writable again once the epoch needs it no more (unless protection tracks writes: a page
    /// still read from guest memory was not written since the stun, so it stays protected).
    ///
    /// # Errors
    /// [`PrimaryError::NoSuchPage`], or a stream error.
    pub(super) fn send(
        &mut self,
        sending: &mut Sending,
        ram: &mut dyn GuestRam,
        gfn: u64,
        source: Source,
    ) -> Result<PageEncoding, PrimaryError> {
        sending.write_records()?;
        let page = match source {
            Source::Buffer(n) => self.buffers.get(n).map(|b| &**b),
            Source::Guest | Source::Reserved(_) | Source::Live => ram.page(gfn),
        }
        .ok_or(PrimaryError::NoSuchPage(gfn))?;
        // The full copy sends every page once: nothing to make deltas against, and caching it
        // would only churn the cache.
        let copies = self.copies.as_mut().filter(|_| !sending.full);
        let encoding = match copies {
            Some(copies) => {
                let encoding =
                    sending
                        .writer
                        .encode_page(&mut self.encoder, gfn, page, copies.base(gfn))?;
                copies.stats.deltas += u64::from(encoding == PageEncoding::Delta);
                copies.remember(gfn, page);
                encoding
            }
            None => sending
                .writer
                .encode_page(&mut self.encoder, gfn, page, None)?,
        };
        if let Some(d) = &mut self.digest {
            d.update(gfn, page);
        }
        sending.pages += 1;
        if sending.lazy.sent(gfn, &mut self.pool) && !self.track_writes {
            ram.set_protected(gfn, false);
        }
        Ok(encoding)
    }

    /// How the cache of sent copies served so far, and the copies it holds.
    pub(super) fn copy_stats(&self) -> (CopyStats, usize) {
        self.copies
            .as_ref()
            .map_or((CopyStats::default(), 0), |c| (c.stats, c.len()))
    }
}

/// A zeroed page, or `None` when memory is short (no panic in the kernel).
pub(super) fn zeroed_page() -> Option<Box<PageBuf>> {
    let mut v = Vec::new();
    v.try_reserve_exact(PAGE_SIZE).ok()?;
    v.resize(PAGE_SIZE, 0u8);
    v.into_boxed_slice().try_into().ok()
}
