// SPDX-License-Identifier: MIT OR Apache-2.0
//! Split virtqueues (virtio 1.2 §2.7) as the device walks them, trusting nothing the guest
//! wrote: every ring and descriptor address goes through [`GuestDma`], which refuses bytes
//! outside guest RAM, every index is checked against the queue size, and address arithmetic
//! is checked. Any violation is a [`QueueError`]; the transport then marks the device broken.
//!
//! Chains are used in the order they were made available, one used element each, so the used
//! index always equals the next available index the device reads. Ring indices are free
//! running `u16`s (§2.7.6): a slot is `index % size`, which the power-of-two size keeps exact
//! across the wrap.
//!
//! Ring accesses are ordered with fences as the driver's barriers expect (this matters when
//! other vCPUs run while the device works), and [`GuestDma`] must copy each aligned 2-, 4- or
//! 8-byte field with one access, so that an index is never read half updated.

use alloc::vec::Vec;
use core::sync::atomic::{Ordering, fence};

use super::GuestDma;
use crate::vmm::devices::state::{StateError, StateReader, StateWriter, ensure};

/// The largest queue the device offers (QueueNumMax, §4.2.2).
pub const MAX_SIZE: u16 = 256;

/// VIRTQ_DESC_F_NEXT: the chain continues at `next` (§2.7.5).
const DESC_F_NEXT: u16 = 1;
/// VIRTQ_DESC_F_WRITE: the buffer is device-writable (§2.7.5).
const DESC_F_WRITE: u16 = 2;
/// VIRTQ_DESC_F_INDIRECT (§2.7.5.3): needs VIRTIO_F_INDIRECT_DESC, never offered.
const DESC_F_INDIRECT: u16 = 4;
/// VRING_AVAIL_F_NO_INTERRUPT: the driver asks not to be interrupted (§2.7.7).
const AVAIL_F_NO_INTERRUPT: u16 = 1;

/// Why a queue (and so the device) stopped: the driver broke a rule of §2.7 or of the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// QueueNum or QueueReady with a size that is not a power of two in 1..=[`MAX_SIZE`]
    /// (§2.7: "Queue Size ... is always a power of 2"); 0 is a queue whose size was never set.
    Size(u32),
    /// A ring address without the alignment of §2.7 (descriptors 16, driver area 2, device
    /// area 4 bytes).
    Misaligned(u64),
    /// A ring, descriptor or buffer not wholly inside guest RAM; the address that failed.
    OutOfRam(u64),
    /// The available index ran more than the queue size ahead of the device (§2.7.13.3).
    AvailIndex(u16),
    /// A descriptor index (a chain head or a `next`) outside the table.
    DescIndex(u16),
    /// A chain longer than the queue: a loop (§2.7.5.2: the driver MUST NOT create one).
    ChainLoop,
    /// A descriptor with VIRTQ_DESC_F_INDIRECT, which was not negotiated (§2.7.5.3.1).
    Indirect,
    /// A device-writable descriptor where the device reads (a TX chain), or a readable one
    /// where it writes (an RX chain, §5.1.6.3).
    Direction,
    /// A TX chain whose length is not a virtio-net header plus an Ethernet frame.
    TxLength(u64),
}

impl QueueError {
    /// The error as a (tag, value) pair for a saved state.
    pub(super) fn encode(self) -> (u8, u64) {
        match self {
            Self::Size(n) => (0, u64::from(n)),
            Self::Misaligned(a) => (1, a),
            Self::OutOfRam(a) => (2, a),
            Self::AvailIndex(i) => (3, u64::from(i)),
            Self::DescIndex(i) => (4, u64::from(i)),
            Self::ChainLoop => (5, 0),
            Self::Indirect => (6, 0),
            Self::Direction => (7, 0),
            Self::TxLength(n) => (8, n),
        }
    }

    /// The error [`encode`](Self::encode) gave `(tag, value)`, if it gives it (canonical:
    /// unused values must be 0).
    pub(super) fn decode(tag: u8, v: u64) -> Option<Self> {
        let e = match tag {
            0 => Self::Size(u32::try_from(v).ok()?),
            1 => Self::Misaligned(v),
            2 => Self::OutOfRam(v),
            3 => Self::AvailIndex(u16::try_from(v).ok()?),
            4 => Self::DescIndex(u16::try_from(v).ok()?),
            5 => Self::ChainLoop,
            6 => Self::Indirect,
            7 => Self::Direction,
            8 => Self::TxLength(v),
            _ => return None,
        };
        (e.encode() == (tag, v)).then_some(e)
    }
}

/// One buffer of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desc {
    /// Guest-physical address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// VIRTQ_DESC_F_WRITE: the device writes it.
    pub writable: bool,
}

/// A descriptor chain the driver made available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The head descriptor's index: the id of the used element.
    pub head: u16,
    /// The buffers, in chain order.
    pub descs: Vec<Desc>,
}

