// SPDX-License-Identifier: MIT OR Apache-2.0
//! The MC146818A real-time clock and its 128 bytes of CMOS RAM at ports 0x70 (index) and 0x71
//! (data), per the Motorola MC146818A datasheet: "Address Map" (Figure 4), "Time, Calendar and
//! Alarm Locations" (Table 3: BCD or binary, 12- or 24-hour), "Register A" to "Register D".
//! Bit 7 of the index port is the PC's NMI mask: it takes no part in indexing; the RTC keeps it
//! for whatever delivers NMIs to the guest ([`Rtc::nmi_masked`]).
//!
//! Time comes from the monitor as Unix seconds ([`Rtc::set_time`]). The guest sees that time
//! plus an offset it sets itself by writing the clock (with or without register B's SET bit),
//! as `hwclock --systohc` does. Register A's UIP bit reads 0: updates are instantaneous. Register
//! D reads VRT = 1 (battery good).
//!
//! Interrupts on IRQ8: the update-ended (UF) and alarm (AF) flags are set when
//! [`Rtc::set_time`] moves the guest's clock to a new second, and IRQF follows register B's
//! enables; reading register C clears them. The periodic interrupt (PF) is not modelled. The
//! monitor drives IRQ8 from [`Rtc::irq_level`] with [`Rtc::deliver`].
//!
//! CMOS RAM holds what a PC BIOS (SeaBIOS, as set up by QEMU) stores there: base and extended
//! memory sizes and the IBM century byte at 0x32, with the standard checksum at 0x2E-0x2F.

mod state;

use core::ops::RangeInclusive;

use crate::calendar::{civil_from_days, days_from_civil};

use super::irq::{self, ByteIo, IrqLine, IrqSink};
use crate::vmm::vcpu::Width;

/// The index port; the data port is the next one.
pub const INDEX: u16 = 0x70;
/// The data port.
pub const DATA: u16 = 0x71;
/// Every port the RTC decodes.
pub const PORTS: [RangeInclusive<u16>; 1] = [INDEX..=DATA];

const SECONDS: u8 = 0x00;
const SECONDS_ALARM: u8 = 0x01;
const MINUTES: u8 = 0x02;
const MINUTES_ALARM: u8 = 0x03;
const HOURS: u8 = 0x04;
const HOURS_ALARM: u8 = 0x05;
const WEEKDAY: u8 = 0x06;
const DAY: u8 = 0x07;
const MONTH: u8 = 0x08;
const YEAR: u8 = 0x09;
const REG_A: u8 = 0x0A;
const REG_B: u8 = 0x0B;
const REG_C: u8 = 0x0C;
const REG_D: u8 = 0x0D;
/// IBM PC century byte.
const CENTURY: u8 = 0x32;

/// Register B: updates stopped while the guest sets the clock.
const B_SET: u8 = 0x80;
/// Register B: update-ended interrupt enable.
const B_UIE: u8 = 0x10;
/// Register B: the three interrupt enables, at the same bit positions as their flags in C.
const B_ENABLES: u8 = 0x70;
/// Register B: data mode binary (else BCD).
const B_BINARY: u8 = 0x04;
/// Register B: 24-hour mode (else 12-hour, PM in bit 7 of the hours).
const B_24H: u8 = 0x02;
/// Register C: interrupt request, alarm and update-ended flags.
const C_IRQF: u8 = 0x80;
const C_AF: u8 = 0x20;
const C_UF: u8 = 0x10;
/// Register D: valid RAM and time.
const D_VRT: u8 = 0x80;

/// The clock registers (computed from the time unless SET holds them).
fn is_clock(index: u8) -> bool {
    matches!(
        index,
        SECONDS | MINUTES | HOURS | WEEKDAY | DAY | MONTH | YEAR | CENTURY
    )
}

/// The RTC with its CMOS RAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtc {
    /// CMOS RAM; the clock registers hold the guest's values only while SET is on.
    ram: [u8; 128],
    index: u8,
    /// Index port bit 7: NMIs are disabled.
    nmi_masked: bool,
    /// Unix time from the monitor.
    wall: u64,
    /// Guest clock minus `wall`, in seconds.
    offset: i64,
    /// Register C's PF, AF and UF.
    flags: u8,
}

