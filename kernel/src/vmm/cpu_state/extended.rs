// SPDX-License-Identifier: MIT OR Apache-2.0
//! The register state that version 2 of the encoding adds to a [`super::CpuState`]: what
//! neither back end kept before, so a guest resumed on another host lost it.
//!
//! - x87/SSE state, as the legacy region of the XSAVE area (the FXSAVE image, Intel SDM Vol. 1,
//!   10.5.1 "FXSAVE Area", 13.4.1 "Legacy Region of an XSAVE Area"), with the XCR0 components it
//!   holds. Castor hides XSAVE and AVX from guests (`vmm::cpuid`; XSETBV raises #UD), so a
//!   guest's XCR0 is x87|SSE (its power-on value with SSE, SDM Vol. 1, 13.3) and this region is
//!   its whole extended state: there are no YMM/ZMM upper halves to keep. A state naming other
//!   components or another size is refused with both ([`check_layout`]).
//! - The guest's TSC: saved as the value it reads ([`guest_tsc`]); a restore sets the TSC offset
//!   so it goes on from there ([`tsc_offset`]), as KVM does on migration (VT-x "use TSC
//!   offsetting", SDM Vol. 3C, 26.3 and 25.6.5; AMD-V VMCB TSC_OFFSET, APM Vol. 2, 15.30.5).
//! - IA32_TSC_AUX (what RDTSCP returns in ECX).
//! - DR0-DR3 and DR6, which neither the VMCS nor (DR0-DR3) the VMCB switch; IA32_DEBUGCTL;
//!   VT-x's pending debug exceptions (SDM Vol. 3C, 25.4.2), with the rule VM entry enforces
//!   ([`pending_debug_for_entry`]).
//! - Whether the guest is halted in HLT, waiting for an interrupt (the monitor's own state:
//!   both back ends exit on HLT).
//! - The guest's task priority, CR8 (bits 3:0): VT-x emulates it (CR8-load/store exiting, so
//!   it never reaches the host's TPR, SDM Vol. 3C, 26.3), AMD-V keeps it in the VMCB's V_TPR
//!   (APM Vol. 2, 15.21.1); either way it is the vCPU's own and travels with the state.

use core::fmt;

use super::CpuStateError::{self, Invalid, Reserved};

#[cfg(test)]
mod tests;

/// XCR0 bit 0: x87 state.
pub const XCR0_X87: u64 = 1 << 0;
/// XCR0 bit 1: SSE state (XMM registers, MXCSR).
pub const XCR0_SSE: u64 = 1 << 1;
/// The XCR0 of every Castor guest, and the only one a state may carry (see the module
/// documentation).
pub const GUEST_XCR0: u64 = XCR0_X87 | XCR0_SSE;
/// Size of the legacy region of the XSAVE area, the FXSAVE image.
pub const FX_AREA_LEN: usize = 512;
/// MXCSR_MASK when FXSAVE stores 0 there (SDM Vol. 1, 11.6.6).
pub const MXCSR_MASK_DEFAULT: u32 = 0xFFBF;

/// Pending debug exceptions: B3-B0 (bits 3:0), enabled breakpoint (12), BS (14), RTM (16)
/// (SDM Vol. 3C, 25.4.2, Table 25-4); the other bits are reserved.
pub const PENDING_DEBUG_DEFINED: u64 = 0xF | (1 << 12) | (1 << 14) | (1 << 16);
/// Pending debug exceptions: BS, a single-step trap is pending.
pub const PENDING_DEBUG_BS: u64 = 1 << 14;
/// RFLAGS.TF.
pub const RFLAGS_TF: u64 = 1 << 8;
/// IA32_DEBUGCTL.BTF: single-step on branches.
pub const DEBUGCTL_BTF: u64 = 1 << 1;
/// IA32_DEBUGCTL bits VM entry accepts: LBR, BTF, 6-14 (SDM Vol. 3C, 27.3.1.1 and Vol. 4,
/// IA32_DEBUGCTL); 5:2 and 63:15 are reserved.
pub const DEBUGCTL_DEFINED: u64 = 0x7FC3;

