// SPDX-License-Identifier: MIT OR Apache-2.0
//! Guest registers that neither the VMCS nor the VMCB switch, kept live in the hardware while
//! the vCPU is the one running on its CPU: x87/SSE state, DR0-DR3 and DR6.
//!
//! Why they stay the guest's across exits: the host kernel never touches them unless it saved
//! them first. It is built for `x86_64-unknown-none`, which has no SSE or x87 code generation
//! (soft float; the crypto crates take their portable "soft" back ends, `.cargo/config.toml`);
//! its one SSE user, the peer link's cipher, runs inside `arch::x86_64::vector::lend`, which
//! saves and restores the x87/SSE state around it; and it has no debugger. A VM exit
//! loads DR7 with 0x400 and leaves DR0-DR3 and DR6 alone (Intel SDM Vol. 3C, 28.5.1, 28.3.1);
//! VMRUN and #VMEXIT switch DR6 and DR7 through the VMCB and leave DR0-DR3 alone (AMD APM
//! Vol. 2, 15.5.1, 15.6). So saving reads the registers, and restoring stages the values,
//! loaded just before the vCPU's next entry ([`Unswitched::load_staged`]) so nothing between a
//! restore and the entry can disturb them. A new vCPU stages power-on values, not the previous
//! guest's leftovers.

use alloc::boxed::Box;
use core::arch::asm;

use super::extended::{FxArea, mxcsr_loadable};
use crate::arch::x86_64::vector;

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

/// The hardware's x87/SSE state.
fn fxsave() -> FxArea {
    let mut image = vector::FxImage([0; vector::FX_LEN]);
    vector::fxsave(&mut image);
    FxArea(image.0)
}

/// Loads `area` into the hardware; its MXCSR was checked against this CPU's mask.
fn fxrstor(area: &FxArea) {
    let image = vector::FxImage(area.0);
    // SAFETY: `area`'s MXCSR passed `mxcsr_loadable` against this CPU's mask
    // (`Unswitched::stage`), so FXRSTOR cannot fault.
    unsafe { vector::fxrstor(&image) };
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
