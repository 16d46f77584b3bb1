// SPDX-License-Identifier: MIT OR Apache-2.0
//! The PC/AT pair of 8259A programmable interrupt controllers: master at ports 0x20-0x21 (IRQ0-7),
//! slave at 0xA0-0xA1 (IRQ8-15) cascaded into the master's IR2, and the PIIX edge/level control
//! registers (ELCR) at 0x4D0-0x4D1. Register behaviour follows the Intel 8259A datasheet (order
//! no. 231468): "Initialization Command Words", "Operation Command Words", "Interrupt Sequence",
//! "The Fully Nested Mode", "Special Mask Mode", "Edge and Level Triggered Modes".
//!
//! Modelled: ICW1-ICW4 (single or cascade, ICW4 optional, LTIM, auto-EOI with rotation, special
//! fully nested mode), OCW1 (IMR), every OCW2 command (EOI, specific EOI, rotations, set
//! priority), OCW3 (IRR/ISR read select, poll, special mask). Not modelled: 8080 call sequences
//! (ICW4 bit 0 is taken as 1, 8086 mode) and buffered mode (ICW4 bits 2-3), which change nothing
//! a guest can observe.
//!
//! Inputs are edge-triggered unless LTIM or the line's ELCR bit makes them level-triggered. An
//! edge input latches a request in IRR on a low-to-high transition and keeps it until INTA, so a
//! short pulse is enough (as on PIIX chipsets and in QEMU); the line must go low and high again to
//! request again. A level input requests while high. The slave's INT output drives the master's
//! IR2 like an edge input that also requests while INT is high. If the request that raised INT is
//! gone at INTA (a level line dropped, or the guest masked it), the chip answers with its IR7
//! vector without setting ISR: spurious IRQ7 or IRQ15 ("Interrupt Sequence", step 4).
//!
//! After [`Pic::new`] the pair is in the state a PC BIOS leaves it in: initialized, vector bases
//! 0x08 and 0x70, every line masked except the cascade.

mod state;

use core::ops::RangeInclusive;

use super::irq::{self, ByteIo, IrqLine, IrqSink};
use crate::vmm::vcpu::Width;

/// Command/status port of the master; the data (IMR) port is the next one.
pub const MASTER: u16 = 0x20;
/// Command/status port of the slave.
pub const SLAVE: u16 = 0xA0;
/// ELCR of the master; the slave's is the next port.
pub const ELCR: u16 = 0x4D0;
/// Every port the pair decodes.
pub const PORTS: [RangeInclusive<u16>; 3] =
    [MASTER..=MASTER + 1, SLAVE..=SLAVE + 1, ELCR..=ELCR + 1];

/// The master IR the slave is wired to.
const CASCADE_IR: u8 = 2;

/// Where a chip is in its initialization sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Init {
    Ready,
    Icw2,
    Icw3,
    Icw4,
}

/// One 8259A.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chip {
    /// ICW2 bits 7-3: vector of IR0.
    base: u8,
    /// Latched edge requests.
    irr: u8,
    /// Current input levels.
    levels: u8,
    isr: u8,
    imr: u8,
    /// Level-triggered lines (PIIX ELCR), and the ELCR bits the chipset lets software set.
    elcr: u8,
    elcr_writable: u8,
    /// ICW1 LTIM: every line level-triggered.
    ltim: bool,
    init: Init,
    single: bool,
    icw4_needed: bool,
    icw3: u8,
    auto_eoi: bool,
    rotate_on_auto_eoi: bool,
    special_fully_nested: bool,
    /// The level with the lowest priority (7 after initialization); the next one is the highest.
    lowest: u8,
    read_isr: bool,
    poll: bool,
    special_mask: bool,
}

fn bit(level: u8) -> u8 {
    1 << (level & 7)
}

impl Chip {
    fn new(base: u8, imr: u8, elcr_writable: u8) -> Self {
        Self {
            base,
            irr: 0,
            levels: 0,
            isr: 0,
            imr,
            elcr: 0,
            elcr_writable,
            ltim: false,
            init: Init::Ready,
            single: false,
            icw4_needed: true,
            icw3: 0,
            auto_eoi: false,
            rotate_on_auto_eoi: false,
            special_fully_nested: false,
            lowest: 7,
            read_isr: false,
            poll: false,
            special_mask: false,
        }
    }

