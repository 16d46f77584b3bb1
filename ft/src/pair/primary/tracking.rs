// SPDX-License-Identifier: MIT OR Apache-2.0
//! Where the primary's dirty set comes from, chosen from what the processor offers. The pair
//! never runs "protected" without one: a CPU that sets no dirty flags in its nested tables
//! is tracked by write protection rather than replicating nothing.
//!
//! What each needs (and what the pair relies on besides):
//! - dirty flags in nested leaf entries: optional on VT-x (EPT accessed and dirty flags,
//!   `IA32_VMX_EPT_VPID_CAP` bit 21, Intel SDM Vol. 3C, 29.3.5; absent on Sandy and Ivy
//!   Bridge, and hidden by some L0 hypervisors), architectural with AMD-V nested paging (AMD
//!   APM Vol. 2, 15.25 "Nested Paging": nested entries use the long-mode format, whose
//!   accessed and dirty bits the walk sets, 5.4.2);
//! - a hardware log of dirtied pages: VT-x page-modification logging (SDM Vol. 3C, 29.3.6),
//!   which logs nothing without dirty flags; absent, the nested table is walked instead;
//! - write protection of single 4 KiB pages in the nested table: architectural with EPT and
//!   NPT alike, so [`DirtySource::Protection`] is always possible.

/// How the primary learns which pages the guest wrote in an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirtySource {
    /// The hardware log (PML), then the logged pages' dirty flags cleared: cost per dirty page.
    Log,
    /// A walk of the nested table's dirty flags: cost per page of guest RAM.
    Walk,
    /// No dirty flags: every page is write-protected at the stun and its first write faults
    /// ([`super::PrimaryConfig::track_writes`]): cost per first write.
    Protection,
}

impl DirtySource {
    /// The source for a processor whose nested tables get `dirty_flags` and whose vCPU has a
    /// hardware dirty `log` enabled.
    #[must_use]
    pub fn choose(dirty_flags: bool, log: bool) -> Self {
        match (dirty_flags, log) {
            (true, true) => Self::Log,
            (true, false) => Self::Walk,
            // A log without dirty flags logs nothing (SDM Vol. 3C, 29.3.6).
            (false, _) => Self::Protection,
        }
    }

    /// Whether the primary must track writes by protection
    /// ([`super::PrimaryConfig::track_writes`]).
    #[must_use]
    pub fn tracks_writes(self) -> bool {
        self == Self::Protection
    }

    /// How it is named on the console.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Log => "the hardware dirty log",
            Self::Walk => "nested dirty flags",
            Self::Protection => "write protection (no nested dirty flags)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_dirty_flags_writes_are_tracked_by_protection() {
        assert_eq!(DirtySource::choose(true, true), DirtySource::Log);
        assert_eq!(DirtySource::choose(true, false), DirtySource::Walk);
        for log in [false, true] {
            let source = DirtySource::choose(false, log);
            assert_eq!(source, DirtySource::Protection);
            assert!(source.tracks_writes());
        }
        assert!(!DirtySource::Walk.tracks_writes() && !DirtySource::Log.tracks_writes());
    }
}
