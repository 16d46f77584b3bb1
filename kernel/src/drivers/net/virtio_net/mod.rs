// SPDX-License-Identifier: MIT OR Apache-2.0
//! virtio-net (virtio v1.1, OASIS; section numbers below are v1.1's, v1.2 moves split
//! virtqueues from 2.6 to 2.7), polled, over the PCI modern transport, with receive interrupts
//! through MSI-X when the device has it.
//!
//! # Why not the `virtio-drivers` crate
//!
//! rcore-os's `virtio-drivers` 0.13 was evaluated and not used. It does build on stable for
//! `x86_64-unknown-none` (no nightly features), and its `Hal` trait could be implemented over
//! identity-mapped DMA memory. But:
//! - it panics on device-written data: `VirtIONet::receive` indexes its buffer array with the
//!   id from the used ring unchecked, and the PCI transport's `notify` unwraps an index computed
//!   from the device's `queue_notify_off`; its `Dma` asserts on free. Castor must survive a
//!   buggy or hostile device;
//! - initialization is not what the spec asks of a driver that must not hang or misconfigure:
//!   no wait for the reset to complete, no check that the device kept `FEATURES_OK`,
//!   `VIRTIO_F_VERSION_1` not required (it silently falls back to the legacy header); no waits
//!   are bounded (`send` spins until the device completes);
//! - it brings its own PCI root and configuration access (`ConfigurationAccess`, 8-bit register
//!   offsets, its own BAR decoding) duplicating `drivers::pci`, which already sizes BARs and
//!   lists capabilities;
//! - its raw API notifies on every buffer added and its owning API allocates per frame; batched
//!   notifications need the queue internals anyway;
//! - it adds six crates (safe-mmio, zerocopy, thiserror, enumn, embedded-io and proc macros) to
//!   the hypervisor's trusted base, for what is about 1000 lines here, documentation and tests
//!   included.
//!
//! So this driver is written for Castor: one descriptor per buffer (header and frame
//! contiguous; any layout is allowed with `VIRTIO_F_VERSION_1`, 2.6.4), everything checked.
//!
//! # Bring-up (3.1.1)
//!
//! Structures through vendor-specific capabilities (4.1.4, [`pci_transport`]), reset and wait
//! for it, ACKNOWLEDGE, DRIVER, features (2.2): `VIRTIO_F_VERSION_1` required (QEMU's
//! transitional 0x1000 device is driven through its modern interface), `VIRTIO_NET_F_MAC`
//! required (the MAC is read from the device configuration, 5.1.4), `VIRTIO_F_ACCESS_PLATFORM`
//! and `VIRTIO_F_ORDER_PLATFORM` accepted if offered (Castor programs no IOMMU, so bus address =
//! physical address; the barriers used are real x86 barriers); no offloads, so every buffer
//! starts with the 12-byte `virtio_net_hdr` (5.1.6), all zero on transmit, ignored on receive.
//! FEATURES_OK is checked, queue 0 (receiveq) and 1 (transmitq) are set up as split virtqueues
//! (2.6) of up to 256 entries, then DRIVER_OK. Legacy interrupts are disabled. With an MSI-X
//! capability, table entry 0 is given a vector and the receive queue signals through it
//! (`queue_msix_vector`, read back: the device may refuse with 0xFFFF, 4.1.5.1.2); the
//! interrupts are counted ([`Nic::interrupts`]) while the data path stays polled. The transmit
//! queue asks for no interrupts (`VIRTQ_AVAIL_F_NO_INTERRUPT`), nor does the receive queue
//! without MSI-X; configuration changes signal nothing (`config_msix_vector` 0xFFFF).
//!
//! # Data path
//!
//! - Receive: every buffer (12 + 1514 bytes, device writable) is posted at start; `receive`
//!   pops one used buffer, copies the frame out and posts the buffer again at once.
//! - Transmit: `transmit` copies the frame behind a zeroed header into a free preallocated
//!   buffer and publishes it (the avail index is updated per frame, so a device that is already
//!   processing picks it up), or returns `NicError::Full` when all are in flight (after trying
//!   to reclaim). `poll` reclaims completed transmit buffers.
//! - Notifications are batched: a queue is notified every 16 transmitted / 32 re-posted
//!   buffers, on `poll`, when `receive` finds nothing waiting, and when the transmit ring is
//!   full; never when nothing was posted since the last one, and not when the device set
//!   `VIRTQ_USED_F_NO_NOTIFY` (2.6.10, 2.6.13.4). So a burst of `transmit` calls followed by
//!   `poll` costs a few notifications, and a single frame goes out at the next `poll`/`receive`.
//! - Ordering ([`ring`]): descriptor and ring writes, then a release fence, then the avail
//!   index (2.6.13.3); a full fence before reading the used flags to decide on notifying; the
//!   used index read before the entries (2.6.14). Shared memory is accessed with volatile reads
//!   and writes only.
//! - A device that writes an impossible used index or id (out of range, not in flight, twice)
//!   is reset and the interface reports `NicError::Down`; lengths are bounded by the buffer
//!   size (bad ones dropped and counted). Nothing the device writes can make the driver panic
//!   or reach outside its buffers.

