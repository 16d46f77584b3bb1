// SPDX-License-Identifier: MIT OR Apache-2.0
//! Guest registers that neither the VMCS nor the VMCB switch, kept live in the hardware while
//! the vCPU is the one running on its CPU: x87/SSE state, DR0-DR3 and DR6.
//!
//! Why they stay the guest's across exits: the host kernel never touches them. It is built for
//! `x86_64-unknown-none`, which has no SSE or x87 code generation (soft float; the crypto crates
//! take their portable "soft" back ends, `.cargo/config.toml`), and it has no debugger. A VM exit
//! loads DR7 with 0x400 and leaves DR0-DR3 and DR6 alone (Intel SDM Vol. 3C, 28.5.1, 28.3.1);
//! VMRUN and #VMEXIT switch DR6 and DR7 through the VMCB and leave DR0-DR3 alone (AMD APM
//! Vol. 2, 15.5.1, 15.6). So saving reads the registers, and restoring stages the values,
//! loaded just before the vCPU's next entry ([`Unswitched::load_staged`]) so nothing between a
//! restore and the entry can disturb them. A new vCPU stages power-on values, not the previous
//! guest's leftovers.

use alloc::boxed::Box;
use core::arch::asm;

use super::extended::{FxArea, mxcsr_loadable};
use crate::arch::x86_64::instr;

/// CR0.EM and CR0.TS: FXSAVE/FXRSTOR raise #NM with either set (SDM Vol. 2A, FXSAVE).
const CR0_EM_TS: u64 = (1 << 2) | (1 << 3);
/// CR4.OSFXSR: without it FXSAVE/FXRSTOR may skip the XMM registers and MXCSR (SDM Vol. 2A,
/// FXSAVE; APM Vol. 5, FXSAVE), so it is set while they run.
const CR4_OSFXSR: u64 = 1 << 9;

/// The unswitched registers of one guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registers {
    /// x87/SSE state (FXSAVE image).
    pub fpu: FxArea,
    /// DR0-DR3.
    pub dr: [u64; 4],
    /// DR6 (the VMCB's is the one that counts on AMD-V).
    pub dr6: u64,
}

/// A vCPU's unswitched registers: in the hardware, or staged for its next entry.
pub struct Unswitched {
    staged: Option<Box<Registers>>,
}

/// Runs `f` with FXSAVE/FXRSTOR usable: CR4.OSFXSR set, CR0.EM and CR0.TS clear, then puts
/// CR0 and CR4 back (neither bit affects paging, so no TLB flush).
fn with_fx<R>(f: impl FnOnce() -> R) -> R {
    let (cr0, cr4) = (instr::read_cr0(), instr::read_cr4());
    let (fx_cr0, fx_cr4) = (cr0 & !CR0_EM_TS, cr4 | CR4_OSFXSR);
    // SAFETY: EM, TS and OSFXSR only govern x87/SSE instructions, which the host never runs;
    // none is fixed in VMX operation (SDM Vol. 3D, A.7, A.8). Restored below.
    unsafe {
        if fx_cr0 != cr0 {
            instr::write_cr0(fx_cr0);
        }
        if fx_cr4 != cr4 {
            instr::write_cr4(fx_cr4);
        }
    }
    let r = f();
    // SAFETY: the values read above.
    unsafe {
        if fx_cr4 != cr4 {
            instr::write_cr4(cr4);
        }
        if fx_cr0 != cr0 {
            instr::write_cr0(cr0);
        }
    }
    r
}

/// The hardware's x87/SSE state.
fn fxsave() -> FxArea {
    let mut area = FxArea([0; super::extended::FX_AREA_LEN]);
    with_fx(|| {
        // SAFETY: `area` is 512 bytes, 16-byte aligned and writable; FXSAVE is usable here.
        unsafe { asm!("fxsave64 [{}]", in(reg) &raw mut area, options(nostack, preserves_flags)) }
    });
    area
}

/// Loads `area` into the hardware; its MXCSR was checked against this CPU's mask.
fn fxrstor(area: &FxArea) {
    with_fx(|| {
        // SAFETY: `area` is an aligned 512-byte image whose MXCSR this CPU accepts
        // (`Unswitched::stage`), so FXRSTOR cannot fault.
        unsafe { asm!("fxrstor64 [{}]", in(reg) area, options(nostack, preserves_flags)) }
    });
}

macro_rules! debug_registers {
    ($($n:literal),*) => {
        /// DR0-DR3 and DR6 of the hardware.
        fn read_debug() -> ([u64; 4], u64) {
            let mut v = [0u64; 5];
            $(
                // SAFETY: reading a debug register at CPL 0 has no side effects.
                unsafe { asm!(concat!("mov {}, dr", $n), out(reg) v[$n], options(nomem, nostack, preserves_flags)) };
            )*
            let dr6: u64;
            // SAFETY: as above.
            unsafe { asm!("mov {}, dr6", out(reg) dr6, options(nomem, nostack, preserves_flags)) };
            v[4] = dr6;
            ([v[0], v[1], v[2], v[3]], v[4])
        }

        /// Loads DR0-DR3 and DR6 (DR6 bits 63:32 clear, checked by `CpuState::check`).
        fn write_debug(dr: &[u64; 4], dr6: u64) {
            $(
                // SAFETY: DR0-DR3 take any address; the host arms no breakpoint (its DR7 is
                // 0x400 after every exit), so they have no effect on it.
                unsafe { asm!(concat!("mov dr", $n, ", {}"), in(reg) dr[$n], options(nomem, nostack, preserves_flags)) };
            )*
            // SAFETY: the upper half is zero, so MOV to DR6 does not fault.
            unsafe { asm!("mov dr6, {}", in(reg) dr6 & 0xFFFF_FFFF, options(nomem, nostack, preserves_flags)) };
        }
    };
}

debug_registers!(0, 1, 2, 3);

impl Unswitched {
    /// A new vCPU's: power-on values staged.
    pub fn new() -> Self {
        let reset = super::ExtendedState::RESET;
        Self {
            staged: Some(Box::new(Registers {
                fpu: reset.fpu.area,
                dr: reset.dr,
                dr6: reset.dr6,
            })),
        }
    }

    /// The guest's values: staged ones not yet loaded, else the hardware's. Call only
    /// between this vCPU's exits, on its CPU.
    pub fn read(&self) -> Registers {
        match &self.staged {
            Some(r) => **r,
            None => {
                let (dr, dr6) = read_debug();
                Registers {
                    fpu: fxsave(),
                    dr,
                    dr6,
                }
            }
        }
    }

    /// Stages `r` for the next entry; `Err` if this CPU's FXRSTOR would refuse its MXCSR
    /// (a DAZ bit from a CPU that has it, on one that does not).
    pub fn stage(&mut self, r: Registers) -> Result<(), &'static str> {
        let mask = fxsave().mxcsr_mask();
        if !mxcsr_loadable(r.fpu.mxcsr(), mask) {
            return Err("MXCSR bits this CPU does not have");
        }
        self.staged = Some(Box::new(r));
        Ok(())
    }

    /// Loads staged values into the hardware; call right before entering the guest.
    #[inline]
    pub fn load_staged(&mut self) {
        if let Some(r) = self.staged.take() {
            fxrstor(&r.fpu);
            write_debug(&r.dr, r.dr6);
        }
    }
}

impl Default for Unswitched {
    fn default() -> Self {
        Self::new()
    }
}