impl Rtc {
    /// An RTC at Unix time 0 whose CMOS RAM describes `ram_below_4g` bytes of guest RAM below
    /// 4 GiB and `ram_above_4g` above it.
    pub fn new(ram_below_4g: u64, ram_above_4g: u64) -> Self {
        let mut ram = [0; 128];
        ram[usize::from(REG_A)] = 0x26; // 32.768 kHz time base, 1024 Hz rate
        ram[usize::from(REG_B)] = B_24H; // BCD, 24-hour
        const KIB: u64 = 1024;
        let put16 = |ram: &mut [u8; 128], at: usize, v: u64| {
            let v = v.min(0xFFFF);
            ram[at] = v as u8;
            ram[at + 1] = (v >> 8) as u8;
        };
        put16(&mut ram, 0x15, (ram_below_4g / KIB).min(640)); // base memory, KiB
        let extended = (ram_below_4g / KIB).saturating_sub(1024); // KiB above 1 MiB
        put16(&mut ram, 0x17, extended);
        put16(&mut ram, 0x30, extended);
        let high = ram_below_4g.saturating_sub(16 << 20) / (64 * KIB); // 64 KiB units above 16 MiB
        put16(&mut ram, 0x34, high);
        let above = (ram_above_4g / (64 * KIB)).min(0xFF_FFFF); // 64 KiB units above 4 GiB
        ram[0x5B..0x5E].copy_from_slice(&above.to_le_bytes()[..3]);
        let sum: u16 = ram[0x10..=0x2D].iter().map(|&b| u16::from(b)).sum();
        ram[0x2E..0x30].copy_from_slice(&sum.to_be_bytes());
        Self {
            ram,
            index: 0,
            nmi_masked: false,
            wall: 0,
            offset: 0,
            flags: 0,
        }
    }

    /// Whether `port` belongs to the RTC.
    pub fn decodes(port: u16) -> bool {
        PORTS.iter().any(|r| r.contains(&port))
    }

    fn reg(&self, index: u8) -> u8 {
        self.ram[usize::from(index & 0x7F)]
    }

    fn set_reg(&mut self, index: u8, v: u8) {
        self.ram[usize::from(index & 0x7F)] = v;
    }

    /// Whether the guest disabled NMIs (bit 7 of its last index write).
    pub fn nmi_masked(&self) -> bool {
        self.nmi_masked
    }

    /// The guest's clock in Unix seconds.
    pub fn guest_time(&self) -> u64 {
        let wall = i64::try_from(self.wall).unwrap_or(i64::MAX);
        wall.saturating_add(self.offset).max(0) as u64
    }

    /// Sets the monitor's wall clock (Unix seconds). When the guest's clock reaches a new
    /// second and updates are not stopped, an update cycle ends: UF is set, and AF if the
    /// alarm matches.
    pub fn set_time(&mut self, unix_seconds: u64) {
        let before = self.guest_time();
        self.wall = unix_seconds;
        if self.guest_time() != before && self.reg(REG_B) & B_SET == 0 {
            self.flags |= C_UF;
            let alarm = [
                (SECONDS_ALARM, SECONDS),
                (MINUTES_ALARM, MINUTES),
                (HOURS_ALARM, HOURS),
            ];
            // An alarm byte of 0xC0-0xFF matches any value ("don't care").
            if alarm
                .iter()
                .all(|&(a, t)| self.reg(a) >= 0xC0 || self.reg(a) == self.clock(t))
            {
                self.flags |= C_AF;
            }
        }
    }

    /// The IRQ8 output: register C's IRQF.
    pub fn irq_level(&self) -> bool {
        self.flags & self.reg(REG_B) & B_ENABLES != 0
    }

    /// Drives IRQ8 from [`irq_level`](Self::irq_level). Call after RTC accesses and
    /// [`set_time`](Self::set_time).
    pub fn deliver<S: IrqSink + ?Sized>(&self, sink: &mut S) {
        sink.set_level(IrqLine::RTC, self.irq_level());
    }

    fn encode(&self, v: u8) -> u8 {
        if self.reg(REG_B) & B_BINARY != 0 {
            v
        } else {
            ((v / 10) << 4) | (v % 10)
        }
    }

    fn decode(&self, v: u8) -> i64 {
        let v = i64::from(v);
        if self.reg(REG_B) & B_BINARY != 0 {
            v
        } else {
            (v >> 4) * 10 + (v & 0xF)
        }
    }

