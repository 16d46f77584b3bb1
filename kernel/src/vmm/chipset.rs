// SPDX-License-Identifier: MIT OR Apache-2.0
//! The PC chipset a guest sees: 8259 PIC pair, I/O APIC and the vCPU's local APIC
//! (`devices::interrupts`), 8254 PIT, CMOS RTC and the ACPI PM registers, driven by guest time.
//!
//! Device lines go to the PIC and the I/O APIC as on a PC: PIT on IRQ0, RTC on IRQ8, the SCI
//! on IRQ9; the UART's IRQ4 comes from the port bus (`run::Guest`). The APICs' pages are MMIO
//! ([`Chipset::mmio_read`], [`Chipset::mmio_write`]); the vCPU reaches the local APIC's MSRs
//! and its CR8 through the [`InterruptSource`] methods.
//!
//! Guest time is nanoseconds since the guest was created, measured with the host TSC, so it is
//! monotonic. Before each VM entry the devices are brought up to date if a timer event is due
//! ([`Chipset::update`]; between events there is nothing to do, which keeps exits cheap), and
//! before each access to a timer port, so reads are exact and every PIT tick reaches the PIC
//! exactly once (see `devices::pit`).
//!
//! [`Chipset::save_state`] captures the devices and the guest time; [`Chipset::restore_state`]
//! on another host resumes guest time from the saved value on that host's TSC, so guest time
//! stays monotonic across a failover and no PIT tick is lost or repeated. The state's format
//! and its checks are in `devices::blob`, host tested.

use alloc::vec::Vec;

use super::decode::mmio::MmioDevice;
use super::devices::Effect;
use super::devices::blob::ChipsetState;
use super::devices::clock::GuestClock;
use super::devices::interrupts::Interrupts;
use super::devices::irq::{IrqLine, IrqSink};
use super::devices::lapic::{LapicConfig, MsrFault};
use super::devices::pic::Pic;
use super::devices::pit::Pit;
use super::devices::pm::{self, Pm};
use super::devices::rtc::Rtc;
use super::devices::state::StateError;
use super::devices::update::next_update;
use super::msr;
use super::vcpu::{InterruptSource, Width};
use crate::arch::x86_64::{instr, time};

/// Start of the PCI hole: guest RAM beyond this is reported above 4 GiB to the RTC's CMOS.
const PCI_HOLE: u64 = super::ram_layout::MAX_RAM;

/// SCI line of the PM registers (`acpi::Platform::pc` and the FADT name the same).
const SCI: IrqLine = match IrqLine::new(pm::SCI_IRQ) {
    Some(line) => line,
    None => panic!("the SCI is an ISA line"),
};

/// The interrupt controllers, timers and PM registers of one guest, and its clock.
#[derive(Debug, Clone)]
pub struct Chipset {
    /// The interrupt controllers: PIC, I/O APIC, local APIC.
    pub interrupts: Interrupts,
    /// The interval timer.
    pub pit: Pit,
    /// The real-time clock and CMOS memory.
    pub rtc: Rtc,
    /// The ACPI power-management registers.
    pub pm: Pm,
    /// Guest time from this host's TSC.
    clock: GuestClock,
    /// Guest RAM in bytes, as the CMOS describes it.
    ram: u64,
    /// Guest time before which [`Chipset::update`] has nothing new to do ([`next_update`]).
    next_update_ns: u64,
}