impl Chain {
    /// Total length of the buffers (at most [`MAX_SIZE`] times 4 GiB: no overflow).
    pub fn len(&self) -> u64 {
        self.descs.iter().map(|d| u64::from(d.len)).sum()
    }

    /// Whether the chain has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses the chain unless every buffer is `writable` (device-writable) or every one is
    /// not.
    pub fn require(&self, writable: bool) -> Result<(), QueueError> {
        match self.descs.iter().all(|d| d.writable == writable) {
            true => Ok(()),
            false => Err(QueueError::Direction),
        }
    }

    /// The bytes of every buffer, in order (the caller bounds [`len`](Self::len)).
    pub fn read_all(&self, mem: &mut dyn GuestDma) -> Result<Vec<u8>, QueueError> {
        let mut out = Vec::new();
        for d in &self.descs {
            let at = out.len();
            out.resize(at + d.len as usize, 0);
            read_into(mem, d.addr, &mut out[at..])?;
        }
        Ok(out)
    }

    /// Writes `data` across the buffers in order (the caller checks that it fits).
    pub fn write_all(&self, mem: &mut dyn GuestDma, mut data: &[u8]) -> Result<(), QueueError> {
        for d in &self.descs {
            let n = data.len().min(d.len as usize);
            let (now, rest) = data.split_at(n);
            if !now.is_empty() {
                write(mem, d.addr, now)?;
            }
            data = rest;
        }
        Ok(())
    }
}

/// `base + off`, an address the guest controls: overflow is an address outside RAM.
fn at(base: u64, off: u64) -> Result<u64, QueueError> {
    base.checked_add(off).ok_or(QueueError::OutOfRam(base))
}

fn read_into(mem: &mut dyn GuestDma, gpa: u64, buf: &mut [u8]) -> Result<(), QueueError> {
    match mem.read(gpa, buf) {
        true => Ok(()),
        false => Err(QueueError::OutOfRam(gpa)),
    }
}

fn read<const N: usize>(mem: &mut dyn GuestDma, gpa: u64) -> Result<[u8; N], QueueError> {
    let mut b = [0; N];
    read_into(mem, gpa, &mut b)?;
    Ok(b)
}

fn write(mem: &mut dyn GuestDma, gpa: u64, data: &[u8]) -> Result<(), QueueError> {
    match mem.write(gpa, data) {
        true => Ok(()),
        false => Err(QueueError::OutOfRam(gpa)),
    }
}

/// One virtqueue's configuration (the QueueNum, QueueReady and address registers of §4.2.2)
/// and the device's position in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Queue {
    /// Queue size: 0 (not set) or a power of two up to [`MAX_SIZE`].
    pub(super) size: u16,
    /// QueueReady; only set with a valid size and aligned rings.
    pub(super) ready: bool,
    /// Descriptor table (QueueDesc).
    pub(super) desc: u64,
    /// Driver area, the available ring (QueueDriver).
    pub(super) avail: u64,
    /// Device area, the used ring (QueueDevice).
    pub(super) used: u64,
    /// The next available ring index the device reads.
    pub(super) last_avail: u16,
    /// The next used ring index the device writes.
    pub(super) next_used: u16,
}

impl Queue {
    /// A QueueNum value as a size, if valid.
    pub(super) fn valid_size(n: u32) -> Result<u16, QueueError> {
        match u16::try_from(n) {
            Ok(s) if s.is_power_of_two() && s <= MAX_SIZE => Ok(s),
            _ => Err(QueueError::Size(n)),
        }
    }

    /// The first misaligned ring address, if any.
    fn misaligned(&self) -> Option<u64> {
        [(self.desc, 16), (self.avail, 2), (self.used, 4)]
            .into_iter()
            .find(|&(addr, align)| !addr.is_multiple_of(align))
            .map(|(addr, _)| addr)
    }

    /// QueueReady written 1: checks size and alignment, then starts at ring index 0.
    pub(super) fn enable(&mut self) -> Result<(), QueueError> {
        Self::valid_size(u32::from(self.size))?;
        if let Some(addr) = self.misaligned() {
            return Err(QueueError::Misaligned(addr));
        }
        *self = Self {
            ready: true,
            last_avail: 0,
            next_used: 0,
            ..*self
        };
        Ok(())
    }

    /// QueueReady written 0: the queue stops and forgets its position.
    pub(super) fn disable(&mut self) {
        *self = Self {
            ready: false,
            last_avail: 0,
            next_used: 0,
            ..*self
        };
    }