    /// Priority rank of `level`: 0 is the highest ("Priority Rotation").
    fn rank(&self, level: u8) -> u8 {
        level.wrapping_sub(self.lowest).wrapping_sub(1) & 7
    }

    /// The highest-priority level set in `bits`.
    fn highest(&self, bits: u8) -> Option<u8> {
        if bits == 0 {
            // The common case, on every VM entry: nothing requested.
            return None;
        }
        (1..=8)
            .map(|i| self.lowest.wrapping_add(i) & 7)
            .find(|&l| bits & bit(l) != 0)
    }

    fn set_level(&mut self, level: u8, high: bool) {
        if high && self.levels & bit(level) == 0 {
            self.irr |= bit(level);
        }
        if high {
            self.levels |= bit(level);
        } else {
            self.levels &= !bit(level);
        }
    }

    /// IRR as the priority resolver sees it. `cascade`: on a master in cascade mode, whether the
    /// slave's INT is high (IR2 then requests while INT is high, or once latched by its edge).
    fn requests(&self, cascade: Option<bool>) -> u8 {
        let level_mask = if self.ltim { 0xFF } else { self.elcr };
        let r = (self.irr & !level_mask) | (self.levels & level_mask);
        match cascade {
            Some(int) if int || self.irr & bit(CASCADE_IR) != 0 => r | bit(CASCADE_IR),
            Some(_) => r & !bit(CASCADE_IR),
            None => r,
        }
    }

    /// The level INT is raised for: the highest unmasked request with a higher priority than
    /// every level in service ("The Fully Nested Mode", "Special Mask Mode").
    fn output(&self, requests: u8) -> Option<u8> {
        if self.init != Init::Ready {
            return None;
        }
        let level = self.highest(requests & !self.imr)?;
        let mut blocking = self.isr;
        if self.special_mask {
            blocking &= !self.imr;
        }
        if self.special_fully_nested && level == CASCADE_IR && !self.single {
            blocking &= !bit(CASCADE_IR);
        }
        match self.highest(blocking) {
            Some(s) if self.rank(s) <= self.rank(level) => None,
            _ => Some(level),
        }
    }

    /// The INTA (or poll) that accepts `level`: clears its edge latch and marks it in service,
    /// unless in auto-EOI mode.
    fn accept(&mut self, level: u8) {
        self.irr &= !bit(level);
        if !self.auto_eoi {
            self.isr |= bit(level);
        } else if self.rotate_on_auto_eoi {
            self.lowest = level;
        }
    }

    /// ICW1 (datasheet: "Initialization Command Words"): restarts the sequence and resets the
    /// edge sense, IMR, priorities, special mask and read select. ISR is cleared too, as QEMU
    /// does, so a re-initialized chip holds no stale in-service level.
    fn icw1(&mut self, v: u8) {
        *self = Self {
            base: self.base,
            levels: self.levels,
            elcr: self.elcr,
            ltim: v & 0x08 != 0,
            init: Init::Icw2,
            single: v & 0x02 != 0,
            icw4_needed: v & 0x01 != 0,
            imr: 0,
            ..Self::new(self.base, 0, self.elcr_writable)
        };
    }

    /// OCW2 (datasheet Figure 8): EOI, rotation and priority commands.
    fn ocw2(&mut self, v: u8) {
        let level = v & 7;
        match v >> 5 {
            0b000 => self.rotate_on_auto_eoi = false,
            0b100 => self.rotate_on_auto_eoi = true,
            0b001 | 0b101 => {
                if let Some(l) = self.highest(self.isr) {
                    self.isr &= !bit(l);
                    if v >> 5 == 0b101 {
                        self.lowest = l;
                    }
                }
            }
            0b011 => self.isr &= !bit(level),
            0b111 => {
                self.isr &= !bit(level);
                self.lowest = level;
            }
            0b110 => self.lowest = level,
            _ => {} // 0b010: no operation
        }
    }