/// An FXSAVE image (16-byte aligned, as FXSAVE/FXRSTOR require).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C, align(16))]
pub struct FxArea(pub [u8; FX_AREA_LEN]);

impl FxArea {
    /// The x87/SSE state after power-on or FNINIT: FCW 0x037F, all x87 registers empty (the
    /// abridged tag word 0), MXCSR 0x1F80 (SDM Vol. 1, 8.1.1 and 10.2.3.2), registers zero.
    pub const RESET: FxArea = {
        let mut a = [0u8; FX_AREA_LEN];
        a[0] = 0x7F;
        a[1] = 0x03;
        a[24] = 0x80;
        a[25] = 0x1F;
        FxArea(a)
    };

    fn u32_at(&self, offset: usize) -> u32 {
        let b = &self.0[offset..offset + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// MXCSR (bytes 24-27).
    pub fn mxcsr(&self) -> u32 {
        self.u32_at(24)
    }

    /// MXCSR_MASK (bytes 28-31) as the CPU that stored the image reports it, 0 meaning
    /// [`MXCSR_MASK_DEFAULT`].
    pub fn mxcsr_mask(&self) -> u32 {
        match self.u32_at(28) {
            0 => MXCSR_MASK_DEFAULT,
            m => m,
        }
    }

    /// XMM register `n` (0-15; bytes 160 + 16n).
    pub fn xmm(&self, n: usize) -> u128 {
        let mut b = [0u8; 16];
        b.copy_from_slice(&self.0[160 + 16 * n..176 + 16 * n]);
        u128::from_le_bytes(b)
    }

    /// Sets XMM register `n` (0-15).
    pub fn set_xmm(&mut self, n: usize, value: u128) {
        self.0[160 + 16 * n..176 + 16 * n].copy_from_slice(&value.to_le_bytes());
    }
}

impl fmt::Debug for FxArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FxArea {{ fcw: {:#x}, mxcsr: {:#x}, xmm0: {:#x}, xmm15: {:#x} }}",
            u16::from_le_bytes([self.0[0], self.0[1]]),
            self.mxcsr(),
            self.xmm(0),
            self.xmm(15)
        )
    }
}

/// x87/SSE state: the XCR0 components held and their image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FpuState {
    /// XCR0 in force when the image was taken (which components it holds).
    pub xcr0: u64,
    /// The legacy region of the XSAVE area.
    pub area: FxArea,
}

/// The state encoding version 2 adds (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtendedState {
    /// The TSC as the guest reads it.
    pub tsc: u64,
    /// IA32_TSC_AUX (bits 63:32 reserved).
    pub tsc_aux: u64,
    /// DR0-DR3.
    pub dr: [u64; 4],
    /// DR6 (bits 63:32 reserved).
    pub dr6: u64,
    /// IA32_DEBUGCTL.
    pub debugctl: u64,
    /// VT-x pending debug exceptions ([`PENDING_DEBUG_DEFINED`]); 0 from AMD-V, which has no
    /// such field.
    pub pending_debug: u64,
    /// Halted in HLT with interrupts enabled: the vCPU resumes only for an interrupt.
    pub halted: bool,
    /// CR8, the task-priority class (bits 3:0; 7:4 reserved).
    pub tpr: u8,
    /// x87/SSE state.
    pub fpu: FpuState,
}

impl ExtendedState {
    /// Power-on values (DR6 0xFFFF0FF0, SDM Vol. 3B, 18.2.3; the TSC at 0).
    pub const RESET: ExtendedState = ExtendedState {
        tsc: 0,
        tsc_aux: 0,
        dr: [0; 4],
        dr6: 0xFFFF_0FF0,
        debugctl: 0,
        pending_debug: 0,
        halted: false,
        tpr: 0,
        fpu: FpuState {
            xcr0: GUEST_XCR0,
            area: FxArea::RESET,
        },
    };
}

