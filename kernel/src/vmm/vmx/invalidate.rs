// SPDX-License-Identifier: MIT OR Apache-2.0
//! Every TLB invalidation of the VT-x back end, in one place.
//!
//! Both emulators flush all translations on every VM entry and exit, so no test can catch a
//! missing invalidation here; the rules below are reasoned from the SDM (Vol. 3C, 29.4
//! "Caching Translation Information") and every caller must go through these functions.
//!
//! What the processor may cache (29.4.1): *linear* mappings (guest paging only), *guest-physical*
//! mappings (EPT only, tagged with the EPT PML4 address, "EP4TA") and *combined* mappings
//! (guest paging and EPT, tagged with VPID and EP4TA).
//!
//! 1. Castor does not enable VPID, so every VM entry and VM exit invalidates the linear and
//!    combined mappings of VPID 0000H (29.4.3.1): guest-virtual translations never outlive an
//!    exit and need no INVVPID.
//! 2. Guest-physical mappings are *not* invalidated by VM entries and exits. They are tagged
//!    with the EP4TA only, and frames are recycled: a new EPT may get a root frame that an
//!    earlier, freed EPT used. So before a new EPTP is first used, its EP4TA is invalidated
//!    ([`new_ept`]).
//! 3. When software *reduces* rights in an EPT entry (unmap, write-protect for copy-on-write
//!    checkpoints) or clears accessed/dirty flags that a harvest must see set again, stale
//!    guest-physical mappings would let the guest keep the old rights or skip setting the flag
//!    (29.4.3.3). Such changes must be followed by [`after_ept_change`] before the guest runs
//!    again — on every CPU that ran it, since INVEPT only affects the executing CPU. The same
//!    holds for page-modification logging (29.3.6): it logs a page when the processor sets its
//!    dirty flag, which a write through a translation cached with the flag set does not do, so
//!    pages whose flags were cleared after draining the log are logged again only after this
//!    invalidation. `GuestMemory` raises a flush request for each such change; the vCPU
//!    (`Vcpu::flush_nested_tlb`) performs the INVEPT just before its next VM entry, on the CPU
//!    that makes it, and fails that entry if the INVEPT fails.
//! 4. Raising rights needs no invalidation: an access that hits a stale, stricter entry causes
//!    an EPT violation, which invalidates the mappings used by that access (29.4.3.1), and the
//!    guest retries.
//!
//! Single-context INVEPT is used when offered (IA32_VMX_EPT_VPID_CAP bit 25), else all-context
//! (bit 26), which is correct but flushes more. INVEPT with a type the CPU does not report
//! fails (VMfailValid; SDM Vol. 3C, VMX Instruction Reference, INVEPT; the capability bits:
//! Vol. 3D, A.10 "VPID and EPT Capabilities"), and a CPU that caches guest-physical mappings
//! but offers no INVEPT type cannot follow rules 2 and 3 at all, so the type is chosen once,
//! by [`super::invept::invept_type`], when the vCPU is created, and a CPU without one is
//! refused then.

use super::invept::InveptType;
use crate::arch::x86_64::instr::vmx::{self as vmxi, VmFail};

fn invept(kind: InveptType, eptp: u64) -> Result<(), VmFail> {
    // SAFETY: the CPU is in VMX operation (a vCPU exists) and `kind` came from `invept_type`
    // for this CPU's capabilities, so the CPU supports it.
    unsafe { vmxi::invept(kind as u64, eptp) }
}

/// Rule 2: before the first VM entry with a newly built EPT.
pub fn new_ept(kind: InveptType, eptp: u64) -> Result<(), VmFail> {
    invept(kind, eptp)
}

/// Rule 3: after reducing rights or clearing accessed/dirty flags in the EPT of `eptp`, on each
/// CPU that may run the guest, before it does.
pub fn after_ept_change(kind: InveptType, eptp: u64) -> Result<(), VmFail> {
    invept(kind, eptp)
}
