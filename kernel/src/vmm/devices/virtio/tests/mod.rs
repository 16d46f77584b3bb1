// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host unit tests of the virtio-net device: a fake guest RAM and a small driver that does
//! what Linux's `virtio_mmio` and `virtio_net` do (drivers/virtio/virtio_mmio.c: reset,
//! ACKNOWLEDGE, DRIVER, feature negotiation, per queue select / QueueNumMax / QueueNum /
//! addresses / QueueReady, DRIVER_OK; then buffers posted, chains made available, notified).

mod hostile;
mod state;
mod traffic;
mod transport;

use alloc::vec;
use alloc::vec::Vec;

use super::mmio::{VIRTIO_F_VERSION_1, status};
use super::net::FEATURES;
use super::{GuestDma, TxReport, VirtioNet};

/// Guest RAM size: 4 MiB.
const RAM: usize = 4 << 20;
const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

// Register offsets (virtio 1.2 §4.2.2).
const DEVICE_FEATURES: u64 = 0x10;
const DEVICE_FEATURES_SEL: u64 = 0x14;
const DRIVER_FEATURES: u64 = 0x20;
const DRIVER_FEATURES_SEL: u64 = 0x24;
const QUEUE_SEL: u64 = 0x30;
const QUEUE_NUM_MAX: u64 = 0x34;
const QUEUE_NUM: u64 = 0x38;
const QUEUE_READY: u64 = 0x44;
const QUEUE_NOTIFY: u64 = 0x50;
const INTERRUPT_STATUS: u64 = 0x60;
const INTERRUPT_ACK: u64 = 0x64;
const STATUS: u64 = 0x70;
const QUEUE_DESC: u64 = 0x80;
const QUEUE_DRIVER: u64 = 0x90;
const QUEUE_DEVICE: u64 = 0xA0;
const CONFIG_GENERATION: u64 = 0xFC;

const RXQ: usize = 0;
const TXQ: usize = 1;
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
const F_INDIRECT: u16 = 4;

/// A chain as the test driver writes it: (address, length, flags) per buffer.
type Bufs<'a> = &'a [(u64, u32, u16)];

/// Fake guest RAM that records every write the device makes.
#[derive(Clone)]
struct Ram {
    bytes: Vec<u8>,
    /// (address, length) of every accepted device write.
    writes: Vec<(u64, usize)>,
}

impl Ram {
    fn range(&self, gpa: u64, len: usize) -> Option<core::ops::Range<usize>> {
        let start = usize::try_from(gpa).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.bytes.len()).then_some(start..end)
    }

    fn put(&mut self, gpa: u64, data: &[u8]) {
        let r = self.range(gpa, data.len()).expect("test writes inside RAM");
        self.bytes[r].copy_from_slice(data);
    }

    fn get(&self, gpa: u64, len: usize) -> &[u8] {
        &self.bytes[self.range(gpa, len).expect("test reads inside RAM")]
    }

    fn u16(&self, gpa: u64) -> u16 {
        u16::from_le_bytes(self.get(gpa, 2).try_into().unwrap())
    }

    fn u32(&self, gpa: u64) -> u32 {
        u32::from_le_bytes(self.get(gpa, 4).try_into().unwrap())
    }
}

impl GuestDma for Ram {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> bool {
        let Some(r) = self.range(gpa, buf.len()) else {
            return false;
        };
        buf.copy_from_slice(&self.bytes[r]);
        true
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> bool {
        let Some(r) = self.range(gpa, data.len()) else {
            return false;
        };
        self.bytes[r].copy_from_slice(data);
        self.writes.push((gpa, data.len()));
        true
    }
}

/// The driver's view of one virtqueue.
#[derive(Clone, Copy)]
struct DrvQueue {
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
    /// Next descriptor to fill (descriptors are handed out round-robin).
    next_desc: u16,
    avail_idx: u16,
    used_seen: u16,
}

impl DrvQueue {
    /// Queue `q`'s rings at the default place for size `size`.
    fn at(q: usize, size: u16) -> Self {
        let base = 0x1_0000 * (q as u64 + 1);
        Self {
            size,
            desc: base,
            avail: base + 0x4000,
            used: base + 0x8000,
            next_desc: 0,
            avail_idx: 0,
            used_seen: 0,
        }
    }