pub mod pci_transport;
pub mod ring;

use core::ptr;

use self::pci_transport::{NO_VECTOR, PciTransport, status};
use self::ring::{AVAIL_F_NO_INTERRUPT, DESC_F_WRITE, Layout, SplitQueue, Used, UsedError};
use super::{MAX_FRAME, MIN_FRAME, Nic, NicError, NicStats};
use crate::arch::x86_64::irq::Counter;
use crate::drivers::dma::DmaBuffer;
use crate::drivers::pci::interrupts::{self, Mode};
use crate::drivers::pci::{ConfigSpace, Device};

/// Feature bits (5.1.3, 6).
const F_MAC: u64 = 1 << 5;
const F_VERSION_1: u64 = 1 << 32;
const F_ACCESS_PLATFORM: u64 = 1 << 33;
const F_ORDER_PLATFORM: u64 = 1 << 36;

const QUEUE_RX: u16 = 0;
const QUEUE_TX: u16 = 1;

/// `struct virtio_net_hdr` with `VIRTIO_F_VERSION_1` (5.1.6): 12 bytes.
const HDR_LEN: usize = 12;
/// Each buffer: header and the largest frame (5.1.6.3.1: at least 1526 bytes without offloads).
const BUF_LEN: usize = HDR_LEN + MAX_FRAME;
/// Buffers lie this far apart in the queue's DMA memory.
const BUF_STRIDE: usize = 2048;

/// Notify the transmit queue after this many unnotified frames even without `poll`.
const TX_KICK_BATCH: u16 = 16;
/// Notify the receive queue after this many re-posted buffers.
const RX_KICK_BATCH: u16 = 32;

/// One virtqueue and its buffers, in one DMA allocation: the ring first, then the buffers
/// (buffer `i` is descriptor `i`'s).
struct Queue {
    index: u16,
    ring: SplitQueue,
    /// `None` once deliberately leaked (a device that would not reset may still write it).
    mem: Option<DmaBuffer>,
    phys: u64,
    bufs: u64,
    notify: u64,
}

impl Queue {
    fn new(index: u16, size: u16) -> Result<Self, &'static str> {
        let layout = Layout::new(size).ok_or("virtio queue size not supported")?;
        let bufs_offset = layout.bytes.next_multiple_of(4096);
        let mem = DmaBuffer::new(bufs_offset + usize::from(size) * BUF_STRIDE)
            .ok_or("no DMA memory for the virtqueues")?;
        let phys = mem.phys();
        // SAFETY: `mem` is zeroed, page aligned, identity mapped and at least `layout.bytes`
        // long; it is owned by this queue (and dropped after the device is reset, see `Drop`).
        let ring = unsafe { SplitQueue::new(phys as *mut u8, layout) };
        Ok(Self {
            index,
            ring,
            mem: Some(mem),
            phys,
            bufs: phys + bufs_offset as u64,
            notify: 0,
        })
    }

    fn size(&self) -> u16 {
        self.ring.layout().size
    }

    /// Bus (= physical = virtual) address of buffer `id` (< size).
    fn buf(&self, id: u16) -> u64 {
        self.bufs + u64::from(id) * BUF_STRIDE as u64
    }
}

