// SPDX-License-Identifier: MIT OR Apache-2.0
//! A complete, verified epoch, and applying its pages to the backup's copy of guest memory.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::collections::btree_map::Entry;
use alloc::vec::Vec;
use core::fmt;

use super::digest::Digest;
use super::page::{PageBuf, PageData, try_new_page};

/// One checkpoint epoch as received whole and verified by
/// [`EpochAssembler`](super::EpochAssembler): digest, record count and epoch numbers checked,
/// no duplicate vCPU, device or page, every frame inside guest RAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Epoch {
    /// Epoch number.
    pub number: u64,
    /// Guest time (TSC) at the checkpoint.
    pub guest_time: u64,
    /// vCPU state blobs by vCPU index.
    pub vcpus: BTreeMap<u32, Vec<u8>>,
    /// Device state blobs by device id.
    pub devices: BTreeMap<u32, Vec<u8>>,
    /// Page contents by guest frame.
    pub pages: BTreeMap<u64, PageData>,
    /// Frames the epoch's dirty-page lists named, strictly ascending.
    pub dirty_gfns: Vec<u64>,
    /// Records from `EpochBegin` up to, not including, `EpochEnd` (optional ones included).
    pub record_count: u32,
    /// The verified digest ([`super::digest`]).
    pub digest: Digest,
}

/// The backup's copy of guest memory, as seen by [`Epoch::apply_pages`].
pub trait PageStore {
    /// The copy of page `gfn`, or `None` if the backup holds none.
    fn page_mut(&mut self, gfn: u64) -> Option<&mut PageBuf>;

    /// Storage for page `gfn`, created if absent (its contents are then overwritten whole), or
    /// `None` if it cannot be created.
    fn insert_page(&mut self, gfn: u64) -> Option<&mut PageBuf>;
}

/// A sparse page store: frame number → page.
impl PageStore for BTreeMap<u64, Box<PageBuf>> {
    fn page_mut(&mut self, gfn: u64) -> Option<&mut PageBuf> {
        self.get_mut(&gfn).map(|page| &mut **page)
    }

    fn insert_page(&mut self, gfn: u64) -> Option<&mut PageBuf> {
        match self.entry(gfn) {
            Entry::Occupied(slot) => Some(&mut **slot.into_mut()),
            Entry::Vacant(slot) => Some(&mut **slot.insert(try_new_page()?)),
        }
    }
}

/// Why [`Epoch::apply_pages`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApplyError {
    /// A delta for a page the backup does not hold. Nothing was applied.
    MissingBase {
        /// The frame.
        gfn: u64,
    },
    /// The store could not create page storage. Pages before `gfn` were applied: the backup's
    /// memory no longer matches any epoch.
    NoStorage {
        /// The frame.
        gfn: u64,
    },
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingBase { gfn } => write!(
                f,
                "page delta for frame {gfn:#x}, which the backup does not hold; epoch not applied"
            ),
            Self::NoStorage { gfn } => {
                write!(f, "no storage for frame {gfn:#x}; epoch partially applied")
            }
        }
    }
}

impl core::error::Error for ApplyError {}

impl Epoch {
    /// Writes every page of the epoch into `store`. Checks first that every delta has a base,
    /// so a missing base leaves `store` untouched.
    pub fn apply_pages<P: PageStore + ?Sized>(&self, store: &mut P) -> Result<(), ApplyError> {
        for (&gfn, data) in &self.pages {
            if data.needs_base() && store.page_mut(gfn).is_none() {
                return Err(ApplyError::MissingBase { gfn });
            }
        }
        for (&gfn, data) in &self.pages {
            let page = if data.needs_base() {
                store.page_mut(gfn).ok_or(ApplyError::MissingBase { gfn })?
            } else {
                store
                    .insert_page(gfn)
                    .ok_or(ApplyError::NoStorage { gfn })?
            };
            data.apply(page);
        }
        Ok(())
    }
}