    /// The next chain the driver made available, without taking it (§2.7.13); `None` if
    /// there is none.
    pub(super) fn peek(&self, mem: &mut dyn GuestDma) -> Result<Option<Chain>, QueueError> {
        let size = self.size;
        if !self.ready || size == 0 {
            return Ok(None);
        }
        let avail_idx = u16::from_le_bytes(read(mem, at(self.avail, 2)?)?);
        match avail_idx.wrapping_sub(self.last_avail) {
            0 => return Ok(None),
            ahead if ahead > size => return Err(QueueError::AvailIndex(avail_idx)),
            _ => {}
        }
        // The ring entry and descriptors are read after the index that published them
        // (§2.7.13.3: the driver writes them before the index, with a barrier between).
        fence(Ordering::Acquire);
        let slot = u64::from(self.last_avail % size);
        let head = u16::from_le_bytes(read(mem, at(self.avail, 4 + 2 * slot)?)?);
        let mut descs = Vec::new();
        let mut i = head;
        loop {
            if i >= size {
                return Err(QueueError::DescIndex(i));
            }
            if descs.len() == usize::from(size) {
                return Err(QueueError::ChainLoop);
            }
            let d: [u8; 16] = read(mem, at(self.desc, 16 * u64::from(i))?)?;
            // struct virtq_desc { le64 addr; le32 len; le16 flags; le16 next; } (§2.7.5)
            let field = |off: usize, n: usize| {
                d[off..off + n]
                    .iter()
                    .rev()
                    .fold(0, |v, &b| v << 8 | u64::from(b))
            };
            let flags = field(12, 2) as u16;
            if flags & DESC_F_INDIRECT != 0 {
                return Err(QueueError::Indirect);
            }
            descs.push(Desc {
                addr: field(0, 8),
                len: field(8, 4) as u32,
                writable: flags & DESC_F_WRITE != 0,
            });
            if flags & DESC_F_NEXT == 0 {
                return Ok(Some(Chain { head, descs }));
            }
            i = field(14, 2) as u16;
        }
    }

    /// Takes the chain [`peek`](Self::peek) returned and returns it used with `len` bytes
    /// written (§2.7.8): the element first, then the index the driver polls.
    pub(super) fn put_used(
        &mut self,
        mem: &mut dyn GuestDma,
        head: u16,
        len: u32,
    ) -> Result<(), QueueError> {
        let slot = self.next_used.checked_rem(self.size);
        let slot = u64::from(slot.ok_or(QueueError::Size(0))?);
        let mut elem = [0; 8];
        elem[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        elem[4..].copy_from_slice(&len.to_le_bytes());
        write(mem, at(self.used, 4 + 8 * slot)?, &elem)?;
        // The element is visible before the index that publishes it (§2.7.8.2).
        fence(Ordering::Release);
        let next = self.next_used.wrapping_add(1);
        write(mem, at(self.used, 2)?, &next.to_le_bytes())?;
        self.next_used = next;
        self.last_avail = self.last_avail.wrapping_add(1);
        Ok(())
    }

    /// Whether the driver wants an interrupt for used buffers: VRING_AVAIL_F_NO_INTERRUPT is
    /// clear (§2.7.7.2, without VIRTIO_F_EVENT_IDX).
    pub(super) fn wants_interrupt(&self, mem: &mut dyn GuestDma) -> Result<bool, QueueError> {
        // The used index is written before the flags are read (a store then a load), or a
        // driver that just cleared the flag could miss this interrupt (§2.7.7).
        fence(Ordering::SeqCst);
        let flags = u16::from_le_bytes(read(mem, self.avail)?);
        Ok(flags & AVAIL_F_NO_INTERRUPT == 0)
    }

    /// Appends the queue's state: size u16, ready flag, desc, avail, used u64, last_avail,
    /// next_used u16.
    pub(super) fn save(&self, w: &mut StateWriter) {
        w.u16(self.size);
        w.flag(self.ready);
        for a in [self.desc, self.avail, self.used] {
            w.u64(a);
        }
        w.u16(self.last_avail);
        w.u16(self.next_used);
    }

    /// A queue [`save`](Self::save) wrote, refused unless the device could be in it.
    pub(super) fn restore(r: &mut StateReader<'_>) -> Result<Self, StateError> {
        let size = r.u16()?;
        let q = Self {
            size,
            ready: r.flag("virtio queue ready")?,
            desc: r.u64()?,
            avail: r.u64()?,
            used: r.u64()?,
            last_avail: r.u16()?,
            next_used: r.u16()?,
        };
        let valid = size == 0 || Self::valid_size(u32::from(size)).is_ok();
        ensure(
            valid && (size != 0 || !q.ready),
            "virtio queue size",
            u64::from(size),
        )?;
        if q.ready {
            let bad = q.misaligned();
            ensure(bad.is_none(), "virtio queue address", bad.unwrap_or(0))?;
        }
        let index = u64::from(q.last_avail) | u64::from(q.next_used) << 16;
        // Every chain taken is used at once; a stopped queue is at index 0.
        let consistent = q.last_avail == q.next_used && (q.ready || q.last_avail == 0);
        ensure(consistent, "virtio queue index", index)?;
        Ok(q)
    }
}