/// A virtio network device driven through its modern PCI interface.
pub struct VirtioNet {
    transport: PciTransport,
    mac: [u8; 6],
    rx: Queue,
    tx: Queue,
    stats: NicStats,
    /// The device broke the protocol; it has been reset and is no longer used.
    broken: bool,
    /// Receive interrupts through MSI-X table entry 0, and their count.
    irq: Option<(Mode, &'static Counter)>,
}

/// MSI-X table entry the receive queue signals through.
const RX_MSIX_ENTRY: u16 = 0;

impl VirtioNet {
    /// Brings up the virtio-net function `d` (device ID 0x1000 transitional or 0x1041 modern).
    pub fn new(d: &Device, cfg: &dyn ConfigSpace) -> Result<Self, &'static str> {
        let t = PciTransport::new(d, cfg)?;
        t.reset()?;
        t.add_status(status::ACKNOWLEDGE);
        t.add_status(status::DRIVER);
        let give_up = |why| {
            t.add_status(status::FAILED);
            Err(why)
        };
        let offered = t.device_features();
        if offered & F_VERSION_1 == 0 {
            return give_up("device lacks VIRTIO_F_VERSION_1 (legacy only)");
        }
        if offered & F_MAC == 0 {
            return give_up("device has no MAC address (VIRTIO_NET_F_MAC)");
        }
        let accepted = offered & (F_VERSION_1 | F_MAC | F_ACCESS_PLATFORM | F_ORDER_PLATFORM);
        t.set_driver_features(accepted);
        t.add_status(status::FEATURES_OK);
        if t.status() & status::FEATURES_OK == 0 {
            return give_up("device refused the features (FEATURES_OK not kept)");
        }
        let Some(mac) = t.device_config::<6>(0) else {
            return give_up("MAC address unreadable (configuration keeps changing)");
        };
        let (Some(rx_size), Some(tx_size)) = (
            ring::choose_size(t.queue_max_size(QUEUE_RX)),
            ring::choose_size(t.queue_max_size(QUEUE_TX)),
        ) else {
            return give_up("device lacks a receive or transmit queue");
        };
        let queues =
            Queue::new(QUEUE_RX, rx_size).and_then(|rx| Ok((rx, Queue::new(QUEUE_TX, tx_size)?)));
        let (rx, tx) = match queues {
            Ok(q) => q,
            Err(why) => return give_up(why),
        };
        // From here on, dropping `nic` resets the device before its memory is freed.
        let mut nic = Self {
            transport: t,
            mac,
            rx,
            tx,
            stats: NicStats::default(),
            broken: false,
            irq: None,
        };
        // Counters live as long as their vector: never freed (one per device probed).
        let counter: &'static Counter =
            alloc::boxed::Box::leak(alloc::boxed::Box::new(Counter::new()));
        match interrupts::connect_msix(d, cfg, RX_MSIX_ENTRY, counter) {
            Ok(mode) => nic.irq = Some((mode, counter)),
            Err(why) => log::info!(
                "pci {} virtio-net: no interrupts ({why}): polled",
                d.address
            ),
        }
        nic.start()?;
        match nic.irq {
            Some((mode, _)) => log::info!("pci {} virtio-net: {mode} (receive queue)", d.address),
            None => log::info!("pci {} virtio-net: polled, no interrupts", d.address),
        }
        log::debug!(
            "virtio-net at {}: features {accepted:#x}, queues rx {rx_size} tx {tx_size}",
            d.address
        );
        Ok(nic)
    }

