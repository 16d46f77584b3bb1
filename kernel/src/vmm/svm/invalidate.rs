// SPDX-License-Identifier: MIT OR Apache-2.0
//! Every TLB flush of the SVM back end, in one place (AMD64 APM Vol. 2, 15.16 "TLB Control"
//! and 15.25.10 "TLB Management with Nested Paging").
//!
//! The emulators flush on every VMRUN, so no test catches a missing flush: the rules are
//! reasoned from the APM.
//!
//! - Guest translations (guest-virtual and nested) are tagged with the VMCB's ASID; host ones
//!   with ASID 0. Every Castor guest on a CPU uses ASID 1, so a new guest could find the
//!   previous guest's translations under the same tag: its first VMRUN flushes ([`new_guest`]).
//! - After reducing rights in, or clearing accessed/dirty bits of, the nested page table, stale
//!   translations would keep the old rights or not set the bits again: the next VMRUN flushes
//!   ([`after_npt_change`]). Raising rights needs no flush of its own: a write through a
//!   stale read-only entry takes a nested page fault, which the primary recognises as
//!   spurious and resumes; since the APM (15.25.10) does not promise that the fault drops the
//!   stale entry, a page that faults spuriously twice before a flush gets one
//!   (`castor_ft::pair::primary::StaleTranslations`). `GuestMemory` raises a flush request for each such change (write
//!   protection, dirty-page harvests) and `Vcpu::flush_nested_tlb` turns it into this request.
//! - A flush is requested through the VMCB's TLB_CONTROL field, applied by the next VMRUN and
//!   cleared by the back end afterwards ([`done`]): 3 (this guest's ASID) when the CPU offers
//!   flush-by-ASID (CPUID Fn8000_000A EDX bit 6), else 1 (every ASID).

use super::caps::SvmCaps;
use super::vmcb::{TlbControl, Vmcb};

fn request(vmcb: &mut Vmcb, caps: &SvmCaps) {
    vmcb.control.tlb_control = if caps.has_flush_by_asid() {
        TlbControl::FLUSH_GUEST
    } else {
        TlbControl::FLUSH_ALL
    };
}

/// Before a new guest's first VMRUN.
pub fn new_guest(vmcb: &mut Vmcb, caps: &SvmCaps) {
    request(vmcb, caps);
}

/// After reducing rights in the nested page table or clearing accessed/dirty bits.
pub fn after_npt_change(vmcb: &mut Vmcb, caps: &SvmCaps) {
    request(vmcb, caps);
}

/// After a VMRUN: the requested flush has happened.
pub fn done(vmcb: &mut Vmcb) {
    vmcb.control.tlb_control = TlbControl::DO_NOTHING;
}