    /// OCW3 (datasheet Figure 8): read register select, poll, special mask mode.
    fn ocw3(&mut self, v: u8) {
        if v & 0x02 != 0 {
            self.read_isr = v & 0x01 != 0;
        }
        if v & 0x04 != 0 {
            self.poll = true;
        }
        if v & 0x40 != 0 {
            self.special_mask = v & 0x20 != 0;
        }
    }

    /// A write with A0 = 0.
    fn write_command(&mut self, v: u8) {
        if v & 0x10 != 0 {
            self.icw1(v);
        } else if v & 0x08 != 0 {
            self.ocw3(v);
        } else {
            self.ocw2(v);
        }
    }

    /// A write with A0 = 1: the next ICW, or OCW1.
    fn write_data(&mut self, v: u8) {
        self.init = match self.init {
            Init::Icw2 => {
                self.base = v & 0xF8;
                match (self.single, self.icw4_needed) {
                    (false, _) => Init::Icw3,
                    (true, true) => Init::Icw4,
                    (true, false) => Init::Ready,
                }
            }
            Init::Icw3 => {
                self.icw3 = v;
                if self.icw4_needed {
                    Init::Icw4
                } else {
                    Init::Ready
                }
            }
            Init::Icw4 => {
                self.auto_eoi = v & 0x02 != 0;
                self.special_fully_nested = v & 0x10 != 0;
                Init::Ready
            }
            Init::Ready => {
                self.imr = v;
                Init::Ready
            }
        };
    }

    /// A read with A0 = `a0`; after a poll command, the poll word ("The Poll Command").
    fn read(&mut self, a0: bool, cascade: Option<bool>) -> u8 {
        if self.poll {
            self.poll = false;
            return match self.output(self.requests(cascade)) {
                Some(level) => {
                    self.accept(level);
                    0x80 | level
                }
                None => 0,
            };
        }
        match (a0, self.read_isr) {
            (true, _) => self.imr,
            (false, true) => self.isr,
            (false, false) => self.requests(cascade),
        }
    }
}

/// The master/slave 8259A pair with its ELCRs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pic {
    master: Chip,
    slave: Chip,
    /// The slave's INT as last seen, to latch its rising edges on the master's IR2.
    slave_int: bool,
}

impl Default for Pic {
    fn default() -> Self {
        Self::new()
    }
}

impl Pic {
    /// The pair as a BIOS leaves it: bases 0x08 and 0x70, all lines masked but the cascade,
    /// edge-triggered. PIIX reserves ELCR bits for IRQ0-2, 8 and 13 (always edge).
    pub fn new() -> Self {
        Self {
            master: Chip::new(0x08, !bit(CASCADE_IR), 0xF8),
            slave: Chip::new(0x70, 0xFF, 0xDE),
            slave_int: false,
        }
    }

    /// Whether `port` belongs to the pair.
    pub fn decodes(port: u16) -> bool {
        PORTS.iter().any(|r| r.contains(&port))
    }

    fn cascaded(&self) -> bool {
        !self.master.single
    }

    /// The master's view of the slave's INT, in cascade mode.
    fn cascade_input(&self) -> Option<bool> {
        self.cascaded().then_some(self.slave_int)
    }

    /// Recomputes the slave's INT after any change and latches its rising edge on IR2.
    fn update(&mut self) {
        let int = self.slave.output(self.slave.requests(None)).is_some();
        if int && !self.slave_int && self.cascaded() {
            self.master.irr |= bit(CASCADE_IR);
        }
        self.slave_int = int;
    }

    /// Drives `line` high.
    pub fn raise(&mut self, line: IrqLine) {
        self.set_line(line, true);
    }

    /// Drives `line` low.
    pub fn lower(&mut self, line: IrqLine) {
        self.set_line(line, false);
    }

    fn set_line(&mut self, line: IrqLine, high: bool) {
        match line.number() {
            // In cascade mode the master's IR2 belongs to the slave; the ISA bus's IRQ2 pin is
            // wired to IRQ9 on the AT, so nothing drives this line.
            n if n == CASCADE_IR && self.cascaded() => {}
            n @ 0..=7 => self.master.set_level(n, high),
            n => self.slave.set_level(n - 8, high),
        }
        self.update();
    }