    /// Configures both queues, posts every receive buffer, sets DRIVER_OK (3.1.1 steps 7–8).
    fn start(&mut self) -> Result<(), &'static str> {
        self.transport.set_config_vector(NO_VECTOR);
        let rx_entry = if self.irq.is_some() {
            RX_MSIX_ENTRY
        } else {
            NO_VECTOR
        };
        for (q, entry) in [(&mut self.rx, rx_entry), (&mut self.tx, NO_VECTOR)] {
            let layout = q.ring.layout();
            q.notify = self.transport.enable_queue(
                q.index,
                layout.size,
                (
                    q.phys,
                    q.phys + layout.avail as u64,
                    q.phys + layout.used as u64,
                ),
                entry,
            )?;
            q.ring.set_avail_flags(AVAIL_F_NO_INTERRUPT);
        }
        if self.irq.is_some() {
            let kept = self.transport.queue_vector(QUEUE_RX);
            if kept == RX_MSIX_ENTRY {
                self.rx.ring.set_avail_flags(0);
            } else {
                log::warn!(
                    "virtio-net: device refused MSI-X entry {RX_MSIX_ENTRY} for the receive queue (kept {kept:#x}): polled"
                );
                self.irq = None;
            }
        }
        while let Some(id) = self.rx.ring.alloc() {
            self.rx
                .ring
                .post(id, self.rx.buf(id), BUF_LEN as u32, DESC_F_WRITE);
        }
        self.rx.ring.publish();
        self.transport.add_status(status::DRIVER_OK);
        let s = self.transport.status();
        if s & (status::DEVICE_NEEDS_RESET | status::FAILED) != 0 || s & status::DRIVER_OK == 0 {
            return Err("device did not accept DRIVER_OK");
        }
        // Notifications only after DRIVER_OK (3.1.1).
        self.kick(QUEUE_RX);
        Ok(())
    }

    /// Notifies queue `index` if buffers were posted since the last notification and the device
    /// wants notifications.
    fn kick(&mut self, index: u16) {
        let q = if index == QUEUE_RX {
            &mut self.rx
        } else {
            &mut self.tx
        };
        if q.ring.take_notify() {
            self.transport.notify(q.notify, q.index);
        }
    }

    /// The device wrote an impossible used-ring entry: stop using it.
    fn fail(&mut self, queue: &str, e: UsedError) {
        if !self.broken {
            log::error!("virtio-net: {queue} queue: device broke the used ring ({e:?}); stopped");
            self.broken = true;
            self.transport.reset_nowait();
        }
    }

    /// Returns completed transmit buffers to the free list.
    fn reclaim_tx(&mut self) {
        for _ in 0..self.tx.size() {
            match self.tx.ring.pop_used() {
                Ok(Some(Used { id, .. })) => self.tx.ring.release(id),
                Ok(None) => break,
                Err(e) => return self.fail("transmit", e),
            }
        }
    }

    /// Copies the frame in used receive buffer `u` into `out`; `None` if its length is
    /// impossible or it does not fit.
    fn copy_out(&self, u: Used, out: &mut [u8]) -> Option<usize> {
        let total = u.len as usize;
        if !(HDR_LEN + MIN_FRAME..=BUF_LEN).contains(&total) {
            return None;
        }
        let len = total - HDR_LEN;
        if len > out.len() {
            return None;
        }
        // SAFETY: `u.id` < queue size (checked by `pop_used`), so the buffer's BUF_LEN bytes lie
        // in this queue's DMA memory, which the device has handed back (used ring); `len` ≤
        // BUF_LEN − HDR_LEN and ≤ `out.len()`.
        unsafe {
            ptr::copy_nonoverlapping(
                (self.rx.buf(u.id) as usize + HDR_LEN) as *const u8,
                out.as_mut_ptr(),
                len,
            );
        }
        Some(len)
    }
}

