// SPDX-License-Identifier: MIT OR Apache-2.0
//! Message signalled interrupts: programming a function's MSI capability (PCI Local Bus
//! Specification 3.0, 6.8.1) and MSI-X capability and table (6.8.2), with messages in the
//! x86 format (Intel SDM Vol. 3A, 11.11 "Message Signalled Interrupts": address 0xFEEx_xxxx
//! naming the destination local APIC, data naming the vector).
//!
//! Everything read from the device (table size, BIR, table offset) is checked against the BARs
//! the function really has; a bad value is an [`MsiError`], never a panic or a stray access.
//! The logic works over [`ConfigSpace`] and [`Mmio`], so it is unit tested on the host.

use core::fmt;

use super::{Bar, CAP_MSI, CAP_MSIX, ConfigSpace, Device, reg};

/// Why a function's MSI or MSI-X could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsiError {
    /// The function has no such capability.
    Absent,
    /// The capability does not fit in configuration space.
    BadCapability,
    /// The MSI-X table names a reserved BAR indicator (6..7, PCI 3.0 6.8.2.4).
    BadBir(u8),
    /// The MSI-X table's BAR is not an assigned memory BAR the kernel maps (below 4 GiB).
    UnusableBar(u8),
    /// The MSI-X table does not lie inside its BAR.
    TableOutsideBar,
    /// The requested table entry is beyond the table.
    NoSuchEntry(u16),
}

impl fmt::Display for MsiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MsiError::Absent => write!(f, "no capability"),
            MsiError::BadCapability => write!(f, "capability outside configuration space"),
            MsiError::BadBir(b) => write!(f, "MSI-X table in reserved BAR indicator {b}"),
            MsiError::UnusableBar(b) => write!(f, "MSI-X table in unusable BAR {b}"),
            MsiError::TableOutsideBar => write!(f, "MSI-X table does not fit its BAR"),
            MsiError::NoSuchEntry(i) => write!(f, "MSI-X table has no entry {i}"),
        }
    }
}

/// One interrupt message: what the device writes, and where (PCI 3.0 6.8.1.3..6.8.1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    /// Message address (64 bits; the x86 format only uses the low 32).
    pub address: u64,
    /// Message data (16 bits for MSI, 32 for MSI-X).
    pub data: u32,
}

impl Message {
    /// A fixed-delivery, edge-triggered message for `vector` to the local APIC with id
    /// `dest_apic_id`, in physical destination mode (Intel SDM Vol. 3A, 11.11.1: address bits
    /// 31..20 = 0xFEE, 19..12 destination id, bit 3 redirection hint 0, bit 2 destination mode
    /// 0; 11.11.2: data bits 7..0 vector, 10..8 delivery mode 000 fixed, 15 trigger mode 0 edge).
    pub fn fixed(dest_apic_id: u8, vector: u8) -> Self {
        Self {
            address: 0xFEE0_0000 | (u64::from(dest_apic_id) << 12),
            data: u32::from(vector),
        }
    }
}

/// Access to a memory-mapped structure (the MSI-X table): 32-bit registers at byte addresses.
pub trait Mmio {
    /// Reads the 32-bit register at `addr`.
    fn read32(&self, addr: u64) -> u32;
    /// Writes the 32-bit register at `addr`.
    fn write32(&self, addr: u64, value: u32);
}

/// MSI-X capability registers (PCI 3.0, 6.8.2.1..6.8.2.5), offsets from the capability.
mod msix_reg {
    /// Message Control (16 bits).
    pub const CONTROL: u16 = 2;
    /// Table Offset / Table BIR.
    pub const TABLE: u16 = 4;
    /// Message Control: table size − 1 (bits 10..0).
    pub const CONTROL_TABLE_SIZE: u16 = 0x7FF;
    /// Message Control: Function Mask.
    pub const CONTROL_FUNCTION_MASK: u16 = 1 << 14;
    /// Message Control: MSI-X Enable.
    pub const CONTROL_ENABLE: u16 = 1 << 15;
    /// Capability length (ID, next, control, table, PBA).
    pub const LEN: u16 = 12;
}

/// Bytes per MSI-X table entry (PCI 3.0, 6.8.2.6, Figure 6-11).
pub const MSIX_ENTRY_SIZE: u64 = 16;
/// Vector Control: Mask Bit (PCI 3.0, 6.8.2.9).
pub const MSIX_VECTOR_MASKED: u32 = 1;

/// The four dwords of an MSI-X table entry (PCI 3.0, 6.8.2.6..6.8.2.9): message address low,
/// message upper address, message data, vector control.
pub fn msix_entry_words(msg: Message, masked: bool) -> [u32; 4] {
    [
        msg.address as u32,
        (msg.address >> 32) as u32,
        msg.data,
        if masked { MSIX_VECTOR_MASKED } else { 0 },
    ]
}

