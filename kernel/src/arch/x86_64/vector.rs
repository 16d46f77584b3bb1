// SPDX-License-Identifier: MIT OR Apache-2.0
//! The x87/SSE registers: made usable for FXSAVE/FXRSTOR, saved and restored, and lent to host
//! code that wants SSE for a moment.
//!
//! Whose they are: between VM exits they hold the running guest's values, which neither the
//! VMCS nor the VMCB switches (`vmm::cpu_state::unswitched`). The kernel is built for a target
//! with no SSE code generation, so nothing it compiles touches them, except code run through
//! [`lend`], which saves them first and puts them back after: the guest finds its registers as
//! it left them, and sees nothing of what the host computed (SDM Vol. 1, 10.5 "FXSAVE and
//! FXRSTOR"; APM Vol. 5, FXSAVE).

use core::arch::asm;

use super::instr;

/// CR0.EM and CR0.TS: FXSAVE/FXRSTOR and SSE instructions raise #UD or #NM with either set
/// (SDM Vol. 2A, FXSAVE; Vol. 3A, 2.5).
const CR0_EM_TS: u64 = (1 << 2) | (1 << 3);
/// CR4.OSFXSR: without it SSE instructions raise #UD and FXSAVE/FXRSTOR may skip the XMM
/// registers and MXCSR (SDM Vol. 3A, 2.5; Vol. 2A, FXSAVE; APM Vol. 5, FXSAVE).
const CR4_OSFXSR: u64 = 1 << 9;

/// Bytes of an FXSAVE image.
pub const FX_LEN: usize = 512;

/// An FXSAVE image, aligned as FXSAVE/FXRSTOR require.
#[repr(C, align(16))]
pub struct FxImage(pub [u8; FX_LEN]);

/// Makes the x87/SSE unit usable on this CPU for good (CR4.OSFXSR set, CR0.EM and CR0.TS
/// clear), so that [`fxsave`], [`fxrstor`] and [`lend`] need no control-register writes around
/// them: under emulation every CR4 write flushes the emulator's TLB, which cost the link more
/// than its cipher saved. The compiler still emits no SSE code, so the registers stay the
/// guest's outside [`lend`]. Called first thing on each CPU (`kmain`), before its VMCS or VMCB
/// takes the host's CR0 and CR4, which keep these bits from then on.
pub fn enable() {
    let (cr0, cr4) = (instr::read_cr0(), instr::read_cr4());
    // SAFETY: EM, TS and OSFXSR only govern x87/SSE instructions; none is fixed in VMX
    // operation (SDM Vol. 3D, A.7, A.8), and nothing else depends on them.
    unsafe {
        instr::write_cr0(cr0 & !CR0_EM_TS);
        instr::write_cr4(cr4 | CR4_OSFXSR);
    }
}

/// FXSAVE into `image` (this CPU ran [`enable`]).
pub fn fxsave(image: &mut FxImage) {
    // SAFETY: `image` is 512 writable bytes, 16-byte aligned; `enable` made FXSAVE usable and
    // save the XMM registers.
    unsafe { asm!("fxsave64 [{}]", in(reg) &raw mut image.0, options(nostack, preserves_flags)) }
}

/// FXRSTOR from `image` (this CPU ran [`enable`]).
///
/// # Safety
/// `image` must be one this CPU accepts: an FXSAVE of this CPU, or one whose MXCSR was
/// checked against its MXCSR_MASK (FXRSTOR raises #GP otherwise).
pub unsafe fn fxrstor(image: &FxImage) {
    // SAFETY: as the caller promised; 512 bytes, 16-byte aligned.
    unsafe { asm!("fxrstor64 [{}]", in(reg) &raw const image.0, options(nostack, preserves_flags)) }
}

/// Lends the x87/SSE registers to `f`: saves them (the guest's), runs `f` (SSE is usable since
/// [`enable`]), restores them. `f` may leave anything in them. Interrupt handlers do not use
/// them, so one arriving meanwhile changes nothing.
pub fn lend(f: &mut dyn FnMut()) {
    let mut saved = FxImage([0; FX_LEN]);
    fxsave(&mut saved);
    f();
    // SAFETY: this CPU's own FXSAVE image, taken just now.
    unsafe { fxrstor(&saved) };
}
