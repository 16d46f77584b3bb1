// SPDX-License-Identifier: MIT OR Apache-2.0
//! I/O APIC (Intel 82093AA datasheet, section 3): identified and fully masked at boot; drivers
//! route their lines later ([`route`]), with the MADT's interrupt source overrides (ACPI 6.5,
//! 5.2.12.5) applied to ISA IRQ numbers ([`isa_line`]).

use alloc::vec::Vec;

use super::instr;

const REG_ID: u32 = 0x00;
const REG_VERSION: u32 = 0x01;
const REG_REDIRECTION_BASE: u32 = 0x10;
const REDIRECTION_MASKED: u32 = 1 << 16;
/// Redirection entry: interrupt input pin polarity low active (82093AA, 3.2.4, bit 13).
const REDIRECTION_ACTIVE_LOW: u32 = 1 << 13;
/// Redirection entry: level-triggered (bit 15).
const REDIRECTION_LEVEL: u32 = 1 << 15;

/// An ISA IRQ the firmware connects to a different GSI or with other electrical properties
/// (MADT Interrupt Source Override, ACPI 6.5, 5.2.12.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceOverride {
    /// ISA IRQ.
    pub irq: u8,
    /// Global system interrupt it arrives at.
    pub gsi: u32,
    /// MPS INTI flags: polarity bits 1..0, trigger mode bits 3..2 (ACPI 6.5, Table 5.50).
    pub flags: u16,
}

/// An interrupt input: which GSI, and how it signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// Global system interrupt.
    pub gsi: u32,
    /// Level-triggered (else edge).
    pub level: bool,
    /// Active low (else active high).
    pub active_low: bool,
}

/// The I/O APICs and overrides the platform code found (set once, by `platform::discover`).
static PLATFORM: spin::Once<(Vec<IoApic>, Vec<SourceOverride>)> = spin::Once::new();

/// Records the machine's I/O APICs and interrupt source overrides for [`route`].
pub fn register(ioapics: &[IoApic], overrides: Vec<SourceOverride>) {
    PLATFORM.call_once(|| (ioapics.to_vec(), overrides));
}

/// Where ISA IRQ `irq`, used as a PCI INTx line, arrives: identity GSI unless overridden;
/// "conforms to the bus" polarity and trigger mean PCI's, level-triggered active-low (PCI 3.0,
/// 2.2.6), overridden by the MADT flags when they say otherwise.
pub fn isa_line(irq: u8) -> Line {
    let found = PLATFORM
        .get()
        .and_then(|(_, o)| o.iter().find(|o| o.irq == irq).copied());
    let (gsi, flags) = found.map_or((u32::from(irq), 0), |o| (o.gsi, o.flags));
    Line {
        gsi,
        level: flags & 0b1100 != 0b0100,
        active_low: flags & 0b11 != 0b01,
    }
}

/// Points `line` at `vector` on the local APIC `dest_apic_id` (fixed delivery, physical
/// destination mode) and unmasks it.
pub fn route(line: Line, vector: u8, dest_apic_id: u8) -> Result<(), &'static str> {
    let (ioapics, _) = PLATFORM.get().ok_or("no I/O APIC described by ACPI")?;
    let (io, pin) = ioapics
        .iter()
        .find_map(|io| {
            let pin = line.gsi.checked_sub(io.gsi_base)?;
            (pin < io.pins()).then_some((io, pin))
        })
        .ok_or("no I/O APIC serves the interrupt's GSI")?;
    let mut low = u32::from(vector);
    if line.level {
        low |= REDIRECTION_LEVEL;
    }
    if line.active_low {
        low |= REDIRECTION_ACTIVE_LOW;
    }
    io.write(REG_REDIRECTION_BASE + 2 * pin, REDIRECTION_MASKED);
    io.write(
        REG_REDIRECTION_BASE + 2 * pin + 1,
        u32::from(dest_apic_id) << 24,
    );
    io.write(REG_REDIRECTION_BASE + 2 * pin, low);
    Ok(())
}

/// One I/O APIC, as described by the MADT.
#[derive(Debug, Clone, Copy)]
pub struct IoApic {
    /// Physical (identity-mapped) base of its registers.
    pub base: u64,
    /// First global system interrupt it serves.
    pub gsi_base: u32,
}

/// Held across each IOREGSEL-then-IOWIN pair: a line can be moved from any CPU (the
/// checkpoint pipeline's takes its link NIC's), and another CPU's select between the two
/// accesses would redirect them to the wrong register. No interrupt handler touches an I/O
/// APIC (level-triggered lines end with the local APIC's EOI broadcast).
static SELECT: spin::Mutex<()> = spin::Mutex::new(());

impl IoApic {
    fn read(&self, reg: u32) -> u32 {
        let _selected = SELECT.lock();
        // SAFETY: `base` comes from the MADT and is mapped uncached; IOREGSEL is at +0 and IOWIN
        // at +0x10, and `SELECT` keeps other CPUs from selecting in between.
        unsafe {
            instr::mmio_write32(self.base, reg);
            instr::mmio_read32(self.base + 0x10)
        }
    }

    fn write(&self, reg: u32, value: u32) {
        let _selected = SELECT.lock();
        // SAFETY: as in `read`.
        unsafe {
            instr::mmio_write32(self.base, reg);
            instr::mmio_write32(self.base + 0x10, value);
        }
    }

    /// APIC id from the ID register (bits 24..27).
    pub fn id(&self) -> u32 {
        (self.read(REG_ID) >> 24) & 0xF
    }

    /// Number of redirection entries (pins).
    pub fn pins(&self) -> u32 {
        ((self.read(REG_VERSION) >> 16) & 0xFF) + 1
    }

    /// Masks every pin.
    pub fn mask_all(&self) {
        for pin in 0..self.pins() {
            self.write(REG_REDIRECTION_BASE + 2 * pin, REDIRECTION_MASKED);
            self.write(REG_REDIRECTION_BASE + 2 * pin + 1, 0);
        }
    }
}