/// A function's MSI-X capability, checked: its table lies inside a memory BAR below 4 GiB
/// (identity mapped uncached by the kernel, like every BAR the drivers use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msix {
    cap: u16,
    /// Address of the table's first entry.
    table: u64,
    /// Number of table entries (1..=2048).
    entries: u16,
}

/// Writes `msg` into the MSI-X table entry at `entry` (an address [`Msix::entry_address`]
/// gave) and unmasks it: mask first, then address and data, then unmask (PCI 3.0, 6.8.2.9
/// leaves the result undefined if an unmasked entry is changed). Also how a programmed entry
/// is pointed at another CPU.
pub fn program_msix_entry(mmio: &dyn Mmio, entry: u64, msg: Message) {
    let vc = entry + 12;
    mmio.write32(vc, mmio.read32(vc) | MSIX_VECTOR_MASKED);
    let words = msix_entry_words(msg, false);
    for (i, w) in words[..3].iter().enumerate() {
        mmio.write32(entry + 4 * i as u64, *w);
    }
    // Reserved vector-control bits must be preserved (6.8.2.9).
    mmio.write32(vc, mmio.read32(vc) & !MSIX_VECTOR_MASKED);
}

impl Msix {
    /// Reads and checks the MSI-X capability of `d`.
    pub fn find(d: &Device, cfg: &dyn ConfigSpace) -> Result<Self, MsiError> {
        let cap = u16::from(d.capability(CAP_MSIX).ok_or(MsiError::Absent)?.offset);
        if cap < 0x40 || cap + msix_reg::LEN > 0x100 {
            return Err(MsiError::BadCapability);
        }
        let control = cfg.read16(d.address, cap + msix_reg::CONTROL);
        let entries = (control & msix_reg::CONTROL_TABLE_SIZE) + 1;
        let table = cfg.read32(d.address, cap + msix_reg::TABLE);
        let bir = (table & 7) as u8;
        let offset = u64::from(table & !7);
        let bar = d.bars.get(usize::from(bir)).ok_or(MsiError::BadBir(bir))?;
        let (base, size) = match *bar {
            Bar::Memory { base, size, .. } => (base, size),
            Bar::Io { .. } | Bar::None => return Err(MsiError::UnusableBar(bir)),
        };
        if base == 0 || base.checked_add(size).is_none_or(|end| end > 1 << 32) {
            return Err(MsiError::UnusableBar(bir));
        }
        let table_len = u64::from(entries) * MSIX_ENTRY_SIZE;
        if offset.checked_add(table_len).is_none_or(|end| end > size) {
            return Err(MsiError::TableOutsideBar);
        }
        Ok(Self {
            cap,
            table: base + offset,
            entries,
        })
    }

    /// Number of table entries.
    pub fn entries(&self) -> u16 {
        self.entries
    }

    /// Address of entry `index` in the table.
    pub fn entry_address(&self, index: u16) -> Result<u64, MsiError> {
        if index >= self.entries {
            return Err(MsiError::NoSuchEntry(index));
        }
        Ok(self.table + u64::from(index) * MSIX_ENTRY_SIZE)
    }

    /// Turns MSI-X on with the whole function masked (PCI 3.0, 6.8.2.3: while Function Mask is
    /// set no entry sends messages), masks every entry, and turns legacy INTx off. Entries are
    /// then programmed with [`Msix::program`] and messages start with [`Msix::unmask_function`].
    pub fn enable_masked(&self, d: &Device, cfg: &dyn ConfigSpace, mmio: &dyn Mmio) {
        let at = self.cap + msix_reg::CONTROL;
        let control = cfg.read16(d.address, at);
        cfg.write16(
            d.address,
            at,
            control | msix_reg::CONTROL_ENABLE | msix_reg::CONTROL_FUNCTION_MASK,
        );
        for i in 0..self.entries {
            let vc = self.table + u64::from(i) * MSIX_ENTRY_SIZE + 12;
            mmio.write32(vc, mmio.read32(vc) | MSIX_VECTOR_MASKED);
        }
        d.enable(cfg, reg::COMMAND_INTX_DISABLE);
    }

    /// Writes `msg` into entry `index` and unmasks it (mask first, then address and data, then
    /// unmask: 6.8.2.9 leaves the result undefined if an unmasked entry is changed).
    pub fn program(&self, mmio: &dyn Mmio, index: u16, msg: Message) -> Result<(), MsiError> {
        program_msix_entry(mmio, self.entry_address(index)?, msg);
        Ok(())
    }

    /// Clears Function Mask: programmed, unmasked entries may now send messages.
    pub fn unmask_function(&self, d: &Device, cfg: &dyn ConfigSpace) {
        let at = self.cap + msix_reg::CONTROL;
        let control = cfg.read16(d.address, at);
        cfg.write16(d.address, at, control & !msix_reg::CONTROL_FUNCTION_MASK);
    }
}