    /// Clock register `index` computed from the guest's clock, in the current format.
    fn clock(&self, index: u8) -> u8 {
        let t = self.guest_time();
        let days = (t / 86_400) as i64;
        let secs = (t % 86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        let part = |v: i64| self.encode(v.rem_euclid(100) as u8);
        match index {
            SECONDS => part(i64::from(secs % 60)),
            MINUTES => part(i64::from(secs / 60 % 60)),
            HOURS => {
                let h = (secs / 3600) as u8;
                if self.reg(REG_B) & B_24H != 0 {
                    self.encode(h)
                } else {
                    let h12 = match h % 12 {
                        0 => 12,
                        h12 => h12,
                    };
                    self.encode(h12) | u8::from(h >= 12) << 7
                }
            }
            WEEKDAY => part((days + 4).rem_euclid(7) + 1), // 1970-01-01 was a Thursday; Sunday = 1
            DAY => part(day),
            MONTH => part(month),
            YEAR => part(year),
            _ => part(year.div_euclid(100)),
        }
    }

    /// Copies the running clock into the clock registers (SET turned on, or a write to one).
    fn freeze(&mut self) {
        for i in [SECONDS, MINUTES, HOURS, WEEKDAY, DAY, MONTH, YEAR, CENTURY] {
            self.set_reg(i, self.clock(i));
        }
    }

    /// Makes the time in the clock registers the guest's clock. Out-of-range fields are
    /// clamped or carried, never rejected.
    fn thaw(&mut self) {
        let hours = self.reg(HOURS);
        let hour = if self.reg(REG_B) & B_24H != 0 {
            self.decode(hours)
        } else {
            self.decode(hours & 0x7F) % 12 + if hours & 0x80 != 0 { 12 } else { 0 }
        };
        let year = self.decode(self.reg(CENTURY)) * 100 + self.decode(self.reg(YEAR));
        let month = self.decode(self.reg(MONTH)).clamp(1, 12);
        let day = self.decode(self.reg(DAY)).clamp(1, 31);
        let t = days_from_civil(year, month, day) * 86_400
            + hour * 3600
            + self.decode(self.reg(MINUTES)) * 60
            + self.decode(self.reg(SECONDS));
        let wall = i64::try_from(self.wall).unwrap_or(i64::MAX);
        self.offset = t.saturating_sub(wall);
    }

    /// An `in` from one of [`PORTS`].
    pub fn io_read(&mut self, port: u16, width: Width) -> u32 {
        irq::read_bytes(self, port, width)
    }

    /// An `out` to one of [`PORTS`].
    pub fn io_write(&mut self, port: u16, width: Width, value: u32) {
        irq::write_bytes(self, port, width, value);
    }
}

impl ByteIo for Rtc {
    fn read_byte(&mut self, port: u16) -> u8 {
        if port != DATA {
            return 0xFF; // the index register is write-only
        }
        let running = self.reg(REG_B) & B_SET == 0;
        match self.index {
            REG_A => self.reg(REG_A) & 0x7F,
            REG_C => {
                let c = self.flags | if self.irq_level() { C_IRQF } else { 0 };
                self.flags = 0;
                c
            }
            REG_D => D_VRT,
            i if is_clock(i) && running => self.clock(i),
            i => self.reg(i),
        }
    }

    fn write_byte(&mut self, port: u16, v: u8) {
        match (port, self.index) {
            (INDEX, _) => {
                self.index = v & 0x7F;
                self.nmi_masked = v & 0x80 != 0;
            }
            (DATA, REG_A) => self.set_reg(REG_A, v & 0x7F),
            (DATA, REG_B) => {
                let was_set = self.reg(REG_B) & B_SET != 0;
                let v = if v & B_SET != 0 { v & !B_UIE } else { v };
                self.set_reg(REG_B, v);
                match (was_set, v & B_SET != 0) {
                    (false, true) => self.freeze(),
                    (true, false) => self.thaw(),
                    _ => {}
                }
            }
            (DATA, REG_C | REG_D) => {} // read-only
            (DATA, i) if is_clock(i) && self.reg(REG_B) & B_SET == 0 => {
                self.freeze();
                self.set_reg(i, v);
                self.thaw();
            }
            (DATA, i) => self.set_reg(i, v),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
