// SPDX-License-Identifier: MIT OR Apache-2.0
//! The virtio-mmio transport, version 2 (virtio 1.2 §4.2): the control registers below
//! [`CONFIG`] (identification, feature negotiation, device status, queue configuration,
//! notification, interrupt status and acknowledgement, configuration generation). The device
//! model on top owns the configuration space from [`CONFIG`] and what its queues carry.
//!
//! The driver is not trusted (§2.1, §2.2.2, §3.1.1):
//! - status bits only clear by a reset (writing 0); FEATURES_OK stays clear unless the driver's
//!   features are a subset of the offered ones and include VIRTIO_F_VERSION_1 (§6.2: a device
//!   may refuse to work without it), and DRIVER_OK stays clear until FEATURES_OK is set;
//! - driver features are frozen once FEATURES_OK is set, a queue's registers once it is ready;
//!   bits 64 and up are not stored (nothing there is offered);
//! - QueueReady 0 stops the selected queue and forgets its position, 1 starts it at ring
//!   index 0; QueueNotify only notes the queue for the device model to look at;
//! - an invalid queue size or misaligned ring at QueueNum or QueueReady, or any error a queue
//!   meets later, breaks the device: DEVICE_NEEDS_RESET is set, with a configuration change
//!   interrupt if DRIVER_OK is (§2.1.2), and no queue is processed until a reset.
//!
//! Control registers take only aligned 32-bit accesses (§4.2.2.2); others read 0 and are
//! ignored on write.

use super::queue::{MAX_SIZE, Queue, QueueError};

mod state;

/// MagicValue: "virt" in little-endian bytes.
pub const MAGIC: u32 = 0x7472_6976;
/// Version of this transport: 2, the non-legacy interface.
pub const VERSION: u32 = 2;
/// VendorID: the bytes "CSTR" (Castor) in memory, as QEMU's 0x554D_4551 reads "QEMU".
pub const VENDOR_ID: u32 = 0x5254_5343;
/// Offset of the device-specific configuration space.
pub const CONFIG: u64 = 0x100;

/// Device status bits (§2.1).
pub mod status {
    /// The guest found the device.
    pub const ACKNOWLEDGE: u8 = 1;
    /// The guest knows how to drive it.
    pub const DRIVER: u8 = 2;
    /// The driver is ready: queues may be processed.
    pub const DRIVER_OK: u8 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u8 = 8;
    /// The device met an error and needs a reset.
    pub const DEVICE_NEEDS_RESET: u8 = 0x40;
    /// The guest gave up on the device.
    pub const FAILED: u8 = 0x80;
    /// Bits a driver may set.
    pub(super) const DRIVER_BITS: u8 = ACKNOWLEDGE | DRIVER | DRIVER_OK | FEATURES_OK | FAILED;
}
use status::{DEVICE_NEEDS_RESET, DRIVER_BITS, DRIVER_OK, FEATURES_OK};

/// InterruptStatus bit 0: a queue has new used buffers (§4.2.2).
pub const INT_USED: u8 = 1;
/// InterruptStatus bit 1: the configuration changed (or the device needs a reset).
pub const INT_CONFIG: u8 = 2;
/// VIRTIO_F_VERSION_1 (§6): compliance with virtio 1.x.
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;

// Control registers (§4.2.2, table "MMIO Device Register Layout").
const MAGIC_VALUE: u64 = 0x000;
const VERSION_REG: u64 = 0x004;
const DEVICE_ID: u64 = 0x008;
const VENDOR: u64 = 0x00C;
const DEVICE_FEATURES: u64 = 0x010;
const DEVICE_FEATURES_SEL: u64 = 0x014;
const DRIVER_FEATURES: u64 = 0x020;
const DRIVER_FEATURES_SEL: u64 = 0x024;
const QUEUE_SEL: u64 = 0x030;
const QUEUE_NUM_MAX: u64 = 0x034;
const QUEUE_NUM: u64 = 0x038;
const QUEUE_READY: u64 = 0x044;
const QUEUE_NOTIFY: u64 = 0x050;
const INTERRUPT_STATUS: u64 = 0x060;
const INTERRUPT_ACK: u64 = 0x064;
const STATUS: u64 = 0x070;
const QUEUE_DESC_LOW: u64 = 0x080;
const QUEUE_DRIVER_LOW: u64 = 0x090;
const QUEUE_DEVICE_LOW: u64 = 0x0A0;
const QUEUE_DEVICE_HIGH: u64 = 0x0A4;
/// SHMLenLow to SHMBaseHigh: no shared memory region, so the length reads as -1 (§4.2.2).
const SHM_REGS: core::ops::RangeInclusive<u64> = 0x0B0..=0x0BC;
const CONFIG_GENERATION: u64 = 0x0FC;

