// SPDX-License-Identifier: MIT OR Apache-2.0
//! The chipset on this host: guest time from its TSC, wall time from its clock. What reads
//! them lives here; the rest of the chipset takes time as an input and is host tested.

use alloc::vec::Vec;

use super::{Chipset, GuestClock};
use crate::arch::x86_64::{instr, time};
use crate::vmm::decode::mmio::MmioDevice;
use crate::vmm::devices::blob::ChipsetState;
use crate::vmm::devices::lapic::MsrFault;
use crate::vmm::devices::state::StateError;
use crate::vmm::msr;
use crate::vmm::vcpu::{InterruptSource, Width};

impl Chipset {
    /// A chipset as firmware leaves it, for a guest with `ram` bytes of RAM; guest time starts
    /// now.
    pub fn new(ram: u64) -> Self {
        Self::started(ram, instr::rdtsc(), time::tsc_hz())
    }

    /// Guest time: nanoseconds since creation, from the host TSC.
    pub fn now_ns(&self) -> u64 {
        self.clock.at(instr::rdtsc())
    }

    /// The devices and the guest time now, for a checkpoint (call while the guest is stopped).
    pub fn save_state(&self) -> Vec<u8> {
        let device_time = self
            .pit
            .now()
            .max(self.interrupts.lapic.now())
            .max(self.pm.now());
        ChipsetState {
            interrupts: self.interrupts.clone(),
            pit: self.pit.clone(),
            rtc: self.rtc.clone(),
            pm: self.pm.clone(),
            ram: self.ram,
            guest_ns: self.now_ns().max(device_time),
        }
        .save_state()
    }

    /// The chipset [`save_state`](Self::save_state) captured, possibly on another host, for a
    /// guest with `ram` bytes of RAM. Guest time resumes at the saved value now, on this host's
    /// TSC: restore right before the guest runs again.
    pub fn restore_state(bytes: &[u8], ram: u64) -> Result<Self, StateError> {
        let mut s = ChipsetState::restore_state(bytes, ram)?;
        s.interrupts.lapic.resume_on_host(time::tsc_hz());
        Ok(Self {
            interrupts: s.interrupts,
            pit: s.pit,
            rtc: s.rtc,
            pm: s.pm,
            clock: GuestClock::resume(s.guest_ns, instr::rdtsc(), time::tsc_hz()),
            ram,
            next_update_ns: 0,
            quiet_until_tsc: 0,
        })
    }
}

/// The APIC pages as the MMIO emulation sees them ([`crate::vmm::decode::mmio`]), at the guest
/// time of each access. Accesses outside them read all ones and ignore writes (the run loop
/// only sends accesses [`Chipset::decodes_mmio`] claims).
impl MmioDevice for Chipset {
    fn read(&mut self, gpa: u64, width: Width) -> u64 {
        let now = self.now_ns();
        self.interrupts_mut()
            .mmio_read(gpa, width, now)
            .unwrap_or(u64::MAX)
    }

    fn write(&mut self, gpa: u64, width: Width, value: u64) {
        let now = self.now_ns();
        self.interrupts_mut().mmio_write(gpa, width, value, now);
    }
}

impl InterruptSource for Chipset {
    #[inline]
    fn pending(&mut self) -> Option<u8> {
        self.pending_at(instr::rdtsc(), time::unix_now)
    }

    fn acknowledge(&mut self) -> Option<u8> {
        self.acknowledge_at(instr::rdtsc())
    }

    fn read_msr(&mut self, index: u32) -> Option<u64> {
        let lapic = &mut self.interrupts_mut().lapic;
        match index {
            msr::APIC_BASE => Some(lapic.apic_base_msr()),
            msr::TSC_DEADLINE => Some(lapic.tsc_deadline()),
            _ => None,
        }
    }

    fn write_msr(
        &mut self,
        index: u32,
        value: u64,
        guest_tsc: u64,
    ) -> Option<Result<(), MsrFault>> {
        let now = self.now_ns();
        let lapic = &mut self.interrupts_mut().lapic;
        match index {
            msr::APIC_BASE => Some(lapic.write_apic_base_msr(value, now)),
            msr::TSC_DEADLINE => {
                lapic.write_tsc_deadline(value, guest_tsc, now);
                Some(Ok(()))
            }
            _ => None,
        }
    }

    fn cr8(&self) -> u64 {
        self.interrupts.lapic.cr8()
    }

    fn set_cr8(&mut self, value: u64) {
        self.interrupts_mut().lapic.set_cr8(value);
    }
}
