// SPDX-License-Identifier: MIT OR Apache-2.0
//! Guest memory as the pair's state machines see it: the primary's [`GuestRam`] (page
//! contents and EPT/NPT write protection) and the backup's [`PageStore`] (its copy).

use castor_ft::pair::primary::GuestRam;
use castor_ft::stream::{PAGE_SIZE, PageBuf, PageStore};

use crate::mm::kmap::IdentityTables;
use crate::mm::pagetable::{Format, PageTable};
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

    fn protect_many(&mut self, gfns: &[u64]) {
        self.0.write_protect_many(gfns);
    }
}

/// The primary's guest memory as the checkpoint pipeline reaches it from another CPU while
/// the guest runs ([`super::primary`]'s pipeline). It only reads pages the guest cannot write
/// (they are write-protected until sent) and lifts protections, with an atomic OR that keeps
/// the flags the guest's page walks set meanwhile
/// ([`PageTable::grant_write_atomic`](crate::mm::pagetable::PageTable::grant_write_atomic)).
/// It never adds one: that needs a TLB flush on the guest's CPU. Every caller holds the
/// pipeline's lock, as the guest's CPU does for its own changes to the table.
pub struct SharedRam<F: Format> {
    host_base: u64,
    size: u64,
    table: PageTable<F, IdentityTables>,
}

impl<F: Format> SharedRam<F> {
    /// The view of `mem`, which must outlive it and stay mapped as it is.
    pub fn of(mem: &GuestMemory<F>) -> Self {
        Self {
            host_base: mem.host_base(),
            size: mem.size(),
            table: PageTable::from_root(mem.table_root(), IdentityTables),
        }
    }

    fn gpa(&self, gfn: u64) -> Option<u64> {
        gfn.checked_mul(PAGE_SIZE as u64)
            .filter(|&gpa| gpa < self.size)
    }
}

impl<F: Format> GuestRam for SharedRam<F> {
    fn page(&self, gfn: u64) -> Option<&PageBuf> {
        let gpa = self.gpa(gfn)?;
        // SAFETY: the page lies inside the guest's RAM (identity mapped host memory that the
        // guest memory this view was made of keeps allocated). The pipeline reads only pages the
        // guest cannot write meanwhile (write-protected since the stun and flushed from its
        // TLB), or pre-copy pages read live, which the dirty log sends again if they change.
        Some(unsafe { &*((self.host_base + gpa) as *const PageBuf) })
    }

    fn set_protected(&mut self, gfn: u64, protected: bool) {
        match (protected, self.gpa(gfn)) {
            (false, Some(gpa)) => {
                let _ = self.table.grant_write_atomic(gpa, 1);
            }
            (false, None) => {}
            (true, _) => log::error!(
                "ft: primary: the pipeline was asked to protect page {gfn:#x}; only the \
                 guest's CPU can (a TLB flush must follow)"
            ),
        }
    }

    fn is_protected(&self, gfn: u64) -> bool {
        self.gpa(gfn)
            .and_then(|gpa| self.table.translate(gpa))
            .is_some_and(|t| !t.attrs.write)
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