/// What an access of `width` bytes at `offset` in a window of `window` bytes reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A control register, by offset (aligned 32-bit accesses only).
    Register(u64),
    /// Configuration space bytes `offset..offset + width`.
    Config {
        /// Offset from [`CONFIG`].
        offset: usize,
        /// Bytes.
        width: usize,
    },
}

impl Access {
    /// Decodes an access; `None` for a width other than 1, 2, 4 or 8, an access past the
    /// window, or a control register access that is not aligned 32-bit.
    pub fn decode(offset: u64, width: u8, window: u64) -> Option<Self> {
        if !matches!(width, 1 | 2 | 4 | 8) || offset.checked_add(u64::from(width))? > window {
            return None;
        }
        match offset.checked_sub(CONFIG) {
            Some(c) => Some(Self::Config {
                offset: usize::try_from(c).ok()?,
                width: usize::from(width),
            }),
            None => (width == 4 && offset.is_multiple_of(4)).then_some(Self::Register(offset)),
        }
    }
}

/// 32 bits of a 64-bit feature set: word `sel`, or 0 beyond bit 63.
fn feature_word(features: u64, sel: u32) -> u32 {
    match sel {
        0 => features as u32,
        1 => (features >> 32) as u32,
        _ => 0,
    }
}

/// The transport state of a device with `N` virtqueues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport<const N: usize> {
    /// DeviceID (§5): fixed by the device model, not saved.
    device_id: u32,
    /// The features offered: fixed by the device model, not saved.
    offered: u64,
    status: u8,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    queues: [Queue; N],
    isr: u8,
    config_generation: u32,
    broken: Option<QueueError>,
    /// Queues the driver notified (QueueNotify) that the device has not looked at since.
    notified: [bool; N],
}

impl<const N: usize> Transport<N> {
    /// The transport as after a reset.
    pub fn new(device_id: u32, offered: u64) -> Self {
        Self {
            device_id,
            offered,
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            queues: [Queue::default(); N],
            isr: 0,
            config_generation: 0,
            broken: None,
            notified: [false; N],
        }
    }

    /// Device reset (§2.4): everything but the configuration generation returns to
    /// [`new`](Self::new).
    fn reset(&mut self) {
        *self = Self {
            config_generation: self.config_generation,
            ..Self::new(self.device_id, self.offered)
        };
    }

    /// Whether `features` could be accepted: offered bits only, VIRTIO_F_VERSION_1 among them.
    fn acceptable(&self, features: u64) -> bool {
        features & !self.offered == 0 && features & VIRTIO_F_VERSION_1 != 0
    }

    /// The device status register.
    pub fn status(&self) -> u8 {
        self.status
    }

    /// InterruptStatus.
    pub fn isr(&self) -> u8 {
        self.isr
    }

    /// Why the device needs a reset, if it does.
    pub fn broken(&self) -> Option<QueueError> {
        self.broken
    }

    /// Queue `i` (`i < N`).
    pub fn queue(&self, i: usize) -> &Queue {
        &self.queues[i]
    }

    /// Queue `i` (`i < N`), to process it.
    pub fn queue_mut(&mut self, i: usize) -> &mut Queue {
        &mut self.queues[i]
    }

    /// Whether queue `i` may be processed: not broken, DRIVER_OK, the queue ready.
    pub fn live(&self, i: usize) -> bool {
        self.broken.is_none() && self.status & DRIVER_OK != 0 && self.queues[i].ready
    }

    /// Takes the note that the driver notified queue `i`.
    pub fn take_notified(&mut self, i: usize) -> bool {
        core::mem::take(&mut self.notified[i])
    }

    /// Whether the driver notified queue `i` and the device has not taken the note.
    pub fn notified(&self, i: usize) -> bool {
        self.notified[i]
    }

    /// Notes queue `i` as having work (the device stopped before it was done).
    pub fn set_notified(&mut self, i: usize) {
        self.notified[i] = true;
    }

    /// Raises the used-buffer interrupt.
    pub fn used_interrupt(&mut self) {
        self.isr |= INT_USED;
    }

    /// The configuration space changed: a new generation, and an interrupt once DRIVER_OK
    /// is set (§2.5, §4.2.2).
    pub fn config_changed(&mut self) {
        self.config_generation = self.config_generation.wrapping_add(1);
        if self.status & DRIVER_OK != 0 {
            self.isr |= INT_CONFIG;
        }
    }