/// MSI capability registers (PCI 3.0, 6.8.1), offsets from the capability.
mod msi_reg {
    /// Message Control (16 bits).
    pub const CONTROL: u16 = 2;
    /// Message Address (low 32 bits).
    pub const ADDRESS: u16 = 4;
    /// Message Control: MSI Enable.
    pub const CONTROL_ENABLE: u16 = 1;
    /// Message Control: Multiple Message Enable (bits 6..4).
    pub const CONTROL_MME: u16 = 0b111 << 4;
    /// Message Control: 64-bit address capable.
    pub const CONTROL_64BIT: u16 = 1 << 7;
    /// Message Control: per-vector masking capable.
    pub const CONTROL_PER_VECTOR_MASK: u16 = 1 << 8;
}

/// Where the registers of an MSI capability are, given its Message Control (PCI 3.0, 6.8.1,
/// Figure 6-9: the 64-bit variant adds the upper address dword, shifting data and mask).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsiLayout {
    /// Offset of the Message Upper Address register, for the 64-bit variant.
    pub upper_address: Option<u16>,
    /// Offset of Message Data (16 bits).
    pub data: u16,
    /// Offset of the Mask Bits register, if per-vector masking is present.
    pub mask: Option<u16>,
    /// Bytes the capability occupies.
    pub len: u16,
}

impl MsiLayout {
    /// The layout for Message Control `control`.
    pub fn new(control: u16) -> Self {
        let wide = control & msi_reg::CONTROL_64BIT != 0;
        let data = if wide { 0x0C } else { 0x08 };
        let masking = control & msi_reg::CONTROL_PER_VECTOR_MASK != 0;
        Self {
            upper_address: wide.then_some(0x08),
            data,
            mask: masking.then_some(data + 4),
            len: if masking { data + 12 } else { data + 2 },
        }
    }
}

/// A function's MSI capability (single message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msi {
    cap: u16,
    layout: MsiLayout,
}

impl Msi {
    /// Reads and checks the MSI capability of `d`.
    pub fn find(d: &Device, cfg: &dyn ConfigSpace) -> Result<Self, MsiError> {
        let cap = u16::from(d.capability(CAP_MSI).ok_or(MsiError::Absent)?.offset);
        let layout = MsiLayout::new(cfg.read16(d.address, cap.saturating_add(msi_reg::CONTROL)));
        if cap < 0x40 || cap + layout.len > 0x100 {
            return Err(MsiError::BadCapability);
        }
        Ok(Self { cap, layout })
    }

    /// The register layout.
    pub fn layout(&self) -> MsiLayout {
        self.layout
    }

    /// Programs one message (Multiple Message Enable 0), unmasks vector 0 if per-vector masking
    /// is present, enables MSI and turns legacy INTx off (PCI 3.0, 6.8.1.3..6.8.1.8).
    pub fn enable(&self, d: &Device, cfg: &dyn ConfigSpace, msg: Message) {
        let at = d.address;
        let control = cfg.read16(at, self.cap + msi_reg::CONTROL);
        let off = control & !(msi_reg::CONTROL_ENABLE | msi_reg::CONTROL_MME);
        cfg.write16(at, self.cap + msi_reg::CONTROL, off);
        cfg.write32(at, self.cap + msi_reg::ADDRESS, msg.address as u32);
        if let Some(upper) = self.layout.upper_address {
            cfg.write32(at, self.cap + upper, (msg.address >> 32) as u32);
        }
        cfg.write16(at, self.cap + self.layout.data, msg.data as u16);
        if let Some(mask) = self.layout.mask {
            let bits = cfg.read32(at, self.cap + mask);
            cfg.write32(at, self.cap + mask, bits & !1);
        }
        cfg.write16(
            at,
            self.cap + msi_reg::CONTROL,
            off | msi_reg::CONTROL_ENABLE,
        );
        d.enable(cfg, reg::COMMAND_INTX_DISABLE);
    }
}

/// The kernel's MMIO: identity-mapped, uncached device memory below 4 GiB.
#[cfg(target_os = "none")]
pub struct DeviceMmio;

#[cfg(target_os = "none")]
impl Mmio for DeviceMmio {
    fn read32(&self, addr: u64) -> u32 {
        // SAFETY: only called by `Msix` with addresses inside a table it checked to lie in a
        // memory BAR below 4 GiB, which the kernel identity maps uncached; dword aligned (the
        // table offset's low 3 bits are the BIR, entries are 16 bytes).
        unsafe { crate::arch::x86_64::instr::mmio_read32(addr) }
    }

    fn write32(&self, addr: u64, value: u32) {
        // SAFETY: as in `read32`; the driver owning the device is the only writer.
        unsafe { crate::arch::x86_64::instr::mmio_write32(addr, value) }
    }
}