    /// The vector the pair would hand the CPU if it acknowledged now, given IMR, ISR and the
    /// priorities; `None` while INT is low. A slave request gives the slave's vector.
    #[inline]
    pub fn pending_vector(&self) -> Option<u8> {
        // The common case on every VM entry, without the priority resolution: no unmasked
        // request at the master. Its requests are edges latched in IRR, levels held, and the
        // slave's INT on IR2.
        let cascade = if self.slave_int { bit(CASCADE_IR) } else { 0 };
        if (self.master.irr | self.master.levels | cascade) & !self.master.imr == 0 {
            return None;
        }
        self.resolve()
    }

    /// [`pending_vector`](Self::pending_vector) with some unmasked request: the priority
    /// resolution.
    fn resolve(&self) -> Option<u8> {
        let level = self
            .master
            .output(self.master.requests(self.cascade_input()))?;
        if level == CASCADE_IR && self.cascaded() {
            let slave = self.slave.output(self.slave.requests(None)).unwrap_or(7);
            Some(self.slave.base | slave)
        } else {
            Some(self.master.base | level)
        }
    }

    /// The INTA cycle: the highest request goes from IRR to ISR (unless in auto-EOI mode) and its
    /// vector is returned; a cascaded request is then resolved by the slave. With no request at
    /// INTA a chip answers with its IR7 vector and sets nothing in service (the master still marks
    /// IR2 in service when the slave's request vanished). `None` while the master is being
    /// initialized. The CPU only runs INTA after seeing INT, so call this after
    /// [`pending_vector`](Self::pending_vector) returned a vector.
    pub fn acknowledge(&mut self) -> Option<u8> {
        if self.master.init != Init::Ready {
            return None;
        }
        let vector = match self
            .master
            .output(self.master.requests(self.cascade_input()))
        {
            None => self.master.base | 7,
            Some(level) => {
                self.master.accept(level);
                if level == CASCADE_IR && self.cascaded() {
                    match self.slave.output(self.slave.requests(None)) {
                        Some(s) => {
                            self.slave.accept(s);
                            self.slave.base | s
                        }
                        None => self.slave.base | 7,
                    }
                } else {
                    self.master.base | level
                }
            }
        };
        self.update();
        Some(vector)
    }

    /// IRR of both chips as the guest would read it (slave in bits 8-15).
    pub fn irr(&self) -> u16 {
        let m = self.master.requests(self.cascade_input());
        u16::from(self.slave.requests(None)) << 8 | u16::from(m)
    }

    /// ISR of both chips (slave in bits 8-15).
    pub fn isr(&self) -> u16 {
        u16::from(self.slave.isr) << 8 | u16::from(self.master.isr)
    }

    /// IMR of both chips (slave in bits 8-15).
    pub fn imr(&self) -> u16 {
        u16::from(self.slave.imr) << 8 | u16::from(self.master.imr)
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

impl ByteIo for Pic {
    fn read_byte(&mut self, port: u16) -> u8 {
        let cascade = self.cascade_input();
        let v = match port {
            MASTER | 0x21 => self.master.read(port & 1 != 0, cascade),
            SLAVE | 0xA1 => self.slave.read(port & 1 != 0, None),
            ELCR => self.master.elcr,
            0x4D1 => self.slave.elcr,
            _ => 0xFF,
        };
        self.update(); // a poll acknowledges
        v
    }

    fn write_byte(&mut self, port: u16, v: u8) {
        match port {
            MASTER => self.master.write_command(v),
            0x21 => self.master.write_data(v),
            SLAVE => self.slave.write_command(v),
            0xA1 => self.slave.write_data(v),
            ELCR => self.master.elcr = v & self.master.elcr_writable,
            0x4D1 => self.slave.elcr = v & self.slave.elcr_writable,
            _ => {}
        }
        self.update();
    }
}

impl IrqSink for Pic {
    fn set_level(&mut self, line: IrqLine, high: bool) {
        self.set_line(line, high);
    }

    fn is_requested(&self, line: IrqLine) -> bool {
        self.irr() & (1 << line.number()) != 0
    }
}

#[cfg(test)]
mod tests;
