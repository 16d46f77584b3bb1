// SPDX-License-Identifier: MIT OR Apache-2.0
//! Enumeration of PCI functions, their BARs and capabilities.

use alloc::vec::Vec;

use super::{Address, ConfigSpace, reg};

/// A base address register, sized (PCI 3.0, 6.2.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bar {
    /// Not implemented.
    None,
    /// Memory space.
    Memory {
        /// Physical base address.
        base: u64,
        /// Size in bytes.
        size: u64,
        /// 64-bit BAR (occupies this slot and the next).
        wide: bool,
        /// Prefetchable.
        prefetchable: bool,
    },
    /// I/O space.
    Io {
        /// First port.
        port: u16,
        /// Number of ports.
        size: u16,
    },
}

/// A capability in the function's list (PCI 3.0, 6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    /// Capability ID (0x05 MSI, 0x09 vendor specific, 0x10 PCI Express, 0x11 MSI-X, ...).
    pub id: u8,
    /// Offset of the capability in configuration space.
    pub offset: u8,
}

/// Capability ID of MSI.
pub const CAP_MSI: u8 = 0x05;
/// Capability ID of vendor-specific capabilities (virtio uses these).
pub const CAP_VENDOR: u8 = 0x09;
/// Capability ID of MSI-X.
pub const CAP_MSIX: u8 = 0x11;

/// One PCI function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Where it is.
    pub address: Address,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Class code.
    pub class: u8,
    /// Subclass.
    pub subclass: u8,
    /// Programming interface.
    pub prog_if: u8,
    /// Header type (0 device, 1 PCI-to-PCI bridge), without the multifunction bit.
    pub header_type: u8,
    /// Legacy interrupt line as routed by firmware (0xFF: none).
    pub irq_line: u8,
    /// Legacy interrupt pin (0 none, 1..4 INTA#..INTD#).
    pub irq_pin: u8,
    /// The six BARs (bridges have two).
    pub bars: [Bar; 6],
    /// Capabilities.
    pub capabilities: Vec<Capability>,
}

impl Device {
    /// The capability with `id`, if the function has one.
    pub fn capability(&self, id: u8) -> Option<Capability> {
        self.capabilities.iter().copied().find(|c| c.id == id)
    }

    /// A short description of the class, for the boot listing.
    pub fn class_name(&self) -> &'static str {
        match (self.class, self.subclass) {
            (0x01, _) => "storage",
            (0x02, 0x00) => "ethernet",
            (0x02, _) => "network",
            (0x03, _) => "display",
            (0x06, 0x00) => "host bridge",
            (0x06, 0x01) => "ISA bridge",
            (0x06, 0x04) => "PCI bridge",
            (0x06, _) => "bridge",
            (0x0C, 0x03) => "USB",
            (0x0C, 0x05) => "SMBus",
            _ => "other",
        }
    }

    /// Sets command-register bits (memory/I/O decode, bus mastering).
    pub fn enable(&self, cfg: &dyn ConfigSpace, bits: u16) {
        let command = cfg.read16(self.address, reg::COMMAND);
        cfg.write16(self.address, reg::COMMAND, command | bits);
    }
}

/// Sizes BAR `index` by writing all ones and reading back, with decoding off meanwhile, then
/// restores it. Returns the BAR and how many slots it used (2 for a 64-bit BAR).
fn size_bar(cfg: &dyn ConfigSpace, at: Address, index: usize) -> (Bar, usize) {
    let offset = reg::BAR0 + 4 * index as u16;
    let original = cfg.read32(at, offset);
    if original & 1 == 1 {
        cfg.write32(at, offset, u32::MAX);
        let mask = cfg.read32(at, offset) & !0x3;
        cfg.write32(at, offset, original);
        let size = (!mask).wrapping_add(1) & 0xFFFF;
        return match size {
            0 => (Bar::None, 1),
            s => (
                Bar::Io {
                    port: (original & !0x3) as u16,
                    size: s as u16,
                },
                1,
            ),
        };
    }
    let wide = (original >> 1) & 0b11 == 0b10 && index < 5;
    let prefetchable = original & (1 << 3) != 0;
    cfg.write32(at, offset, u32::MAX);
    let low_mask = cfg.read32(at, offset) & !0xF;
    cfg.write32(at, offset, original);
    let (base, mask) = if wide {
        let high_original = cfg.read32(at, offset + 4);
        cfg.write32(at, offset + 4, u32::MAX);
        let high_mask = cfg.read32(at, offset + 4);
        cfg.write32(at, offset + 4, high_original);
        (
            (u64::from(high_original) << 32) | u64::from(original & !0xF),
            (u64::from(high_mask) << 32) | u64::from(low_mask),
        )
    } else {
        (
            u64::from(original & !0xF),
            0xFFFF_FFFF_0000_0000 | u64::from(low_mask),
        )
    };
    let slots = if wide { 2 } else { 1 };
    // An unimplemented BAR has no writable address bits (PCI 3.0, 6.2.5.1).
    if mask & !0xF == 0xFFFF_FFFF_0000_0000 && !wide || mask & !0xF == 0 {
        return (Bar::None, slots);
    }
    match (!mask).wrapping_add(1) {
        0 => (Bar::None, slots),
        size => (
            Bar::Memory {
                base,
                size,
                wide,
                prefetchable,
            },
            slots,
        ),
    }
}

