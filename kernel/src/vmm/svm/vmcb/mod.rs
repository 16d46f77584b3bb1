// SPDX-License-Identifier: MIT OR Apache-2.0
//! The virtual machine control block (AMD64 APM Vol. 2, appendix B "Layout of VMCB": Table B-1
//! control area, Table B-2 state save area) and the encodings of what goes in and comes out of
//! it: intercept bits, exit codes (appendix C "SVM Intercept Exit Codes"), event injection
//! (15.20), IOIO and nested-page-fault exit information (15.10.2, 15.25.6), and the MSR and I/O
//! permission maps (15.10, 15.11).
//!
//! The VMCB is one 4 KiB page: the control area at 0x000-0x3FF, the state save area from 0x400.
//! Every field here carries its offset from the start of the VMCB in a `// +0x...` comment
//! (Table B-2 numbers the save area from 0x000; add 0x400), and a unit test checks each one with
//! `offset_of!`. Reserved ranges must stay zero (APM: "SBZ"), so they are private to this module.
//!
//! Fields Castor does not use yet (AVIC, SEV, LBR virtualization, CET) are laid out but have no
//! helpers. QEMU 7.2's TCG implementation of SVM has no next-RIP saving (NRIPS), no VMCB clean
//! bits and no decode assists: [`ControlArea::next_rip`] reads 0 there and the clean bits must
//! stay 0.
//!
//! One file per part: `control` (control area), `intercept` (its intercept words), `save`
//! (state save area, segments), `exit` (exit codes and exit information), `event` (event
//! injection), `permission` (MSR and I/O permission maps); all re-exported here.

use core::fmt;

mod control;
mod event;
mod exit;
mod intercept;
mod permission;
mod save;

pub use control::*;
pub use event::*;
pub use exit::*;
pub use intercept::*;
pub use permission::*;
pub use save::*;

/// A virtual machine control block: one 4 KiB aligned page (APM Vol. 2, appendix B).
#[repr(C, align(4096))]
pub struct Vmcb {
    /// Control area (0x000-0x3FF).
    pub control: ControlArea, // +0x000
    /// State save area (from 0x400).
    pub save: SaveArea, // +0x400
    pub(super) _reserved_6e8: [u8; 0x1000 - 0x6E8], // +0x6E8 (later save-area fields: LBR stack, IBS)
}

const _: () = assert!(core::mem::size_of::<ControlArea>() == 0x400);
const _: () = assert!(core::mem::size_of::<SaveArea>() == 0x2E8);
const _: () = assert!(core::mem::offset_of!(Vmcb, save) == 0x400);
const _: () = assert!(core::mem::size_of::<Vmcb>() == 0x1000);
const _: () = assert!(core::mem::align_of::<Vmcb>() == 0x1000);

impl Vmcb {
    /// An all-zero VMCB (no intercepts, no state): the starting point before setup.
    pub const fn zeroed() -> Self {
        // SAFETY: every field is an integer, an array of integers, or a `repr(transparent)`
        // wrapper of one (bitflags, ExitCode, EventInfo, TlbControl), for which all-zero bytes
        // are a valid value.
        unsafe { core::mem::zeroed() }
    }
}

impl Default for Vmcb {
    fn default() -> Self {
        Self::zeroed()
    }
}

impl fmt::Debug for Vmcb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vmcb")
            .field("control", &self.control)
            .field("save", &self.save)
            .finish()
    }
}

#[cfg(test)]
mod tests;
