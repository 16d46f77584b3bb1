// SPDX-License-Identifier: MIT OR Apache-2.0
//! The virtio PCI modern transport (virtio v1.1, 4.1): the common, notification and device
//! configuration structures, found through vendor-specific PCI capabilities (4.1.4) in memory
//! BARs. Memory BARs below 4 GiB are identity mapped uncached by the kernel (`mm::kmap`); a
//! structure in an I/O BAR or above 4 GiB is skipped (the spec lets a driver use the first
//! instance of each structure type it supports, 4.1.4.1) and the device refused if none is left.

use core::ptr;

use crate::arch::x86_64::time;
use crate::drivers::pci::{Bar, CAP_VENDOR, ConfigSpace, Device, reg};

/// `cfg_type` of the structures (4.1.4).
const CAP_COMMON_CFG: u8 = 1;
const CAP_NOTIFY_CFG: u8 = 2;
const CAP_DEVICE_CFG: u8 = 4;

/// Common configuration registers (4.1.4.3).
mod common {
    pub const DEVICE_FEATURE_SELECT: usize = 0x00;
    pub const DEVICE_FEATURE: usize = 0x04;
    pub const DRIVER_FEATURE_SELECT: usize = 0x08;
    pub const DRIVER_FEATURE: usize = 0x0C;
    pub const CONFIG_MSIX_VECTOR: usize = 0x10;
    pub const DEVICE_STATUS: usize = 0x14;
    pub const CONFIG_GENERATION: usize = 0x15;
    pub const QUEUE_SELECT: usize = 0x16;
    pub const QUEUE_SIZE: usize = 0x18;
    pub const QUEUE_MSIX_VECTOR: usize = 0x1A;
    pub const QUEUE_ENABLE: usize = 0x1C;
    pub const QUEUE_NOTIFY_OFF: usize = 0x1E;
    pub const QUEUE_DESC: usize = 0x20;
    pub const QUEUE_DRIVER: usize = 0x28;
    pub const QUEUE_DEVICE: usize = 0x30;
    /// Bytes the driver uses (through `queue_device`).
    pub const LEN: u32 = 0x38;
}

/// Device status bits (2.1): the spec's, shared with the guest's virtio device model.
pub use crate::vmm::devices::virtio::mmio::status;

/// "No MSI-X vector" (4.1.5.1.2).
pub const NO_VECTOR: u16 = 0xFFFF;

/// A structure's place in MMIO: identity-mapped address and length.
#[derive(Debug, Clone, Copy)]
struct Region {
    addr: u64,
    len: u32,
}

/// One virtio PCI function's modern interface.
pub struct PciTransport {
    common: u64,
    notify: Region,
    notify_multiplier: u32,
    device: Region,
}

/// A virtio structure capability (`struct virtio_pci_cap`, 4.1.4).
#[derive(Debug, Clone, Copy)]
struct VirtioCap {
    cfg_type: u8,
    bar: u8,
    offset: u32,
    length: u32,
    /// `notify_off_multiplier`, for the notification structure (4.1.4.4).
    multiplier: u32,
}

fn read_cap(d: &Device, cfg: &dyn ConfigSpace, at: u8) -> Option<VirtioCap> {
    let at = u16::from(at);
    let cap_len = cfg.read8(d.address, at + 2);
    if cap_len < 16 || at + u16::from(cap_len) > 0x100 {
        return None;
    }
    let cfg_type = cfg.read8(d.address, at + 3);
    let multiplier = if cfg_type == CAP_NOTIFY_CFG {
        if cap_len < 20 {
            return None;
        }
        cfg.read32(d.address, at + 16)
    } else {
        0
    };
    Some(VirtioCap {
        cfg_type,
        bar: cfg.read8(d.address, at + 4),
        offset: cfg.read32(d.address, at + 8),
        length: cfg.read32(d.address, at + 12),
        multiplier,
    })
}

/// Where a structure lies in memory, if it is in a usable BAR and inside it.
fn map(d: &Device, cap: &VirtioCap, min_len: u32) -> Result<Region, &'static str> {
    let Some(bar) = d.bars.get(usize::from(cap.bar)) else {
        return Err("virtio structure names a reserved BAR");
    };
    let (base, size) = match *bar {
        Bar::Memory { base, size, .. } => (base, size),
        Bar::Io { .. } => return Err("virtio structure in an I/O BAR (not supported)"),
        Bar::None => return Err("virtio structure in an unimplemented BAR"),
    };
    if base == 0 {
        return Err("virtio BAR not assigned");
    }
    if base.checked_add(size).is_none_or(|end| end > 1 << 32) {
        return Err("virtio BAR above 4 GiB (not mapped by the kernel)");
    }
    if cap.length < min_len || u64::from(cap.offset) + u64::from(cap.length) > size {
        return Err("virtio structure does not fit its BAR");
    }
    Ok(Region {
        addr: base + u64::from(cap.offset),
        len: cap.length,
    })
}