impl Nic for VirtioNet {
    fn name(&self) -> &'static str {
        "virtio-net"
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), NicError> {
        if self.broken {
            return Err(NicError::Down);
        }
        if !(MIN_FRAME..=MAX_FRAME).contains(&frame.len()) {
            return Err(NicError::BadLength(frame.len()));
        }
        let id = match self.tx.ring.alloc() {
            Some(id) => id,
            None => {
                self.reclaim_tx();
                self.kick(QUEUE_TX);
                match self.tx.ring.alloc() {
                    Some(id) if !self.broken => id,
                    _ if self.broken => return Err(NicError::Down),
                    // A device that hit an error stops consuming buffers (2.1.2): tell it
                    // apart from back-pressure.
                    _ if self.transport.status() & status::DEVICE_NEEDS_RESET != 0 => {
                        log::error!("virtio-net: device needs a reset; stopped");
                        self.broken = true;
                        self.transport.reset_nowait();
                        return Err(NicError::Down);
                    }
                    _ => {
                        self.stats.tx_full += 1;
                        return Err(NicError::Full);
                    }
                }
            }
        };
        let buf = self.tx.buf(id) as usize as *mut u8;
        // SAFETY: descriptor `id` is free (driver owned), so its buffer of BUF_LEN bytes in this
        // queue's DMA memory is not in the device's hands; HDR_LEN + frame.len() ≤ BUF_LEN.
        unsafe {
            ptr::write_bytes(buf, 0, HDR_LEN);
            ptr::copy_nonoverlapping(frame.as_ptr(), buf.add(HDR_LEN), frame.len());
        }
        let addr = self.tx.buf(id);
        self.tx
            .ring
            .post(id, addr, (HDR_LEN + frame.len()) as u32, 0);
        self.tx.ring.publish();
        self.stats.tx_frames += 1;
        if self.tx.ring.unnotified() >= TX_KICK_BATCH {
            self.kick(QUEUE_TX);
        }
        Ok(())
    }

    fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        if self.broken {
            return None;
        }
        for _ in 0..self.rx.size() {
            let used = match self.rx.ring.pop_used() {
                Ok(Some(u)) => u,
                Ok(None) => break,
                Err(e) => {
                    self.fail("receive", e);
                    return None;
                }
            };
            let got = self.copy_out(used, buf);
            let addr = self.rx.buf(used.id);
            self.rx
                .ring
                .post(used.id, addr, BUF_LEN as u32, DESC_F_WRITE);
            self.rx.ring.publish();
            if self.rx.ring.unnotified() >= RX_KICK_BATCH {
                self.kick(QUEUE_RX);
            }
            match got {
                Some(len) => {
                    self.stats.rx_frames += 1;
                    return Some(len);
                }
                None => self.stats.rx_dropped += 1,
            }
        }
        // Nothing (more) waiting: the caller is idle, so send the notifications held back.
        self.kick(QUEUE_RX);
        self.kick(QUEUE_TX);
        None
    }

    fn poll(&mut self) {
        if self.broken {
            return;
        }
        self.reclaim_tx();
        self.kick(QUEUE_TX);
        self.kick(QUEUE_RX);
    }

    fn stats(&self) -> NicStats {
        self.stats
    }

    fn interrupts(&self) -> Option<(&'static str, u64)> {
        self.irq.map(|(mode, counter)| (mode.name(), counter.get()))
    }

    fn route_interrupts(&mut self, apic_id: u32) -> bool {
        self.irq
            .is_some_and(|(mode, _)| interrupts::route(&mode, apic_id))
    }
}

impl Drop for VirtioNet {
    fn drop(&mut self) {
        if let Err(why) = self.transport.reset() {
            // It may still write the rings and buffers: never give that memory back.
            log::error!("virtio-net: {why}; leaking its DMA memory");
            for q in [&mut self.rx, &mut self.tx] {
                core::mem::forget(q.mem.take());
            }
        }
    }
}
