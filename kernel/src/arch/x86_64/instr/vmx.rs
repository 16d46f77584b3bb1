// SPDX-License-Identifier: MIT OR Apache-2.0
//! VMX instructions (Intel SDM Vol. 3C, chapter 32 "VMX Instruction Reference").
//!
//! Every VMX instruction reports failure in RFLAGS (SDM Vol. 3C, 32.2 "Conventions"):
//! CF=1 is VMfailInvalid (no current VMCS), ZF=1 is VMfailValid (the reason is in the
//! VM-instruction error field of the current VMCS). Each wrapper turns that into [`VmFail`].

use core::arch::asm;

/// How a VMX instruction failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmFail {
    /// VMfailInvalid: there is no current VMCS (or the operand was invalid outside one).
    Invalid,
    /// VMfailValid: read the VM-instruction error field (SDM Vol. 3C, 32.4) for the reason.
    Valid,
}

/// Decodes RFLAGS after a VMX instruction.
#[inline(always)]
fn check(rflags: u64) -> Result<(), VmFail> {
    if rflags & 1 != 0 {
        Err(VmFail::Invalid)
    } else if rflags & (1 << 6) != 0 {
        Err(VmFail::Valid)
    } else {
        Ok(())
    }
}

/// Enters VMX root operation with the VMXON region at `phys`.
///
/// # Safety
/// CR4.VMXE must be set, CR0/CR4 must satisfy the VMX fixed-bit MSRs, IA32_FEATURE_CONTROL must
/// allow VMX, and `phys` must be a 4 KiB aligned frame owned by this CPU, holding the VMCS
/// revision id, that stays allocated until VMXOFF.
pub unsafe fn vmxon(phys: u64) -> Result<(), VmFail> {
    let rflags: u64;
    // SAFETY: the caller meets the VMXON preconditions listed above.
    unsafe {
        asm!("vmxon [{p}]", "pushfq", "pop {f}", p = in(reg) &phys, f = lateout(reg) rflags,
             options(nostack))
    };
    check(rflags)
}

/// Leaves VMX operation.
///
/// # Safety
/// No VMCS of this CPU may be used afterwards until the next VMXON.
pub unsafe fn vmxoff() -> Result<(), VmFail> {
    let rflags: u64;
    // SAFETY: the caller stops using VMX on this CPU.
    unsafe { asm!("vmxoff", "pushfq", "pop {f}", f = lateout(reg) rflags, options(nostack)) };
    check(rflags)
}

/// Clears the VMCS at `phys` (flushes its cached state to memory, marks it inactive and clear).
///
/// # Safety
/// `phys` must be a VMCS region (revision id written) owned by the caller.
pub unsafe fn vmclear(phys: u64) -> Result<(), VmFail> {
    let rflags: u64;
    // SAFETY: the caller owns the VMCS region.
    unsafe {
        asm!("vmclear [{p}]", "pushfq", "pop {f}", p = in(reg) &phys, f = lateout(reg) rflags,
             options(nostack))
    };
    check(rflags)
}

/// Makes the VMCS at `phys` current on this CPU.
///
/// # Safety
/// `phys` must be a VMCS region owned by the caller, not current on another CPU.
pub unsafe fn vmptrld(phys: u64) -> Result<(), VmFail> {
    let rflags: u64;
    // SAFETY: the caller owns the VMCS region.
    unsafe {
        asm!("vmptrld [{p}]", "pushfq", "pop {f}", p = in(reg) &phys, f = lateout(reg) rflags,
             options(nostack))
    };
    check(rflags)
}

/// Reads a field of the current VMCS.
///
/// # Safety
/// A VMCS must be current on this CPU (the typed accessors in `vmm::vmx::vmcs` guarantee it).
#[inline(always)]
pub unsafe fn vmread(field: u32) -> Result<u64, VmFail> {
    let (value, rflags): (u64, u64);
    // SAFETY: the caller guarantees a current VMCS; an unsupported field reports VMfailValid.
    unsafe {
        asm!("vmread {v}, {e}", "pushfq", "pop {f}", e = in(reg) u64::from(field),
             v = lateout(reg) value, f = lateout(reg) rflags, options(nostack))
    };
    check(rflags).map(|()| value)
}

/// Writes a field of the current VMCS.
///
/// # Safety
/// A VMCS must be current on this CPU and the value must not break the host's state (host-state
/// fields are what the CPU loads on every VM exit).
#[inline(always)]
pub unsafe fn vmwrite(field: u32, value: u64) -> Result<(), VmFail> {
    let rflags: u64;
    // SAFETY: the caller guarantees a current VMCS and a safe value.
    unsafe {
        asm!("vmwrite {e}, {v}", "pushfq", "pop {f}", e = in(reg) u64::from(field),
             v = in(reg) value, f = lateout(reg) rflags, options(nostack))
    };
    check(rflags)
}

/// INVEPT/INVVPID descriptor (SDM Vol. 3C, 32.3, INVEPT and INVVPID).
#[repr(C, align(16))]
struct Descriptor([u64; 2]);

/// Invalidates EPT-derived translations: `kind` 1 = single context (`eptp`), 2 = all contexts.
///
/// # Safety
/// The CPU must be in VMX operation and support the invalidation type (IA32_VMX_EPT_VPID_CAP).
pub unsafe fn invept(kind: u64, eptp: u64) -> Result<(), VmFail> {
    let desc = Descriptor([eptp, 0]);
    let rflags: u64;
    // SAFETY: the caller guarantees VMX operation and a supported type.
    unsafe {
        asm!("invept {k}, [{d}]", "pushfq", "pop {f}", k = in(reg) kind, d = in(reg) &desc,
             f = lateout(reg) rflags, options(nostack))
    };
    check(rflags)
}

/// Invalidates VPID-tagged translations: `kind` 1 = single context (`vpid`), 2 = all contexts.
///
/// # Safety
/// The CPU must be in VMX operation and support the invalidation type.
pub unsafe fn invvpid(kind: u64, vpid: u16) -> Result<(), VmFail> {
    let desc = Descriptor([u64::from(vpid), 0]);
    let rflags: u64;
    // SAFETY: the caller guarantees VMX operation and a supported type.
    unsafe {
        asm!("invvpid {k}, [{d}]", "pushfq", "pop {f}", k = in(reg) kind, d = in(reg) &desc,
             f = lateout(reg) rflags, options(nostack))
    };
    check(rflags)
}
