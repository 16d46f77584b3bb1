// SPDX-License-Identifier: MIT OR Apache-2.0
//! The ACPI fixed-hardware power-management registers of a PC platform that is not
//! hardware-reduced (ACPI 6.5, section 4.8 "ACPI Hardware Features"), at ports 0x600-0x60F:
//!
//! | port  | register | width | spec |
//! |-------|----------|-------|------|
//! | 0x600 | PM1a_STS | 16 | 4.8.3.1.1 |
//! | 0x602 | PM1a_EN  | 16 | 4.8.3.1.2 |
//! | 0x604 | PM1a_CNT | 16 | 4.8.3.2.1 |
//! | 0x608 | PM_TMR   | 32 | 4.8.3.3 |
//! | 0x60C | RESET_REG | 8 | 4.8.3.6 |
//!
//! Other ports of the block read 0 and ignore writes. Registers are byte-addressable: a wide
//! access is split into byte cycles as the chipset would (`irq::read_bytes`), so any width at any
//! port is defined.
//!
//! - PM1 status bits are write-1-to-clear. TMR_STS is set each time bit 31 of the timer changes;
//!   PWRBTN_STS by [`Pm::press_power_button`]. The SCI ([`Pm::sci_level`], ISA IRQ 9, level,
//!   active low) is asserted while a status bit is set whose enable bit is set (4.8.2.1).
//! - PM1 enable: every defined enable bit sticks (TMR_EN, GBL_EN, PWRBTN_EN, SLPBTN_EN,
//!   RTC_EN, PCIEXP_WAKE_DIS), so an OS that enables an event reads back what it wrote (ACPICA
//!   reports an error otherwise); only TMR and PWRBTN ever set their status bits. No firmware
//!   contends for the FACS global lock, so GBL_STS is never set and GBL_RLS does nothing.
//! - PM1 control: SCI_EN reads 1 (the platform is always in ACPI mode, the FADT has no SMI
//!   command port); BM_RLD and SLP_TYP are kept; SLP_EN and GBL_RLS are write-only and read 0.
//!   Writing SLP_EN with SLP_TYP = [`S5_SLP_TYP`] (the `\_S5` value the DSDT reports) powers the
//!   guest off ([`Effect::PowerOff`]); any other sleep type is refused (logged, no effect), as
//!   the DSDT offers no other sleep state.
//! - The PM timer is a free-running 32-bit counter at 3.579545 MHz (the FADT sets TMR_VAL_EXT),
//!   a pure function of guest time: `floor(ns * 3579545 / 10^9) mod 2^32`.
//! - Writing [`RESET_VALUE`] to the reset register resets the system ([`Effect::Reset`]).
//!
//! Time is an input, as for the PIT: the monitor calls [`Pm::advance`] with the guest's time
//! before it dispatches an access, and every read uses that time.

mod state;

use core::ops::RangeInclusive;

use super::irq::{self, ByteIo};
use super::state::{DeviceId, StateError, StateReader, StateWriter};
use super::{Effect, PortDevice};
use crate::vmm::vcpu::Width;

/// First port of the block.
pub const BASE: u16 = 0x600;
/// Last port the block decodes.
pub const LAST: u16 = BASE + 0xF;
/// PM1a event block: status (2 bytes) then enable (2 bytes).
pub const PM1A_EVT: u16 = BASE;
/// Length of the PM1 event block in bytes (FADT PM1_EVT_LEN).
pub const PM1_EVT_LEN: u8 = 4;
/// PM1a control block.
pub const PM1A_CNT: u16 = BASE + 4;
/// Length of the PM1 control block in bytes (FADT PM1_CNT_LEN).
pub const PM1_CNT_LEN: u8 = 2;
/// PM timer block.
pub const PM_TMR: u16 = BASE + 8;
/// Length of the PM timer block in bytes (FADT PM_TMR_LEN).
pub const PM_TMR_LEN: u8 = 4;
/// The reset register (FADT RESET_REG, one byte in system I/O space).
pub const RESET: u16 = BASE + 0xC;
/// The value that resets the system when written to [`RESET`] (FADT RESET_VALUE).
pub const RESET_VALUE: u8 = 0x06;
/// SLP_TYP of the soft-off state S5, as the DSDT's `\_S5` package reports it.
pub const S5_SLP_TYP: u8 = 5;
/// PM timer frequency in Hz (ACPI 6.5, 4.8.3.3).
pub const TIMER_HZ: u64 = 3_579_545;
/// The SCI's ISA IRQ (FADT SCI_INT).
pub const SCI_IRQ: u8 = 9;

