// SPDX-License-Identifier: MIT OR Apache-2.0
//! The PC chipset a guest sees: 8259 PIC pair, 8254 PIT and CMOS RTC, driven by guest time.
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

use super::devices::blob::ChipsetState;
use super::devices::clock::GuestClock;
use super::devices::pic::Pic;
use super::devices::pit::Pit;
use super::devices::rtc::Rtc;
use super::devices::state::StateError;
use super::vcpu::{InterruptSource, Width};
use crate::arch::x86_64::{instr, time};

/// Start of the PCI hole: guest RAM beyond this is reported above 4 GiB to the RTC's CMOS.
const PCI_HOLE: u64 = 0xC000_0000;

/// PIC, PIT and RTC of one guest, and its clock.
#[derive(Debug, Clone)]
pub struct Chipset {
    /// The interrupt controllers.
    pub pic: Pic,
    /// The interval timer.
    pub pit: Pit,
    /// The real-time clock and CMOS memory.
    pub rtc: Rtc,
    /// Guest time from this host's TSC.
    clock: GuestClock,
    /// Guest RAM in bytes, as the CMOS describes it.
    ram: u64,
    /// Guest time before which [`Chipset::update`] has nothing new to do: the next PIT event,
    /// or the next RTC poll.
    next_update_ns: u64,
}

/// How often the RTC is brought up to date while nothing else happens (its resolution is 1 s).
const RTC_POLL_NS: u64 = 10_000_000;

impl Chipset {
    /// A chipset as firmware leaves it, for a guest with `ram` bytes of RAM; guest time starts
    /// now.
    pub fn new(ram: u64) -> Self {
        let below = ram.min(PCI_HOLE);
        Self {
            pic: Pic::new(),
            pit: Pit::new(),
            rtc: Rtc::new(below, ram - below),
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
        ChipsetState {
            pic: self.pic.clone(),
            pit: self.pit.clone(),
            rtc: self.rtc.clone(),
            ram: self.ram,
            guest_ns: self.now_ns().max(self.pit.now()),
        }
        .save_state()
    }

    /// The chipset [`save_state`](Self::save_state) captured, possibly on another host, for a
    /// guest with `ram` bytes of RAM. Guest time resumes at the saved value now, on this host's
    /// TSC: restore right before the guest runs again.
    pub fn restore_state(bytes: &[u8], ram: u64) -> Result<Self, StateError> {
        let s = ChipsetState::restore_state(bytes, ram)?;
        Ok(Self {
            pic: s.pic,
            pit: s.pit,
            rtc: s.rtc,
            clock: GuestClock::resume(s.guest_ns, instr::rdtsc(), time::tsc_hz()),
            ram,
            next_update_ns: 0,
        })
    }

    /// Brings the timers up to guest time `now_ns` and wall time `unix`, raising their
    /// interrupt lines in the PIC.
    pub fn update(&mut self, now_ns: u64, unix: u64) {
        self.pit.advance(now_ns);
        self.rtc.set_time(unix);
        self.rtc.deliver(&mut self.pic);
        self.pit.deliver(&mut self.pic);
        let next_pit = self.pit.next_deadline().unwrap_or(u64::MAX);
        self.next_update_ns = next_pit.min(now_ns.saturating_add(RTC_POLL_NS));
    }

    /// An `in` from a chipset port at guest time `now_ns`; `None` if no chipset device decodes it.
    pub fn read(&mut self, port: u16, width: Width, now_ns: u64) -> Option<u32> {
        if Pic::decodes(port) {
            Some(self.pic.io_read(port, width))
        } else if Pit::decodes(port) {
            self.pit.advance(now_ns);
            Some(self.pit.io_read(port, width))
        } else if Rtc::decodes(port) {
            let value = self.rtc.io_read(port, width);
            self.rtc.deliver(&mut self.pic);
            Some(value)
        } else {
            None
        }
    }

    /// An `out` to a chipset port at guest time `now_ns`; false if no chipset device decodes it.
    pub fn write(&mut self, port: u16, width: Width, value: u32, now_ns: u64) -> bool {
        if Pic::decodes(port) {
            self.pic.io_write(port, width, value);
        } else if Pit::decodes(port) {
            self.pit.advance(now_ns);
            self.pit.io_write(port, width, value);
            self.pit.deliver(&mut self.pic);
            self.next_update_ns = 0;
        } else if Rtc::decodes(port) {
            self.rtc.io_write(port, width, value);
            self.rtc.deliver(&mut self.pic);
            self.next_update_ns = 0;
        } else {
            return false;
        }
        true
    }

    /// Guest time of the next timer event that could raise an interrupt, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.pit.next_deadline()
    }
}

impl InterruptSource for Chipset {
    fn pending(&mut self) -> Option<u8> {
        let now = self.now_ns();
        if now >= self.next_update_ns {
            self.update(now, time::unix_now());
        }
        self.pic.pending_vector()
    }

    fn acknowledge(&mut self) -> Option<u8> {
        self.pic.acknowledge()
    }
}