    /// The 2 KiB buffer of descriptor `i` of queue `q`.
    fn buffer(q: usize, i: u16) -> u64 {
        0x10_0000 * (q as u64 + 1) + 0x800 * u64::from(i)
    }
}

/// A descriptor as the driver writes it.
fn desc(addr: u64, len: u32, flags: u16, next: u16) -> [u8; 16] {
    let mut d = [0; 16];
    d[..8].copy_from_slice(&addr.to_le_bytes());
    d[8..12].copy_from_slice(&len.to_le_bytes());
    d[12..14].copy_from_slice(&flags.to_le_bytes());
    d[14..].copy_from_slice(&next.to_le_bytes());
    d
}

/// A guest with a virtio-net device and a driver for it.
struct Guest {
    dev: VirtioNet,
    ram: Ram,
    q: [DrvQueue; 2],
}

impl Guest {
    /// A guest whose driver has not touched the device.
    fn new() -> Self {
        Self {
            dev: VirtioNet::new(MAC),
            ram: Ram {
                bytes: vec![0; RAM],
                writes: Vec::new(),
            },
            q: [DrvQueue::at(RXQ, 256), DrvQueue::at(TXQ, 256)],
        }
    }

    /// A guest after Linux's probe with queues of `size`.
    fn ready(size: u16) -> Self {
        let mut g = Self::new();
        g.q = [DrvQueue::at(RXQ, size), DrvQueue::at(TXQ, size)];
        g.probe(FEATURES);
        g
    }

    fn read(&mut self, offset: u64) -> u32 {
        self.dev.mmio_read(offset, 4) as u32
    }

    fn write(&mut self, offset: u64, v: u32) {
        self.dev.mmio_write(offset, 4, u64::from(v));
    }

    fn write64(&mut self, offset: u64, v: u64) {
        self.write(offset, v as u32);
        self.write(offset + 4, (v >> 32) as u32);
    }

    fn status(&mut self) -> u8 {
        self.read(STATUS) as u8
    }

    fn set_status(&mut self, bits: u8) {
        let s = self.status();
        self.write(STATUS, u32::from(s | bits));
    }

    /// Features negotiation as `virtio_dev_probe` and `vm_finalize_features` do it; returns
    /// whether FEATURES_OK stuck.
    fn negotiate(&mut self, features: u64) -> bool {
        self.write(STATUS, 0);
        assert_eq!(self.status(), 0, "reset reads back as 0");
        self.set_status(status::ACKNOWLEDGE);
        self.set_status(status::DRIVER);
        self.write(DEVICE_FEATURES_SEL, 1);
        let high = self.read(DEVICE_FEATURES);
        self.write(DEVICE_FEATURES_SEL, 0);
        let offered = u64::from(high) << 32 | u64::from(self.read(DEVICE_FEATURES));
        assert_eq!(offered, FEATURES);
        self.write(DRIVER_FEATURES_SEL, 1);
        self.write(DRIVER_FEATURES, (features >> 32) as u32);
        self.write(DRIVER_FEATURES_SEL, 0);
        self.write(DRIVER_FEATURES, features as u32);
        self.set_status(status::FEATURES_OK);
        self.status() & status::FEATURES_OK != 0
    }

    /// `vm_setup_vq` for queue `q`.
    fn setup_queue(&mut self, q: usize) {
        let dq = self.q[q];
        self.write(QUEUE_SEL, q as u32);
        assert_eq!(self.read(QUEUE_READY), 0, "a fresh queue is not ready");
        assert_eq!(self.read(QUEUE_NUM_MAX), 256);
        self.write(QUEUE_NUM, u32::from(dq.size));
        self.write64(QUEUE_DESC, dq.desc);
        self.write64(QUEUE_DRIVER, dq.avail);
        self.write64(QUEUE_DEVICE, dq.used);
        self.write(QUEUE_READY, 1);
    }

    /// The whole probe with driver features `features`.
    fn probe(&mut self, features: u64) {
        assert!(self.negotiate(features), "FEATURES_OK refused");
        self.setup_queue(RXQ);
        self.setup_queue(TXQ);
        self.set_status(status::DRIVER_OK);
        assert_eq!(self.status() & status::DRIVER_OK, status::DRIVER_OK);
    }

    /// Writes a chain of buffers into queue `q`'s table and makes it
    /// available; returns the head. Does not notify.
    fn chain(&mut self, q: usize, bufs: Bufs<'_>) -> u16 {
        let dq = &mut self.q[q];
        let head = dq.next_desc;
        let mut i = head;
        for (k, &(addr, len, flags)) in bufs.iter().enumerate() {
            let next = (i + 1) % dq.size;
            let more = if k + 1 < bufs.len() { F_NEXT } else { 0 };
            let d = desc(addr, len, flags | more, next);
            let at = dq.desc + 16 * u64::from(i);
            self.ram.bytes[at as usize..at as usize + 16].copy_from_slice(&d);
            i = next;
        }
        dq.next_desc = i;
        self.make_available(q, head);
        head
    }

