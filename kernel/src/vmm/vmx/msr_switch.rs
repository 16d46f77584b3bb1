// SPDX-License-Identifier: MIT OR Apache-2.0
//! The MSRs a VT-x guest owns that the VMCS guest-state area lacks: IA32_STAR, LSTAR, CSTAR,
//! FMASK, KERNEL_GS_BASE (SYSCALL/SWAPGS) and TSC_AUX (RDTSCP). VM entry loads the guest's
//! values from the VM-entry MSR-load area, VM exit stores them back into the same area (the
//! VM-exit MSR-store area may be the same memory, Intel SDM Vol. 3C, 25.7.2 and 25.8.2) and
//! loads the host's from the VM-exit MSR-load area (27.4 "Loading MSRs", 28.4 "Saving MSRs",
//! 28.6 "Loading MSRs"). Guests read and write them without exits (MSR bitmap), as on real
//! hardware. The host never uses SYSCALL or RDTSCP, but gets its values back anyway, so
//! nothing it might do later finds a guest's.

use crate::arch::x86_64::instr;
use crate::mm::OwnedFrames;

/// IA32_STAR.
pub const STAR: u32 = 0xC000_0081;
/// IA32_LSTAR.
pub const LSTAR: u32 = 0xC000_0082;
/// IA32_CSTAR.
pub const CSTAR: u32 = 0xC000_0083;
/// IA32_FMASK.
pub const FMASK: u32 = 0xC000_0084;
/// IA32_KERNEL_GS_BASE.
pub const KERNEL_GS_BASE: u32 = 0xC000_0102;
/// IA32_TSC_AUX.
pub const TSC_AUX: u32 = 0xC000_0103;

/// The switched MSRs, in area order.
pub const SWITCHED: [u32; 6] = [STAR, LSTAR, CSTAR, FMASK, KERNEL_GS_BASE, TSC_AUX];
/// Entries per area.
pub const COUNT: u32 = SWITCHED.len() as u32;
/// Bytes per entry: MSR index (4), reserved (4), value (8) (SDM Vol. 3C, Table 25-15).
const ENTRY: usize = 16;
/// Offset of the host area in the frame (the guest's is at 0).
const HOST_AT: usize = 2048;

/// The guest and host MSR areas of one vCPU, in one frame.
pub struct MsrAreas {
    frame: OwnedFrames,
}

impl MsrAreas {
    /// Areas with the guest's MSRs at their power-on value 0 and the host's as this CPU has
    /// them now; `None` if memory is short.
    pub fn new() -> Option<Self> {
        let areas = Self {
            frame: OwnedFrames::filled(1, 0)?,
        };
        for (i, msr) in SWITCHED.into_iter().enumerate() {
            areas.write_entry(i * ENTRY, msr, 0);
            // SAFETY: every MSR listed exists on a CPU with VT-x and long mode (RDTSCP
            // included: the back end requires "enable RDTSCP", so the CPU has it).
            let host = unsafe { instr::rdmsr(msr) };
            areas.write_entry(HOST_AT + i * ENTRY, msr, host);
        }
        Some(areas)
    }

    fn write_entry(&self, at: usize, msr: u32, value: u64) {
        let p = self.frame.ptr(at);
        // SAFETY: `at` + 16 lies within this vCPU's frame; the CPU reads it only during VM
        // entry and exit of this vCPU, never concurrently with `&self` methods.
        unsafe {
            p.cast::<u32>().write_volatile(msr);
            p.add(4).cast::<u32>().write_volatile(0);
            p.add(8).cast::<u64>().write_volatile(value);
        }
    }

    /// Physical address of the guest area (VM-entry MSR-load and VM-exit MSR-store).
    pub fn guest(&self) -> u64 {
        self.frame.phys()
    }

    /// Physical address of the host area (VM-exit MSR-load).
    pub fn host(&self) -> u64 {
        self.frame.phys() + HOST_AT as u64
    }

    /// The guest's values, in [`SWITCHED`] order, as the last exit stored them.
    pub fn read_guest(&self) -> [u64; 6] {
        let mut out = [0; 6];
        for (i, v) in out.iter_mut().enumerate() {
            // SAFETY: inside the guest area of this vCPU's frame (see `write_entry`).
            *v = unsafe { self.frame.ptr(i * ENTRY + 8).cast::<u64>().read_volatile() };
        }
        out
    }

    /// Sets the guest's values, in [`SWITCHED`] order, for the next entry.
    pub fn write_guest(&mut self, values: [u64; 6]) {
        for (i, (msr, v)) in SWITCHED.into_iter().zip(values).enumerate() {
            self.write_entry(i * ENTRY, msr, v);
        }
    }
}
