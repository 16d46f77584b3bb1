// SPDX-License-Identifier: MIT OR Apache-2.0
//! Spurious write faults on the primary: when resuming is enough and when to flush first.
//!
//! The primary lifts write protections without flushing the nested TLB, so a write through a
//! translation cached while the page was read-only faults although the nested table now lets
//! it through ([`super::FaultOutcome::Spurious`]; Intel SDM Vol. 3C,
//! 29.4.3.3: "an EPT violation that would not otherwise occur"). Resuming is enough where the
//! fault itself drops the stale translation: on VT-x "an EPT violation invalidates any
//! guest-physical mappings (associated with the current EP4TA) that would be used to translate
//! the guest-physical address that caused the EPT violation" (SDM Vol. 3C, 29.4.3.1). The AMD
//! APM (Vol. 2, 15.25.10 "TLB Management with Nested Paging") states no such rule for a
//! nested page fault, so Castor does not rely on it: a page that faults spuriously a
//! second time before the next flush gets one (on VT-x this never happens). That bounds the
//! spurious faults per page to two between flushes, so the guest always makes progress.

use alloc::collections::BTreeSet;

/// Pages that faulted spuriously since the last nested TLB flush. The caller asks it at each
/// spurious fault ([`StaleTranslations::on_spurious`]) and tells it of every flush.
#[derive(Debug, Default)]
pub struct StaleTranslations {
    seen: BTreeSet<u64>,
}

impl StaleTranslations {
    /// A spurious write fault on page `gfn`: whether to flush the nested TLB before resuming
    /// (the page already faulted spuriously since the last flush, so the fault did not drop
    /// its stale translation).
    pub fn on_spurious(&mut self, gfn: u64) -> bool {
        if self.seen.insert(gfn) {
            return false;
        }
        self.seen.clear();
        true
    }

    /// The nested TLB was flushed: no translation is stale any more.
    pub fn flushed(&mut self) {
        self.seen.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_faulting_spuriously_twice_is_flushed_once() {
        let mut stale = StaleTranslations::default();
        // VT-x: each fault drops the translation, so each page faults once.
        assert!(!stale.on_spurious(3));
        assert!(!stale.on_spurious(4));
        // A CPU that kept the stale translation: the same page again.
        assert!(
            stale.on_spurious(3),
            "second spurious fault on page 3 flushes"
        );
        assert!(
            !stale.on_spurious(3),
            "after the flush, a new stale translation"
        );
        stale.flushed();
        assert!(!stale.on_spurious(3));
    }
}