/// A bounded wait: `now_ns()` deadlines once the TSC is calibrated; before that (drivers are
/// probed early in boot) a spin count that takes well over the timeout on any machine where an
/// uncached register read costs at least ~100 ns.
pub struct Deadline {
    end_ns: u64,
    spins_left: u64,
}

impl Deadline {
    /// Expires `ms` milliseconds from now.
    pub fn after_ms(ms: u64) -> Self {
        Self {
            end_ns: time::now_ns().saturating_add(ms * 1_000_000),
            spins_left: ms * 10_000,
        }
    }

    /// Whether the deadline has passed (call once per polling iteration).
    pub fn expired(&mut self) -> bool {
        if time::tsc_hz() != 0 {
            return time::now_ns() > self.end_ns;
        }
        self.spins_left = self.spins_left.saturating_sub(1);
        core::hint::spin_loop();
        self.spins_left == 0
    }
}

impl PciTransport {
    /// Finds and checks the structures of `d` and turns on memory decoding and bus mastering
    /// (legacy interrupts off: the driver uses MSI-X or none).
    pub fn new(d: &Device, cfg: &dyn ConfigSpace) -> Result<Self, &'static str> {
        let (mut common, mut notify, mut device) = (None, None, None);
        let mut last_error = None;
        for c in &d.capabilities {
            if c.id != CAP_VENDOR {
                continue;
            }
            let Some(cap) = read_cap(d, cfg, c.offset) else {
                continue;
            };
            let (slot, min_len) = match cap.cfg_type {
                CAP_COMMON_CFG => (&mut common, common::LEN),
                // At least one queue's register (checked per queue later).
                CAP_NOTIFY_CFG => (&mut notify, 2),
                // The MAC (5.1.4).
                CAP_DEVICE_CFG => (&mut device, 6),
                _ => continue,
            };
            if slot.is_some() {
                continue;
            }
            match map(d, &cap, min_len) {
                Ok(region) => *slot = Some((region, cap.multiplier)),
                Err(e) => last_error = Some(e),
            }
        }
        let missing = |what| last_error.unwrap_or(what);
        let (common, _) = common.ok_or_else(|| missing("no virtio common configuration"))?;
        if !common.addr.is_multiple_of(4) {
            return Err("virtio common configuration misaligned");
        }
        let (notify, notify_multiplier) =
            notify.ok_or_else(|| missing("no virtio notification structure"))?;
        let (device, _) = device.ok_or_else(|| missing("no virtio device configuration"))?;
        d.enable(
            cfg,
            reg::COMMAND_MEMORY | reg::COMMAND_BUS_MASTER | reg::COMMAND_INTX_DISABLE,
        );
        Ok(Self {
            common: common.addr,
            notify,
            notify_multiplier,
            device,
        })
    }

    fn common_ptr<T>(&self, offset: usize) -> *mut T {
        (self.common as usize + offset) as *mut T
    }

    fn read8(&self, offset: usize) -> u8 {
        // SAFETY: `common` is a structure of at least `common::LEN` bytes inside a memory BAR
        // below 4 GiB (checked in `new`), identity mapped uncached; every offset used is a
        // register of that structure, naturally aligned.
        unsafe { ptr::read_volatile(self.common_ptr(offset)) }
    }

    fn write8(&self, offset: usize, value: u8) {
        // SAFETY: as in `read8`.
        unsafe { ptr::write_volatile(self.common_ptr(offset), value) }
    }

    fn read16(&self, offset: usize) -> u16 {
        // SAFETY: as in `read8`.
        u16::from_le(unsafe { ptr::read_volatile(self.common_ptr(offset)) })
    }

    fn write16(&self, offset: usize, value: u16) {
        // SAFETY: as in `read8`.
        unsafe { ptr::write_volatile(self.common_ptr(offset), value.to_le()) }
    }

    fn read32(&self, offset: usize) -> u32 {
        // SAFETY: as in `read8`.
        u32::from_le(unsafe { ptr::read_volatile(self.common_ptr(offset)) })
    }

    fn write32(&self, offset: usize, value: u32) {
        // SAFETY: as in `read8`.
        unsafe { ptr::write_volatile(self.common_ptr(offset), value.to_le()) }
    }

    /// 64-bit registers are written as two 32-bit halves, low first (4.1.3.1).
    fn write64(&self, offset: usize, value: u64) {
        self.write32(offset, value as u32);
        self.write32(offset + 4, (value >> 32) as u32);
    }

    /// The device status (2.1).
    pub fn status(&self) -> u8 {
        self.read8(common::DEVICE_STATUS)
    }

    /// Adds `bits` to the device status.
    pub fn add_status(&self, bits: u8) {
        self.write8(common::DEVICE_STATUS, self.status() | bits);
    }

    /// Resets the device and waits (bounded) until it reads back 0 (4.1.4.3.2): after that it
    /// no longer touches memory the driver gave it.
    pub fn reset(&self) -> Result<(), &'static str> {
        self.write8(common::DEVICE_STATUS, 0);
        let mut deadline = Deadline::after_ms(1000);
        while self.status() != 0 {
            if deadline.expired() {
                return Err("virtio device did not finish resetting within 1 s");
            }
        }
        Ok(())
    }

    /// Starts a reset without waiting (for a device found misbehaving in the data path).
    pub fn reset_nowait(&self) {
        self.write8(common::DEVICE_STATUS, 0);
    }

    /// The 64 feature bits the device offers (2.2).
    pub fn device_features(&self) -> u64 {
        self.write32(common::DEVICE_FEATURE_SELECT, 0);
        let low = self.read32(common::DEVICE_FEATURE);
        self.write32(common::DEVICE_FEATURE_SELECT, 1);
        let high = self.read32(common::DEVICE_FEATURE);
        (u64::from(high) << 32) | u64::from(low)
    }

    /// Writes the features the driver accepts.
    pub fn set_driver_features(&self, features: u64) {
        self.write32(common::DRIVER_FEATURE_SELECT, 0);
        self.write32(common::DRIVER_FEATURE, features as u32);
        self.write32(common::DRIVER_FEATURE_SELECT, 1);
        self.write32(common::DRIVER_FEATURE, (features >> 32) as u32);
    }

    /// The largest size queue `index` supports (0: no such queue).
    pub fn queue_max_size(&self, index: u16) -> u16 {
        self.write16(common::QUEUE_SELECT, index);
        self.read16(common::QUEUE_SIZE)
    }

    /// Sets the MSI-X table entry for configuration changes ([`NO_VECTOR`]: none) and returns
    /// what the device kept (4.1.5.1.2: [`NO_VECTOR`] if it could not allocate one).
    pub fn set_config_vector(&self, entry: u16) -> u16 {
        self.write16(common::CONFIG_MSIX_VECTOR, entry);
        self.read16(common::CONFIG_MSIX_VECTOR)
    }

    /// The MSI-X table entry queue `index` signals through, as the device kept it
    /// ([`NO_VECTOR`]: none, 4.1.5.1.2).
    pub fn queue_vector(&self, index: u16) -> u16 {
        self.write16(common::QUEUE_SELECT, index);
        self.read16(common::QUEUE_MSIX_VECTOR)
    }

    /// Configures and enables queue `index` (4.1.5.1.3), signalling through MSI-X table entry
    /// `msix_entry` ([`NO_VECTOR`]: none), and returns the address of its notification register
    /// (4.1.4.4: `cap.offset + queue_notify_off × notify_off_multiplier`, checked to lie inside
    /// the notification structure).
    pub fn enable_queue(
        &self,
        index: u16,
        size: u16,
        (desc, driver, device): (u64, u64, u64),
        msix_entry: u16,
    ) -> Result<u64, &'static str> {
        self.write16(common::QUEUE_SELECT, index);
        let off =
            u64::from(self.read16(common::QUEUE_NOTIFY_OFF)) * u64::from(self.notify_multiplier);
        if off + 2 > u64::from(self.notify.len) {
            return Err("virtio queue notification register outside its structure");
        }
        if !(self.notify.addr + off).is_multiple_of(2) {
            return Err("virtio queue notification register misaligned");
        }
        self.write16(common::QUEUE_SIZE, size);
        self.write16(common::QUEUE_MSIX_VECTOR, msix_entry);
        self.write64(common::QUEUE_DESC, desc);
        self.write64(common::QUEUE_DRIVER, driver);
        self.write64(common::QUEUE_DEVICE, device);
        self.write16(common::QUEUE_ENABLE, 1);
        Ok(self.notify.addr + off)
    }

    /// Notifies the device that queue `index` has new buffers (4.1.5.2), through the register
    /// `enable_queue` returned.
    pub fn notify(&self, register: u64, index: u16) {
        // SAFETY: `register` came from `enable_queue`, which checked that its two bytes lie in
        // the notification structure, itself inside a memory BAR below 4 GiB that the kernel
        // maps uncached, and that it is 2-byte aligned.
        unsafe { ptr::write_volatile(register as *mut u16, index.to_le()) }
    }

    /// Reads `N` bytes of the device configuration at `offset`, one byte at a time, until the
    /// configuration generation is the same before and after (2.4.1); `None` if out of range or
    /// the generation keeps changing.
    pub fn device_config<const N: usize>(&self, offset: u32) -> Option<[u8; N]> {
        if u64::from(offset) + N as u64 > u64::from(self.device.len) {
            return None;
        }
        for _ in 0..16 {
            let before = self.read8(common::CONFIG_GENERATION);
            let mut out = [0u8; N];
            for (i, b) in out.iter_mut().enumerate() {
                let addr = self.device.addr + u64::from(offset) + i as u64;
                // SAFETY: inside the device configuration structure (checked above), itself in a
                // memory BAR below 4 GiB that the kernel maps uncached; byte access.
                *b = unsafe { ptr::read_volatile(addr as *const u8) };
            }
            if self.read8(common::CONFIG_GENERATION) == before {
                return Some(out);
            }
        }
        None
    }
}
