// SPDX-License-Identifier: MIT OR Apache-2.0
//! SVM instructions (AMD64 APM Vol. 3, "VMLOAD", "VMSAVE", "STGI", "CLGI", "INVLPGA";
//! VMRUN itself is in the back end's entry assembly, which must surround it with register
//! saves).

use core::arch::asm;

/// Loads FS, GS, TR, LDTR (with hidden state), KernelGsBase, STAR/LSTAR/CSTAR/SFMASK and
/// SYSENTER_* from the VMCB at `vmcb_phys` (APM Vol. 2, 15.5.2).
///
/// # Safety
/// `vmcb_phys` must be a 4 KiB aligned VMCB holding valid state for those registers (e.g. saved
/// by [`vmsave`] on this CPU, or a guest's initialized VMCB before VMRUN). Loading a guest's
/// values into the host is only safe if the host restores its own before using them (GS base
/// holds Castor's per-CPU pointer).
pub unsafe fn vmload(vmcb_phys: u64) {
    // SAFETY: the caller guarantees a valid VMCB and restores host state as needed.
    unsafe { asm!("vmload rax", in("rax") vmcb_phys, options(nostack, preserves_flags)) };
}

/// Stores the registers [`vmload`] loads into the VMCB at `vmcb_phys`.
///
/// # Safety
/// `vmcb_phys` must be a 4 KiB aligned page owned by the caller for that purpose.
pub unsafe fn vmsave(vmcb_phys: u64) {
    // SAFETY: the caller owns the page.
    unsafe { asm!("vmsave rax", in("rax") vmcb_phys, options(nostack, preserves_flags)) };
}

/// Sets the global interrupt flag.
///
/// # Safety
/// EFER.SVME must be set; interrupts, NMIs and SMIs may be taken afterwards.
pub unsafe fn stgi() {
    // SAFETY: the caller guarantees SVM is enabled and the host can take interrupts.
    unsafe { asm!("stgi", options(nomem, nostack)) };
}

/// Clears the global interrupt flag (no interrupts, NMIs or SMIs until [`stgi`]).
///
/// # Safety
/// EFER.SVME must be set.
pub unsafe fn clgi() {
    // SAFETY: the caller guarantees SVM is enabled.
    unsafe { asm!("clgi", options(nomem, nostack)) };
}

/// Invalidates the TLB mapping of guest-virtual `addr` in address space `asid`.
///
/// # Safety
/// EFER.SVME must be set.
pub unsafe fn invlpga(addr: u64, asid: u32) {
    // SAFETY: the caller guarantees SVM is enabled; INVLPGA only drops cached translations.
    unsafe {
        asm!("invlpga rax, ecx", in("rax") addr, in("ecx") asid, options(nostack, preserves_flags))
    };
}
