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
//! (bit 26), which is correct but flushes more (SDM Vol. 3C, 32.3, INVEPT).

use super::caps::VmxCaps;
use crate::arch::x86_64::instr::vmx::{self as vmxi, VmFail};

const SINGLE_CONTEXT: u64 = 1;
const ALL_CONTEXT: u64 = 2;
const CAP_INVEPT: u64 = 1 << 20;
const CAP_SINGLE: u64 = 1 << 25;
const CAP_ALL: u64 = 1 << 26;

fn invept(caps: &VmxCaps, eptp: u64) -> Result<(), VmFail> {
    if caps.ept_vpid & CAP_INVEPT == 0 {
        // Without INVEPT the CPU cannot cache guest-physical mappings across entries in a way
        // software could flush; nothing to do (SDM Vol. 3C, 29.4.3.3).
        return Ok(());
    }
    let kind = if caps.ept_vpid & CAP_SINGLE != 0 {
        SINGLE_CONTEXT
    } else if caps.ept_vpid & CAP_ALL != 0 {
        ALL_CONTEXT
    } else {
        return Err(VmFail::Invalid);
    };
    // SAFETY: the CPU is in VMX operation (callers hold VMX capabilities read after VMXON) and
    // `kind` is a type the CPU reports as supported.
    unsafe { vmxi::invept(kind, eptp) }
}

/// Rule 2: before the first VM entry with a newly built EPT.
pub fn new_ept(caps: &VmxCaps, eptp: u64) -> Result<(), VmFail> {
    invept(caps, eptp)
}

/// Rule 3: after reducing rights or clearing accessed/dirty flags in the EPT of `eptp`, on each
/// CPU that may run the guest, before it does.
pub fn after_ept_change(caps: &VmxCaps, eptp: u64) -> Result<(), VmFail> {
    invept(caps, eptp)
}