/// PM1_STS / PM1_EN: timer carry (bit 31 of the timer changed).
pub const TMR: u16 = 1 << 0;
/// PM1_EN: global lock release enable.
pub const GBL_EN: u16 = 1 << 5;
/// PM1_STS / PM1_EN: power button.
pub const PWRBTN: u16 = 1 << 8;
/// PM1_EN: sleep button enable.
pub const SLPBTN_EN: u16 = 1 << 9;
/// PM1_EN: RTC alarm enable.
pub const RTC_EN: u16 = 1 << 10;
/// PM1_EN: PCI Express wake disable.
pub const PCIEXP_WAKE_DIS: u16 = 1 << 14;
/// PM1_CNT: the SCI, not an SMI, signals power-management events.
pub const SCI_EN: u16 = 1 << 0;
/// PM1_CNT: bus-master requests take the CPU out of C3.
pub const BM_RLD: u16 = 1 << 1;
/// PM1_CNT: the sleep type field, bits 10-12.
pub const SLP_TYP_MASK: u16 = 7 << SLP_TYP_SHIFT;
/// PM1_CNT: bit position of SLP_TYP.
pub const SLP_TYP_SHIFT: u16 = 10;
/// PM1_CNT: enter the sleep state in SLP_TYP (write-only).
pub const SLP_EN: u16 = 1 << 13;

/// PM1_EN bits that stick: every defined one (4.8.3.1.2, Table 4.17).
const EN_WRITABLE: u16 = TMR | GBL_EN | PWRBTN | SLPBTN_EN | RTC_EN | PCIEXP_WAKE_DIS;
/// PM1_STS bits held in state (TMR_STS is computed from time).
const STS_STORED: u16 = PWRBTN;
/// PM1_CNT bits held in state (SCI_EN is constant).
const CNT_STORED: u16 = BM_RLD | SLP_TYP_MASK;

/// PM timer ticks (not wrapped) at guest time `ns`.
fn ticks_at(ns: u64) -> u64 {
    // At most 2^64 * 2^22 / 10^9: below 2^64.
    (u128::from(ns) * u128::from(TIMER_HZ) / 1_000_000_000) as u64
}

/// How many times bit 31 of the timer has changed by guest time `ns`.
fn carries_at(ns: u64) -> u64 {
    ticks_at(ns) >> 31
}

/// The power-management registers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pm {
    /// Guest time of the last [`advance`](Self::advance), in ns.
    now: u64,
    /// PM1_STS bits other than TMR_STS.
    sts: u16,
    /// PM1_EN.
    en: u16,
    /// PM1_CNT's stored bits.
    cnt: u16,
    /// Timer carries up to the last clear of TMR_STS: it reads 1 while there are more now.
    carries_seen: u64,
    /// The effect of the byte writes of the access in progress.
    effect: Option<Effect>,
}

impl Pm {
    /// The registers at power-on, at guest time 0: nothing enabled, no status.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `port` belongs to the block.
    pub fn decodes(port: u16) -> bool {
        (BASE..=LAST).contains(&port)
    }

    /// Moves guest time to `now_ns` (earlier times are ignored: time is monotonic).
    pub fn advance(&mut self, now_ns: u64) {
        self.now = self.now.max(now_ns);
    }

    /// Guest time of the last [`advance`](Self::advance), in ns.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The PM timer's value at the time of the last advance.
    pub fn timer(&self) -> u32 {
        ticks_at(self.now) as u32
    }

    /// PM1_STS as the guest reads it.
    pub fn status(&self) -> u16 {
        let tmr = carries_at(self.now) > self.carries_seen;
        self.sts | if tmr { TMR } else { 0 }
    }

    /// PM1_EN as the guest reads it.
    pub fn enable(&self) -> u16 {
        self.en
    }

    /// PM1_CNT as the guest reads it.
    pub fn control(&self) -> u16 {
        self.cnt | SCI_EN
    }

    /// The power button was pressed (e.g. the host asks the guest to shut down cleanly):
    /// sets PWRBTN_STS, which raises the SCI if the guest enabled PWRBTN_EN.
    pub fn press_power_button(&mut self) {
        self.sts |= PWRBTN;
    }