impl Chipset {
    /// A chipset as firmware leaves it, for a guest with `ram` bytes of RAM; guest time starts
    /// now.
    pub fn new(ram: u64) -> Self {
        let below = ram.min(PCI_HOLE);
        Self {
            interrupts: Interrupts::new(LapicConfig {
                apic_id: 0,
                timer_hz: super::cpuid_clocks::LAPIC_TIMER_HZ,
                tsc_hz: time::tsc_hz(),
            }),
            pit: Pit::new(),
            rtc: Rtc::new(below, ram - below),
            pm: Pm::new(),
            clock: GuestClock::start(instr::rdtsc(), time::tsc_hz()),
            ram,
            next_update_ns: 0,
        }
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
        })
    }

    /// Brings the timers up to guest time `now_ns` and wall time `unix`, driving their
    /// interrupt lines. (The local APIC's timer is brought up to date by each access to it.)
    pub fn update(&mut self, now_ns: u64, unix: u64) {
        self.pit.advance(now_ns);
        self.pm.advance(now_ns);
        self.rtc.set_time(unix);
        self.rtc.deliver(&mut self.interrupts);
        self.pit.deliver(&mut self.interrupts);
        self.drive_sci();
        self.next_update_ns = next_update(
            now_ns,
            self.pit.pending_ticks(),
            [self.pit.next_deadline(), self.pm.next_deadline()],
        );
    }

    /// Drives IRQ9 from the PM registers' SCI.
    fn drive_sci(&mut self) {
        self.interrupts.set_level(SCI, self.pm.sci_level());
    }

    /// An `in` from a chipset port at guest time `now_ns`; `None` if no chipset device decodes it.
    pub fn read(&mut self, port: u16, width: Width, now_ns: u64) -> Option<u32> {
        if Pic::decodes(port) {
            Some(self.interrupts.pic.io_read(port, width))
        } else if Pit::decodes(port) {
            self.pit.advance(now_ns);
            Some(self.pit.io_read(port, width))
        } else if Rtc::decodes(port) {
            let value = self.rtc.io_read(port, width);
            self.rtc.deliver(&mut self.interrupts);
            Some(value)
        } else if Pm::decodes(port) {
            self.pm.advance(now_ns);
            let value = self.pm.io_read(port, width);
            self.drive_sci();
            Some(value)
        } else {
            None
        }
    }

    /// An `out` to a chipset port at guest time `now_ns`; `None` if no chipset device decodes
    /// it, else what the write asks of the monitor (the PM registers can power off or reset).
    pub fn write(&mut self, port: u16, width: Width, value: u32, now_ns: u64) -> Option<Effect> {
        if Pic::decodes(port) {
            self.interrupts.pic.io_write(port, width, value);
        } else if Pit::decodes(port) {
            self.pit.advance(now_ns);
            self.pit.io_write(port, width, value);
            self.pit.deliver(&mut self.interrupts);
            self.next_update_ns = 0;
        } else if Rtc::decodes(port) {
            self.rtc.io_write(port, width, value);
            self.rtc.deliver(&mut self.interrupts);
            self.next_update_ns = 0;
        } else if Pm::decodes(port) {
            self.pm.advance(now_ns);
            let effect = self.pm.io_write(port, width, value);
            self.drive_sci();
            self.next_update_ns = 0;
            return Some(effect);
        } else {
            return None;
        }
        Some(Effect::None)
    }

    /// Whether guest-physical `gpa` is a register page of the local or the I/O APIC.
    pub fn decodes_mmio(&self, gpa: u64) -> bool {
        self.interrupts.decodes_mmio(gpa)
    }

    /// Guest time of the next timer event that could raise an interrupt, if any: the PIT's,
    /// the local APIC timer's or the PM timer's.
    pub fn next_deadline(&self) -> Option<u64> {
        [
            self.pit.next_deadline(),
            self.interrupts.lapic.next_deadline(),
            self.pm.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// The APIC pages as the MMIO emulation sees them ([`crate::vmm::decode::mmio`]), at the guest
/// time of each access. Accesses outside them read all ones and ignore writes (the run loop
/// only sends accesses [`Chipset::decodes_mmio`] claims).
impl MmioDevice for Chipset {
    fn read(&mut self, gpa: u64, width: Width) -> u64 {
        let now = self.now_ns();
        self.interrupts
            .mmio_read(gpa, width, now)
            .unwrap_or(u64::MAX)
    }

    fn write(&mut self, gpa: u64, width: Width, value: u64) {
        let now = self.now_ns();
        self.interrupts.mmio_write(gpa, width, value, now);
    }
}

impl InterruptSource for Chipset {
    fn pending(&mut self) -> Option<u8> {
        let now = self.now_ns();
        if now >= self.next_update_ns {
            self.update(now, time::unix_now());
        }
        self.interrupts.pending(now)
    }

    fn acknowledge(&mut self) -> Option<u8> {
        let now = self.now_ns();
        self.interrupts.acknowledge(now)
    }

    fn read_msr(&mut self, index: u32) -> Option<u64> {
        let lapic = &mut self.interrupts.lapic;
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
        let lapic = &mut self.interrupts.lapic;
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
        self.interrupts.lapic.set_cr8(value);
    }
}