    /// Puts `head` in queue `q`'s available ring and bumps its index.
    fn make_available(&mut self, q: usize, head: u16) {
        let dq = &mut self.q[q];
        let slot = u64::from(dq.avail_idx % dq.size);
        let (avail, idx) = (dq.avail, dq.avail_idx.wrapping_add(1));
        dq.avail_idx = idx;
        self.ram.put(avail + 4 + 2 * slot, &head.to_le_bytes());
        self.ram.put(avail + 2, &idx.to_le_bytes());
    }

    /// Posts one device-writable receive buffer of `len` bytes.
    fn post_rx(&mut self, len: u32) -> u16 {
        let i = self.q[RXQ].next_desc;
        self.chain(RXQ, &[(DrvQueue::buffer(RXQ, i), len, F_WRITE)])
    }

    /// Queues `frame` for transmission behind a zero header, in one buffer or split after the
    /// header (as Linux's `xmit_skb` does with and without headroom).
    fn queue_tx(&mut self, frame: &[u8], split: bool) -> u16 {
        let i = self.q[TXQ].next_desc;
        let a = DrvQueue::buffer(TXQ, i);
        let len = frame.len() as u32;
        if split {
            let b = DrvQueue::buffer(TXQ, (i + 1) % self.q[TXQ].size);
            self.ram.put(a, &[0; 12]);
            self.ram.put(b, frame);
            self.chain(TXQ, &[(a, 12, 0), (b, len, 0)])
        } else {
            self.ram.put(a, &[0; 12]);
            self.ram.put(a + 12, frame);
            self.chain(TXQ, &[(a, 12 + len, 0)])
        }
    }

    fn notify(&mut self, q: usize) {
        self.write(QUEUE_NOTIFY, q as u32);
    }

    /// Sets or clears VRING_AVAIL_F_NO_INTERRUPT on queue `q`.
    fn suppress(&mut self, q: usize, on: bool) {
        let avail = self.q[q].avail;
        self.ram.put(avail, &u16::from(on).to_le_bytes());
    }

    /// New used elements (id, len) of queue `q` since the last call.
    fn used(&mut self, q: usize) -> Vec<(u32, u32)> {
        let dq = self.q[q];
        let idx = self.ram.u16(dq.used + 2);
        let mut out = Vec::new();
        let mut seen = dq.used_seen;
        while seen != idx {
            let at = dq.used + 4 + 8 * u64::from(seen % dq.size);
            out.push((self.ram.u32(at), self.ram.u32(at + 4)));
            seen = seen.wrapping_add(1);
        }
        self.q[q].used_seen = seen;
        out
    }

    /// The interrupt handler (`vm_interrupt`): reads InterruptStatus and acknowledges it.
    fn ack(&mut self) -> u32 {
        let isr = self.read(INTERRUPT_STATUS);
        self.write(INTERRUPT_ACK, isr);
        isr
    }

    /// Transmits with a sink that takes `room` frames; returns the report and the frames.
    fn transmit(&mut self, room: usize) -> (TxReport, Vec<Vec<u8>>) {
        let mut frames = Vec::new();
        let report = self.dev.transmit(&mut self.ram, &mut |f| {
            if frames.len() == room {
                return false;
            }
            frames.push(f.to_vec());
            true
        });
        (report, frames)
    }
}

/// A test frame of `len` bytes numbered `n`: broadcast to the guest's MAC, bytes from `n`.
fn frame(n: u8, len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| n.wrapping_add(i as u8)).collect();
    f[..6].copy_from_slice(&MAC);
    f
}

#[test]
fn linux_probe_negotiates_version_1_mac_and_status() {
    let mut g = Guest::ready(256);
    assert_eq!(g.dev.status(), 0x0F);
    assert_eq!(g.dev.broken(), None);
    assert!(!g.dev.irq_level());
    assert!(
        g.dev.tx_pending(),
        "DRIVER_OK: the device looks at its queues"
    );
    assert_eq!(FEATURES & VIRTIO_F_VERSION_1, VIRTIO_F_VERSION_1);
    assert_eq!(g.read(CONFIG_GENERATION), 0);
}