fn capabilities(cfg: &dyn ConfigSpace, at: Address) -> Vec<Capability> {
    let mut caps = Vec::new();
    if cfg.read16(at, reg::STATUS) & reg::STATUS_CAPABILITIES == 0 {
        return caps;
    }
    let mut offset = cfg.read8(at, reg::CAPABILITIES) & !3;
    // At most 48 capabilities fit in 192 bytes: a longer chain is a loop in broken hardware.
    while offset >= 0x40 && caps.len() < 48 {
        let header = cfg.read16(at, u16::from(offset));
        caps.push(Capability {
            id: header as u8,
            offset,
        });
        offset = ((header >> 8) as u8) & !3;
    }
    caps
}

fn read_function(cfg: &dyn ConfigSpace, at: Address) -> Option<Device> {
    let id = cfg.read32(at, reg::ID);
    let vendor = id as u16;
    if vendor == 0xFFFF || vendor == 0 {
        return None;
    }
    let class = cfg.read32(at, reg::CLASS);
    let header_type = cfg.read8(at, reg::HEADER + 2) & 0x7F;
    let interrupt = cfg.read16(at, reg::INTERRUPT);
    let mut bars = [Bar::None; 6];
    let count = if header_type == 0 {
        6
    } else if header_type == 1 {
        2
    } else {
        0
    };
    let command = cfg.read16(at, reg::COMMAND);
    // Decoding off while BARs hold all ones (PCI 3.0, 6.2.5.1, implementation note).
    cfg.write16(
        at,
        reg::COMMAND,
        command & !(reg::COMMAND_IO | reg::COMMAND_MEMORY),
    );
    let mut index = 0;
    while index < count {
        let (bar, slots) = size_bar(cfg, at, index);
        bars[index] = bar;
        index += slots;
    }
    cfg.write16(at, reg::COMMAND, command);
    Some(Device {
        address: at,
        vendor,
        device: (id >> 16) as u16,
        class: (class >> 24) as u8,
        subclass: (class >> 16) as u8,
        prog_if: (class >> 8) as u8,
        header_type,
        irq_line: interrupt as u8,
        irq_pin: (interrupt >> 8) as u8,
        bars,
        capabilities: capabilities(cfg, at),
    })
}

fn scan_bus(cfg: &dyn ConfigSpace, bus: u8, seen: &mut [bool; 256], out: &mut Vec<Device>) {
    if core::mem::replace(&mut seen[usize::from(bus)], true) {
        return;
    }
    for device in 0..32 {
        let first = Address {
            bus,
            device,
            function: 0,
        };
        if cfg.read16(first, reg::ID) == 0xFFFF {
            continue;
        }
        let multifunction = cfg.read8(first, reg::HEADER + 2) & 0x80 != 0;
        for function in 0..if multifunction { 8 } else { 1 } {
            let at = Address {
                bus,
                device,
                function,
            };
            if let Some(d) = read_function(cfg, at) {
                let bridge_to = (d.header_type == 1).then(|| cfg.read8(at, reg::SECONDARY_BUS));
                out.push(d);
                if let Some(secondary) = bridge_to.filter(|&b| b != 0) {
                    scan_bus(cfg, secondary, seen, out);
                }
            }
        }
    }
}

/// Every function reachable from bus 0 through PCI-to-PCI bridges, in bus order (PCI-to-PCI
/// Bridge Architecture Specification 1.2, 3.2.5.4 for the secondary bus number). Each bus is
/// scanned once even if bridges are misprogrammed into a loop.
pub fn enumerate(cfg: &dyn ConfigSpace) -> Vec<Device> {
    let mut out = Vec::new();
    let mut seen = [false; 256];
    scan_bus(cfg, 0, &mut seen, &mut out);
    out
}
