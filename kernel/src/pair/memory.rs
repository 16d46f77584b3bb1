// SPDX-License-Identifier: MIT OR Apache-2.0
//! Guest memory as the pair's state machines see it: the primary's [`GuestRam`] (page
//! contents and EPT/NPT write protection) and the backup's [`PageStore`] (its copy).

use castor_ft::pair::primary::GuestRam;
use castor_ft::stream::{PageBuf, PageStore};

use crate::mm::pagetable::Format;
use crate::vmm::guest_mem::GuestMemory;

/// The primary's guest memory. Protection changes leave the nested TLB to be flushed by the
/// caller before the guest runs again.
pub struct PrimaryRam<'a, F: Format>(pub &'a mut GuestMemory<F>);

impl<F: Format> GuestRam for PrimaryRam<'_, F> {
    fn page(&self, gfn: u64) -> Option<&PageBuf> {
        self.0.page(gfn)
    }

    fn set_protected(&mut self, gfn: u64, protected: bool) {
        // False only when the page already was as asked (the state machine protects each
        // page once per epoch and lifts it once).
        let _changed = if protected {
            self.0.write_protect(gfn)
        } else {
            self.0.unprotect(gfn)
        };
    }

    fn is_protected(&self, gfn: u64) -> bool {
        self.0.is_write_protected(gfn)
    }
}

/// The backup's copy of guest memory: every page exists (guest RAM is allocated whole).
pub struct BackupRam<'a, F: Format>(pub &'a mut GuestMemory<F>);

impl<F: Format> PageStore for BackupRam<'_, F> {
    fn page_mut(&mut self, gfn: u64) -> Option<&mut PageBuf> {
        self.0.page_mut(gfn)
    }

    fn insert_page(&mut self, gfn: u64) -> Option<&mut PageBuf> {
        self.0.page_mut(gfn)
    }
}
