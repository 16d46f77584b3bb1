// SPDX-License-Identifier: MIT OR Apache-2.0
//! Connecting a PCI function's interrupts to a handler: MSI-X, else MSI, else legacy INTx
//! through the I/O APIC ([`crate::arch::x86_64::irq`] allocates the vector and dispatches).
//! Messages go to the CPU that probes the device (the bootstrap processor); an MSI-X entry or
//! an INTx line can be pointed at another CPU later ([`route`]).

use core::fmt;

use super::msi::{DeviceMmio, Message, Msi, MsiError, Msix};
use super::{ConfigSpace, Device, reg};
use crate::arch::x86_64::irq::{self, Handler};
use crate::arch::x86_64::{apic, ioapic::Line};

/// How a function's interrupt was connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// MSI-X: table entry `entry` of `entries` sends `vector`.
    MsiX {
        /// Vector allocated.
        vector: u8,
        /// Table entry programmed.
        entry: u16,
        /// Table size.
        entries: u16,
        /// Address of that table entry (to point it at another CPU: [`route`]).
        address: u64,
    },
    /// MSI, one message.
    Msi {
        /// Vector allocated.
        vector: u8,
    },
    /// Legacy INTx on ISA IRQ `irq`, routed through the I/O APIC.
    Intx {
        /// Vector (possibly shared with other functions on the line).
        vector: u8,
        /// ISA IRQ (Interrupt Line).
        irq: u8,
        /// Where and how it arrives.
        line: Line,
    },
}

impl Mode {
    /// "MSI-X", "MSI" or "INTx".
    pub fn name(&self) -> &'static str {
        match self {
            Mode::MsiX { .. } => "MSI-X",
            Mode::Msi { .. } => "MSI",
            Mode::Intx { .. } => "INTx",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Mode::MsiX {
                vector,
                entry,
                entries,
                ..
            } => write!(
                f,
                "msi-x {entries} vectors, entry {entry} -> vector {vector:#x}"
            ),
            Mode::Msi { vector } => write!(f, "msi -> vector {vector:#x}"),
            Mode::Intx { vector, irq, line } => write!(
                f,
                "intx irq {irq} -> gsi {} ({}, active {}) -> vector {vector:#x}",
                line.gsi,
                if line.level { "level" } else { "edge" },
                if line.active_low { "low" } else { "high" }
            ),
        }
    }
}

fn this_cpu() -> u8 {
    // xAPIC ids are 8 bits (SDM Vol. 3A, 11.4.6); the message format has 8 destination bits.
    apic::id() as u8
}

/// Enables MSI-X on `d` with every entry masked but `entry`, which sends a fresh vector whose
/// handler is `handler`.
pub fn connect_msix(
    d: &Device,
    cfg: &dyn ConfigSpace,
    entry: u16,
    handler: &'static dyn Handler,
) -> Result<Mode, &'static str> {
    let msix = Msix::find(d, cfg).map_err(msi_error)?;
    let address = msix.entry_address(entry).map_err(msi_error)?;
    let vector = irq::allocate(handler).map_err(|_| "no free interrupt vector")?;
    // The table is in memory space: decoding on before it is touched.
    d.enable(cfg, reg::COMMAND_MEMORY);
    msix.enable_masked(d, cfg, &DeviceMmio);
    msix.program(&DeviceMmio, entry, Message::fixed(this_cpu(), vector))
        .map_err(msi_error)?;
    msix.unmask_function(d, cfg);
    Ok(Mode::MsiX {
        vector,
        entry,
        entries: msix.entries(),
        address,
    })
}

/// Sends the interrupt connected as `mode` to the CPU with `apic_id` from now on: an MSI-X
/// entry is rewritten in the device's table, an INTx line's I/O APIC redirection entry is
/// pointed there (with every function sharing the line). MSI is not moved (its message sits
/// in configuration space, whose port access is not safe from two CPUs): false, and the
/// interrupt stays where it was.
pub fn route(mode: &Mode, apic_id: u32) -> bool {
    let Ok(dest) = u8::try_from(apic_id) else {
        return false;
    };
    match *mode {
        Mode::MsiX {
            vector, address, ..
        } => {
            super::msi::program_msix_entry(&DeviceMmio, address, Message::fixed(dest, vector));
            true
        }
        Mode::Intx { vector, line, .. } => crate::arch::x86_64::ioapic::route(line, vector, dest)
            .map_err(|why| log::warn!("INTx gsi {} not moved: {why}", line.gsi))
            .is_ok(),
        Mode::Msi { .. } => false,
    }
}

/// Enables MSI on `d` with one message sending a fresh vector handled by `handler`.
pub fn connect_msi(
    d: &Device,
    cfg: &dyn ConfigSpace,
    handler: &'static dyn Handler,
) -> Result<Mode, &'static str> {
    let msi = Msi::find(d, cfg).map_err(msi_error)?;
    let vector = irq::allocate(handler).map_err(|_| "no free interrupt vector")?;
    msi.enable(d, cfg, Message::fixed(this_cpu(), vector));
    Ok(Mode::Msi { vector })
}

/// Routes `d`'s legacy INTx (its Interrupt Line) to `handler` and enables INTx assertion.
pub fn connect_intx(
    d: &Device,
    cfg: &dyn ConfigSpace,
    handler: &'static dyn Handler,
) -> Result<Mode, &'static str> {
    if d.irq_pin == 0 || d.irq_pin > 4 {
        return Err("function uses no INTx pin");
    }
    if d.irq_line == 0 || d.irq_line == 0xFF {
        return Err("firmware assigned no interrupt line");
    }
    let (vector, line) = irq::connect_legacy(d.irq_line, handler)?;
    let command = cfg.read16(d.address, reg::COMMAND);
    cfg.write16(
        d.address,
        reg::COMMAND,
        command & !reg::COMMAND_INTX_DISABLE,
    );
    Ok(Mode::Intx {
        vector,
        irq: d.irq_line,
        line,
    })
}

/// MSI-X (entry 0), else MSI, else INTx.
pub fn connect(
    d: &Device,
    cfg: &dyn ConfigSpace,
    handler: &'static dyn Handler,
) -> Result<Mode, &'static str> {
    match connect_msix(d, cfg, 0, handler) {
        Err(why) if d.capability(super::CAP_MSIX).is_some() => Err(why),
        Ok(mode) => Ok(mode),
        Err(_) => match connect_msi(d, cfg, handler) {
            Err(why) if d.capability(super::CAP_MSI).is_some() => Err(why),
            Ok(mode) => Ok(mode),
            Err(_) => connect_intx(d, cfg, handler),
        },
    }
}

fn msi_error(e: MsiError) -> &'static str {
    match e {
        MsiError::Absent => "no MSI/MSI-X capability",
        MsiError::BadCapability => "MSI capability outside configuration space",
        MsiError::BadBir(_) => "MSI-X table in a reserved BAR indicator",
        MsiError::UnusableBar(_) => "MSI-X table BAR unassigned, not memory or above 4 GiB",
        MsiError::TableOutsideBar => "MSI-X table does not fit its BAR",
        MsiError::NoSuchEntry(_) => "MSI-X table too small",
    }
}