/// Whether this host can load an extended-state image of `size` bytes holding the XCR0
/// components `xcr0`: only the legacy region with x87 and SSE, which is all a Castor guest
/// has. Anything else (another build, a layout with AVX or more) is refused with both values.
pub fn check_layout(xcr0: u64, size: u32) -> Result<(), CpuStateError> {
    if xcr0 == GUEST_XCR0 && size as usize == FX_AREA_LEN {
        Ok(())
    } else {
        Err(CpuStateError::XsaveLayout { xcr0, size })
    }
}

/// Whether FXRSTOR on a CPU whose MXCSR_MASK is `mask` accepts `mxcsr` (it raises #GP for a
/// bit outside the mask, SDM Vol. 1, 11.6.6).
pub fn mxcsr_loadable(mxcsr: u32, mask: u32) -> bool {
    mxcsr & !mask == 0
}

/// The TSC offset that makes a guest read `guest_tsc` while the host's TSC reads `host_tsc`
/// (guest TSC = host TSC + offset, modulo 2^64: SDM Vol. 3C, 26.3 "RDTSC"; APM Vol. 2,
/// 15.30.5).
pub const fn tsc_offset(guest_tsc: u64, host_tsc: u64) -> u64 {
    guest_tsc.wrapping_sub(host_tsc)
}

/// The TSC a guest reads with `offset` while the host's reads `host_tsc`.
pub const fn guest_tsc(host_tsc: u64, offset: u64) -> u64 {
    host_tsc.wrapping_add(offset)
}

/// The pending-debug-exceptions value VM entry accepts for this state (SDM Vol. 3C, 27.3.1.5):
/// with blocking by STI or MOV SS, BS must be set if RFLAGS.TF is set and DEBUGCTL.BTF clear,
/// and clear otherwise. A state saved where no such field exists (AMD-V) has no BS; a
/// takeover in the middle of single-stepping past STI or MOV SS would fail VM entry without
/// it. Without blocking the value is left alone.
pub const fn pending_debug_for_entry(
    pending: u64,
    rflags: u64,
    debugctl: u64,
    blocking: bool,
) -> u64 {
    if !blocking {
        pending
    } else if rflags & RFLAGS_TF != 0 && debugctl & DEBUGCTL_BTF == 0 {
        pending | PENDING_DEBUG_BS
    } else {
        pending & !PENDING_DEBUG_BS
    }
}

/// The checks of [`super::CpuState::check`] for this part: reserved bits, the layout, and a
/// halted state the monitor can wake (interrupts enabled, nothing being delivered).
pub(super) fn check(s: &super::CpuState) -> Result<(), CpuStateError> {
    let e = &s.ext;
    ensure(e.tsc_aux >> 32 == 0, Reserved("IA32_TSC_AUX"))?;
    ensure(e.dr6 >> 32 == 0, Reserved("DR6"))?;
    ensure(
        e.debugctl & !DEBUGCTL_DEFINED == 0,
        Reserved("IA32_DEBUGCTL"),
    )?;
    ensure(
        e.pending_debug & !PENDING_DEBUG_DEFINED == 0,
        Reserved("pending debug exceptions"),
    )?;
    ensure(e.tpr & !0xF == 0, Reserved("CR8"))?;
    check_layout(e.fpu.xcr0, FX_AREA_LEN as u32)?;
    // Bits 31:16 of MXCSR are reserved on every CPU (SDM Vol. 1, 10.2.3).
    ensure(e.fpu.area.mxcsr() >> 16 == 0, Reserved("MXCSR"))?;
    if e.halted {
        ensure(
            s.rflags & super::RFLAGS_IF != 0
                && !s.sti_blocking
                && !s.mov_ss_blocking
                && s.event.is_none()
                && s.pending_io_in.is_none(),
            Invalid("halted with interrupts off, blocking, an event or a pending IN"),
        )?;
    }
    Ok(())
}

fn ensure(ok: bool, error: CpuStateError) -> Result<(), CpuStateError> {
    if ok { Ok(()) } else { Err(error) }
}