    /// Whether the SCI is asserted: an enabled status bit is set. The line is level triggered
    /// and stays asserted until the guest clears the status or the enable bit.
    pub fn sci_level(&self) -> bool {
        self.status() & self.en != 0
    }

    /// Guest time (ns) at which TMR_STS is next set, if the guest enabled the timer's SCI and
    /// it is not pending already: when to look at [`sci_level`](Self::sci_level) again.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.en & TMR == 0 || self.status() & TMR != 0 {
            return None;
        }
        let tick = (carries_at(self.now) + 1) << 31;
        let ns = (u128::from(tick) * 1_000_000_000).div_ceil(u128::from(TIMER_HZ));
        Some(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// An `in` from one of the block's ports, at the time of the last advance.
    pub fn io_read(&mut self, port: u16, width: Width) -> u32 {
        irq::read_bytes(self, port, width)
    }

    /// An `out` to one of the block's ports, at the time of the last advance.
    pub fn io_write(&mut self, port: u16, width: Width, value: u32) -> Effect {
        self.effect = None;
        irq::write_bytes(self, port, width, value);
        self.effect.take().unwrap_or(Effect::None)
    }

    /// The high byte of PM1_CNT was written: keep SLP_TYP, act on SLP_EN.
    fn write_control_high(&mut self, v: u8) {
        let v = u16::from(v) << 8;
        self.cnt = (self.cnt & !SLP_TYP_MASK) | (v & SLP_TYP_MASK);
        if v & SLP_EN == 0 {
            return;
        }
        let typ = ((v & SLP_TYP_MASK) >> SLP_TYP_SHIFT) as u8;
        if typ == S5_SLP_TYP {
            self.effect.get_or_insert(Effect::PowerOff);
        } else {
            log::warn!("ACPI PM: refused sleep type {typ} (only S5 = {S5_SLP_TYP} is supported)");
        }
    }
}

impl ByteIo for Pm {
    fn read_byte(&mut self, port: u16) -> u8 {
        let reg = |v: u16, high: bool| if high { (v >> 8) as u8 } else { v as u8 };
        match port.wrapping_sub(BASE) {
            o @ 0..=1 => reg(self.status(), o == 1),
            o @ 2..=3 => reg(self.enable(), o == 3),
            o @ 4..=5 => reg(self.control(), o == 5),
            o @ 8..=11 => (self.timer() >> (8 * (o - 8))) as u8,
            0..=0xF => 0, // reserved, and the reset register reads 0
            _ => 0xFF,    // beyond the block (a wide access at its end)
        }
    }

    fn write_byte(&mut self, port: u16, v: u8) {
        let (lo, hi) = (u16::from(v), u16::from(v) << 8);
        match port.wrapping_sub(BASE) {
            0 => {
                if lo & TMR != 0 {
                    self.carries_seen = carries_at(self.now);
                }
                self.sts &= !lo;
            }
            1 => self.sts &= !hi,
            2 => self.en = (self.en & 0xFF00) | (lo & EN_WRITABLE),
            3 => self.en = (self.en & 0x00FF) | (hi & EN_WRITABLE),
            4 => self.cnt = (self.cnt & 0xFF00) | (lo & CNT_STORED),
            5 => self.write_control_high(v),
            0xC if v == RESET_VALUE => {
                self.effect.get_or_insert(Effect::Reset);
            }
            _ => {} // read-only timer, reserved ports, other reset values
        }
    }
}

impl PortDevice for Pm {
    fn ports(&self) -> RangeInclusive<u16> {
        BASE..=LAST
    }

    fn read(&mut self, port: u16, width: Width) -> u32 {
        self.io_read(port, width)
    }

    fn write(&mut self, port: u16, width: Width, value: u32) -> Effect {
        self.io_write(port, width, value)
    }

    fn state_id(&self) -> Option<DeviceId> {
        Some(DeviceId::acpi_pm(BASE))
    }

    fn save_state(&self, w: &mut StateWriter) {
        super::state::DeviceState::save_state(self, w);
    }

    fn restore_state(&mut self, r: &mut StateReader<'_>) -> Result<(), StateError> {
        *self = <Self as super::state::DeviceState>::restore_state(r)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
