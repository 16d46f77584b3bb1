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

use super::devices::Effect;
use super::devices::clock::GuestClock;
use super::devices::interrupts::Interrupts;
use super::devices::irq::{IrqLine, IrqSink};
use super::devices::lapic::LapicConfig;
use super::devices::pic::Pic;
use super::devices::pit::Pit;
use super::devices::pm::{self, Pm};
use super::devices::rtc::Rtc;
use super::devices::update::next_update;
use super::vcpu::Width;

/// Start of the PCI hole: guest RAM beyond this is reported above 4 GiB to the RTC's CMOS.
const PCI_HOLE: u64 = super::ram_layout::MAX_RAM;

/// SCI line of the PM registers (`acpi::Platform::pc` and the FADT name the same).
const SCI: IrqLine = match IrqLine::new(pm::SCI_IRQ) {
    Some(line) => line,
    None => panic!("the SCI is an ISA line"),
};

/// The interrupt controllers, timers and PM registers of one guest, and its clock.
///
/// Every change to the devices goes through a `&mut self` method here, and each ends the
/// quiet window ([`Chipset::pending_at`]); so the devices are not public fields.
#[derive(Debug, Clone)]
pub struct Chipset {
    /// The interrupt controllers: PIC, I/O APIC, local APIC.
    interrupts: Interrupts,
    /// The interval timer.
    pit: Pit,
    /// The real-time clock and CMOS memory.
    rtc: Rtc,
    /// The ACPI power-management registers.
    pm: Pm,
    /// Guest time from this host's TSC.
    clock: GuestClock,
    /// Guest RAM in bytes, as the CMOS describes it (read by the checkpoint, `host_clock`).
    #[cfg_attr(not(target_os = "none"), allow(dead_code))]
    ram: u64,
    /// Guest time before which [`Chipset::update`] has nothing new to do ([`next_update`]).
    next_update_ns: u64,
    /// Host TSC reading before which no interrupt can become pending unless a device changes
    /// (0: none known). Set when an evaluation found nothing pending: the next timer event ends
    /// it, and so does every access or line change, so the entry after an exit that touched no
    /// device does not evaluate the controllers again.
    quiet_until_tsc: u64,
}

impl Chipset {
    /// A chipset as firmware leaves it, for a guest with `ram` bytes of RAM, with guest time 0
    /// at TSC reading `tsc` of a TSC that runs at `tsc_hz` (`new` starts it on this host now).
    pub fn started(ram: u64, tsc: u64, tsc_hz: u64) -> Self {
        let below = ram.min(PCI_HOLE);
        Self {
            interrupts: Interrupts::new(LapicConfig {
                apic_id: 0,
                timer_hz: super::cpuid_clocks::LAPIC_TIMER_HZ,
                tsc_hz,
            }),
            pit: Pit::new(),
            rtc: Rtc::new(below, ram - below),
            pm: Pm::new(),
            clock: GuestClock::start(tsc, tsc_hz),
            ram,
            next_update_ns: 0,
            quiet_until_tsc: 0,
        }
    }

    /// The interrupt controllers.
    pub fn interrupts(&self) -> &Interrupts {
        &self.interrupts
    }

    /// The interrupt controllers, to change (a line's level, a register): ends the quiet
    /// window.
    pub fn interrupts_mut(&mut self) -> &mut Interrupts {
        self.quiet_until_tsc = 0;
        &mut self.interrupts
    }

    /// Brings the timers up to guest time `now_ns` and wall time `unix`, driving their
    /// interrupt lines. (The local APIC's timer is brought up to date by each access to it.)
    pub fn update(&mut self, now_ns: u64, unix: u64) {
        self.quiet_until_tsc = 0;
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
        let value = if Pic::decodes(port) {
            self.interrupts.pic.io_read(port, width)
        } else if Pit::decodes(port) {
            self.pit.advance(now_ns);
            self.pit.io_read(port, width)
        } else if Rtc::decodes(port) {
            let value = self.rtc.io_read(port, width);
            self.rtc.deliver(&mut self.interrupts);
            value
        } else if Pm::decodes(port) {
            self.pm.advance(now_ns);
            let value = self.pm.io_read(port, width);
            self.drive_sci();
            value
        } else {
            // No device changed: the quiet window stands.
            return None;
        };
        self.quiet_until_tsc = 0;
        Some(value)
    }

    /// An `out` to a chipset port at guest time `now_ns`; `None` if no chipset device decodes
    /// it, else what the write asks of the monitor (the PM registers can power off or reset).
    pub fn write(&mut self, port: u16, width: Width, value: u32, now_ns: u64) -> Option<Effect> {
        let effect = if Pic::decodes(port) {
            self.interrupts.pic.io_write(port, width, value);
            Effect::None
        } else if Pit::decodes(port) {
            self.pit.advance(now_ns);
            self.pit.io_write(port, width, value);
            self.pit.deliver(&mut self.interrupts);
            self.next_update_ns = 0;
            Effect::None
        } else if Rtc::decodes(port) {
            self.rtc.io_write(port, width, value);
            self.rtc.deliver(&mut self.interrupts);
            self.next_update_ns = 0;
            Effect::None
        } else if Pm::decodes(port) {
            self.pm.advance(now_ns);
            let effect = self.pm.io_write(port, width, value);
            self.drive_sci();
            self.next_update_ns = 0;
            effect
        } else {
            // No device changed: the quiet window stands.
            return None;
        };
        self.quiet_until_tsc = 0;
        Some(effect)
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

    /// [`InterruptSource::pending`] at host TSC reading `tsc`. Inside the quiet window it
    /// answers `None` at once; else it brings the timers up to date if an event is due,
    /// evaluates the controllers and, if nothing is pending, opens a quiet window up to the
    /// next timer event: the PIT's or PM timer's ([`next_update`]) or the local APIC timer's.
    /// `unix` gives the wall time (seconds since 1970) when the timers are brought up to date.
    #[inline]
    pub fn pending_at(&mut self, tsc: u64, unix: impl FnOnce() -> u64) -> Option<u8> {
        if tsc < self.quiet_until_tsc {
            return None;
        }
        self.evaluate(tsc, unix())
    }

    /// [`InterruptSource::acknowledge`] at host TSC reading `tsc`.
    pub fn acknowledge_at(&mut self, tsc: u64) -> Option<u8> {
        let now = self.clock.at(tsc);
        self.interrupts_mut().acknowledge(now)
    }

    /// [`pending_at`](Self::pending_at) outside the quiet window.
    fn evaluate(&mut self, tsc: u64, unix: u64) -> Option<u8> {
        let now = self.clock.at(tsc);
        if now >= self.next_update_ns {
            self.update(now, unix);
        }
        let pending = self.interrupts.pending(now);
        if pending.is_none() {
            let until = self
                .interrupts
                .lapic
                .next_deadline()
                .map_or(self.next_update_ns, |d| d.min(self.next_update_ns));
            self.quiet_until_tsc = self.clock.tsc_before(until);
        }
        pending
    }
}

/// The chipset on this host's TSC and wall clock.
#[cfg(target_os = "none")]
mod host_clock;
#[cfg(test)]
mod tests;