    /// Breaks the device for `e` (the first reason is kept): DEVICE_NEEDS_RESET, and a
    /// configuration change interrupt if DRIVER_OK is set (§2.1.2).
    pub fn fail(&mut self, e: QueueError) {
        if self.broken.is_none() {
            self.broken = Some(e);
            self.status |= DEVICE_NEEDS_RESET;
            if self.status & DRIVER_OK != 0 {
                self.isr |= INT_CONFIG;
            }
        }
    }

    /// The selected queue, if it exists.
    fn selected(&self) -> Option<&Queue> {
        self.queues.get(usize::try_from(self.queue_sel).ok()?)
    }

    /// The selected queue, if it exists and is not ready (its registers may change).
    fn idle_selected(&mut self) -> Option<&mut Queue> {
        let q = self.queues.get_mut(usize::try_from(self.queue_sel).ok()?)?;
        (!q.ready).then_some(q)
    }

    /// An aligned 32-bit read of the control register at `offset`.
    pub fn read(&self, offset: u64) -> u32 {
        match offset {
            MAGIC_VALUE => MAGIC,
            VERSION_REG => VERSION,
            DEVICE_ID => self.device_id,
            VENDOR => VENDOR_ID,
            DEVICE_FEATURES => feature_word(self.offered, self.device_features_sel),
            QUEUE_NUM_MAX => self.selected().map_or(0, |_| u32::from(MAX_SIZE)),
            QUEUE_READY => self.selected().map_or(0, |q| u32::from(q.ready)),
            INTERRUPT_STATUS => u32::from(self.isr),
            STATUS => u32::from(self.status),
            CONFIG_GENERATION => self.config_generation,
            o if SHM_REGS.contains(&o) => u32::MAX,
            _ => 0,
        }
    }

    /// An aligned 32-bit write of `v` to the control register at `offset`.
    pub fn write(&mut self, offset: u64, v: u32) {
        match offset {
            DEVICE_FEATURES_SEL => self.device_features_sel = v,
            DRIVER_FEATURES => self.write_driver_features(v),
            DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            QUEUE_SEL => self.queue_sel = v,
            QUEUE_NUM => self.write_queue_num(v),
            QUEUE_READY => self.write_queue_ready(v),
            QUEUE_NOTIFY => {
                if let Some(n) = self.notified.get_mut(v as usize) {
                    *n = true;
                }
            }
            INTERRUPT_ACK => self.isr &= !(v as u8),
            STATUS => self.write_status(v),
            QUEUE_DESC_LOW..=QUEUE_DEVICE_HIGH => self.write_queue_address(offset, v),
            _ => {}
        }
    }

    fn write_driver_features(&mut self, v: u32) {
        if self.status & FEATURES_OK != 0 {
            return;
        }
        let shift = match self.driver_features_sel {
            0 => 0,
            1 => 32,
            _ => return,
        };
        self.driver_features =
            self.driver_features & !(0xFFFF_FFFF << shift) | u64::from(v) << shift;
    }

    fn write_queue_num(&mut self, v: u32) {
        let Some(q) = self.idle_selected() else {
            return;
        };
        match Queue::valid_size(v) {
            Ok(size) => q.size = size,
            Err(e) => self.fail(e),
        }
    }

    fn write_queue_ready(&mut self, v: u32) {
        let Some(q) = self.queues.get_mut(self.queue_sel as usize) else {
            return;
        };
        match (v, q.ready) {
            (0, _) => q.disable(),
            (_, true) => {}
            (_, false) => {
                if let Err(e) = q.enable() {
                    self.fail(e);
                }
            }
        }
    }

    fn write_queue_address(&mut self, offset: u64, v: u32) {
        let Some(q) = self.idle_selected() else {
            return;
        };
        let field = match offset & !4 {
            QUEUE_DESC_LOW => &mut q.desc,
            QUEUE_DRIVER_LOW => &mut q.avail,
            QUEUE_DEVICE_LOW => &mut q.used,
            _ => return,
        };
        let shift = (offset & 4) * 8;
        *field = *field & !(0xFFFF_FFFF << shift) | u64::from(v) << shift;
    }

    /// A Status write (§2.1, §3.1.1, §4.2.3.1): 0 resets; otherwise bits are added under the
    /// rules in the module documentation.
    fn write_status(&mut self, v: u32) {
        if v == 0 {
            self.reset();
            return;
        }
        let old = self.status;
        let mut new = old | (v as u8 & DRIVER_BITS);
        if new & !old & FEATURES_OK != 0 && !self.acceptable(self.driver_features) {
            new &= !FEATURES_OK;
        }
        if new & FEATURES_OK == 0 {
            new &= !DRIVER_OK;
        }
        if new & !old & DRIVER_OK != 0 {
            // Buffers made available before DRIVER_OK wait for the device to look.
            self.notified = [true; N];
        }
        self.status = new;
    }
}
