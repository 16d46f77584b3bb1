// SPDX-License-Identifier: MIT OR Apache-2.0
//! A virtio-net device (virtio 1.2 §5.1) on the virtio-mmio transport: receiveq1 (queue 0)
//! and transmitq1 (queue 1), a MAC address, a link status and its MTU, nothing else.
//!
//! Offered features: VIRTIO_F_VERSION_1, VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS and
//! VIRTIO_NET_F_MTU (1500: a driver that negotiates it must not send more, §5.1.4.1, and Linux
//! then refuses a larger MTU asked of the interface instead of sending frames this device
//! refuses). Without
//! offloads, VIRTIO_NET_F_MRG_RXBUF or indirect descriptors every packet is a 12-byte
//! `virtio_net_hdr` (§5.1.6, VERSION_1 layout) followed by one whole Ethernet frame without
//! FCS, in one descriptor chain.
//!
//! - Transmit ([`VirtioNet::transmit`]): a TX chain must be device-readable only and
//!   12 + 14..=1514 bytes long ([`MAX_FRAME`]: the 1500-byte MTU offered); anything else
//!   breaks the device. The header is ignored: with no
//!   offloads negotiated it carries nothing the device must act on (§5.1.6.2.1).
//! - Receive ([`VirtioNet::receive`]): an RX chain must be device-writable only (§5.1.6.3).
//!   A frame shorter than an Ethernet header or longer than [`MAX_RX_FRAME`] is dropped
//!   ([`RxOutcome::Dropped`]). So is one that does not fit the next posted chain: the chain
//!   stays posted for the next frame, as returning it empty would cost the driver a buffer
//!   and report an error it did not make. Linux posts 12 + 1518 bytes per chain
//!   (GOOD_PACKET_LEN), which every accepted frame fits.

use alloc::vec::Vec;

use super::GuestDma;
use super::mmio::{Access, Transport, VIRTIO_F_VERSION_1};
use super::queue::QueueError;
use crate::vmm::devices::state::{DeviceState, StateError, StateReader, StateWriter};

/// Virtio device ID of a network card (§5).
pub const DEVICE_ID: u32 = 1;
/// VIRTIO_NET_F_MAC: the configuration space holds the MAC address (§5.1.3).
pub const VIRTIO_NET_F_MAC: u64 = 1 << 5;
/// VIRTIO_NET_F_STATUS: the configuration space holds the link status (§5.1.3).
pub const VIRTIO_NET_F_STATUS: u64 = 1 << 16;
/// VIRTIO_NET_F_MTU: the configuration space holds the largest MTU the driver may use
/// (§5.1.3).
pub const VIRTIO_NET_F_MTU: u64 = 1 << 3;
/// The features offered.
pub const FEATURES: u64 =
    VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS | VIRTIO_NET_F_MTU;
/// The MTU offered: the Ethernet payload of [`MAX_FRAME`].
pub const MTU: u16 = 1500;
/// VIRTIO_NET_S_LINK_UP in the configuration's status field (§5.1.4).
const S_LINK_UP: u16 = 1;
/// Length of `struct virtio_net_hdr` with VIRTIO_F_VERSION_1 (§5.1.6).
pub const HDR_LEN: usize = 12;
/// An Ethernet header: destination, source, EtherType.
const ETH_HLEN: usize = 14;
/// The longest frame transmitted: the [`MTU`] plus the Ethernet header.
pub const MAX_FRAME: usize = ETH_HLEN + MTU as usize;
/// The longest frame received: [`MAX_FRAME`] with an 802.1Q tag.
pub const MAX_RX_FRAME: usize = MAX_FRAME + 4;

/// The receive queue's index.
const RX: usize = 0;
/// The transmit queue's index.
const TX: usize = 1;

/// What became of a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxOutcome {
    /// In the guest's next receive buffer, with the used-buffer interrupt raised unless
    /// suppressed.
    Delivered,
    /// The driver has not set DRIVER_OK or the receive queue is not ready.
    NotReady,
    /// The driver has no receive buffer posted (counted in `rx_no_buffers`).
    NoBuffers,
    /// The frame is shorter than an Ethernet header, longer than [`MAX_RX_FRAME`] or longer
    /// than the next posted buffer (counted in `rx_dropped`; the buffer stays posted).
    Dropped,
    /// The device needs a reset ([`VirtioNet::broken`]).
    Broken,
}

/// What a [`VirtioNet::transmit`] call sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxReport {
    /// Frames handed to the sink and accepted.
    pub sent: usize,
    /// The sink refused a frame; it stays in the ring.
    pub blocked: bool,
}

/// Counters of the device's traffic; saved with its state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VirtioNetStats {
    /// Frames transmitted.
    pub tx_frames: u64,
    /// Frames delivered to the guest.
    pub rx_frames: u64,
    /// Frames that found no receive buffer posted.
    pub rx_no_buffers: u64,
    /// Frames dropped: bad length or too long for the posted buffer.
    pub rx_dropped: u64,
    /// Frames the sink refused (each retry counts).
    pub tx_blocked: u64,
}

/// One step of transmission.
enum Tx {
    Empty,
    Sent,
    Refused,
}

/// A virtio-net device on virtio-mmio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtioNet {
    mac: [u8; 6],
    link_up: bool,
    stats: VirtioNetStats,
    transport: Transport<2>,
}

impl VirtioNet {
    /// Length of the register window.
    pub const MMIO_SIZE: u64 = 0x200;

    /// A device with address `mac`, as after reset, link up.
    pub fn new(mac: [u8; 6]) -> Self {
        Self {
            mac,
            link_up: true,
            stats: VirtioNetStats::default(),
            transport: Transport::new(DEVICE_ID, FEATURES),
        }
    }

    /// The MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The traffic counters.
    pub fn stats(&self) -> VirtioNetStats {
        self.stats
    }

    /// Why the device needs a reset, if it does.
    pub fn broken(&self) -> Option<QueueError> {
        self.transport.broken()
    }

    /// The interrupt line: InterruptStatus is not 0 (level-triggered until acknowledged).
    pub fn irq_level(&self) -> bool {
        self.transport.isr() != 0
    }

    /// The device status register (§2.1).
    pub fn status(&self) -> u8 {
        self.transport.status()
    }

    /// Whether the link is up.
    pub fn link_up(&self) -> bool {
        self.link_up
    }

    /// Sets the link status (the host NIC's carrier); a change is a configuration change
    /// (§5.1.4.2).
    pub fn set_link_up(&mut self, up: bool) {
        if self.link_up != up {
            self.link_up = up;
            self.transport.config_changed();
        }
    }

    /// The configuration space (§5.1.4): `mac[6]`, `status`, `max_virtqueue_pairs` (1: no
    /// VIRTIO_NET_F_MQ) and `mtu`, each u16.
    fn config(&self) -> [u8; 12] {
        let status = if self.link_up { S_LINK_UP } else { 0 };
        let [m0, m1, m2, m3, m4, m5] = self.mac;
        let [s0, s1] = status.to_le_bytes();
        let [q0, q1] = 1u16.to_le_bytes();
        let [u0, u1] = MTU.to_le_bytes();
        [m0, m1, m2, m3, m4, m5, s0, s1, q0, q1, u0, u1]
    }

    /// A read of `width` (1, 2, 4 or 8) bytes at `offset` in the window; 0 for anything
    /// invalid or unknown. Configuration bytes may be read at any width and offset.
    pub fn mmio_read(&mut self, offset: u64, width: u8) -> u64 {
        match Access::decode(offset, width, Self::MMIO_SIZE) {
            Some(Access::Register(o)) => u64::from(self.transport.read(o)),
            Some(Access::Config { offset, width }) => {
                let config = self.config();
                (0..width).fold(0, |v, i| {
                    let b = config.get(offset + i).copied().unwrap_or(0);
                    v | u64::from(b) << (8 * i)
                })
            }
            None => 0,
        }
    }

    /// A write of `width` bytes at `offset` in the window. Configuration space writes are
    /// ignored (§5.1.4: without VIRTIO_NET_F_CTRL_MAC_ADDR the MAC is read-only).
    pub fn mmio_write(&mut self, offset: u64, width: u8, value: u64) {
        if let Some(Access::Register(o)) = Access::decode(offset, width, Self::MMIO_SIZE) {
            self.transport.write(o, value as u32);
        }
    }

    /// Whether transmit may have work: the driver notified the TX queue since the last
    /// [`transmit`](Self::transmit), DRIVER_OK was just set, or the last transmit stopped
    /// with chains left (the sink refused one, or it reached its batch of a queue's size).
    pub fn tx_pending(&self) -> bool {
        self.transport.notified(TX)
    }

    /// Takes the note that the driver notified the RX queue (posted buffers) since the last
    /// call: a monitor holding frames after [`RxOutcome::NoBuffers`] can retry then.
    pub fn take_rx_notify(&mut self) -> bool {
        self.transport.take_notified(RX)
    }

    /// Pops TX chains, strips the 12-byte virtio_net_hdr, gathers the Ethernet frame and
    /// hands it to `sink`; a sink returning false refuses the frame: it stays in the ring
    /// (not consumed), `report.blocked` is set, and transmit stops. Consumed chains go to the
    /// used ring (len 0) and raise the used-buffer interrupt unless the driver suppressed it
    /// (VRING_AVAIL_F_NO_INTERRUPT). At most one queue's size of chains per call.
    pub fn transmit(
        &mut self,
        mem: &mut dyn GuestDma,
        sink: &mut dyn FnMut(&[u8]) -> bool,
    ) -> TxReport {
        let mut report = TxReport::default();
        self.transport.take_notified(TX);
        if !self.transport.live(TX) {
            return report;
        }
        let batch = usize::from(self.transport.queue(TX).size);
        // Whether chains may be left: a whole batch went, or the sink refused one.
        let left = loop {
            if report.sent == batch {
                break true;
            }
            match self.tx_one(mem, sink) {
                Ok(Tx::Sent) => report.sent += 1,
                Ok(Tx::Refused) => {
                    report.blocked = true;
                    break true;
                }
                Ok(Tx::Empty) => break false,
                Err(e) => {
                    self.transport.fail(e);
                    break false;
                }
            }
        };
        if left {
            self.transport.set_notified(TX);
        }
        if report.sent > 0 {
            self.used_interrupt(TX, mem);
        }
        report
    }

    fn tx_one(
        &mut self,
        mem: &mut dyn GuestDma,
        sink: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<Tx, QueueError> {
        let Some(chain) = self.transport.queue(TX).peek(mem)? else {
            return Ok(Tx::Empty);
        };
        chain.require(false)?;
        let len = chain.len();
        let valid = (HDR_LEN + ETH_HLEN) as u64..=(HDR_LEN + MAX_FRAME) as u64;
        if !valid.contains(&len) {
            return Err(QueueError::TxLength(len));
        }
        let packet = chain.read_all(mem)?;
        if !sink(&packet[HDR_LEN..]) {
            self.stats.tx_blocked += 1;
            return Ok(Tx::Refused);
        }
        self.transport.queue_mut(TX).put_used(mem, chain.head, 0)?;
        self.stats.tx_frames += 1;
        Ok(Tx::Sent)
    }

    /// Delivers one received Ethernet frame (no FCS) into the next RX chain: the 12-byte
    /// header (all zero but `num_buffers` = 1, §5.1.6.4) and then the frame.
    pub fn receive(&mut self, mem: &mut dyn GuestDma, frame: &[u8]) -> RxOutcome {
        if self.transport.broken().is_some() {
            return RxOutcome::Broken;
        }
        if !self.transport.live(RX) {
            return RxOutcome::NotReady;
        }
        if !(ETH_HLEN..=MAX_RX_FRAME).contains(&frame.len()) {
            self.stats.rx_dropped += 1;
            return RxOutcome::Dropped;
        }
        match self.rx_one(mem, frame) {
            Ok(outcome) => outcome,
            Err(e) => {
                self.transport.fail(e);
                RxOutcome::Broken
            }
        }
    }

    fn rx_one(&mut self, mem: &mut dyn GuestDma, frame: &[u8]) -> Result<RxOutcome, QueueError> {
        let Some(chain) = self.transport.queue(RX).peek(mem)? else {
            self.stats.rx_no_buffers += 1;
            return Ok(RxOutcome::NoBuffers);
        };
        chain.require(true)?;
        let total = HDR_LEN + frame.len();
        if chain.len() < total as u64 {
            self.stats.rx_dropped += 1;
            return Ok(RxOutcome::Dropped);
        }
        let mut packet = Vec::with_capacity(total);
        packet.extend_from_slice(&[0; HDR_LEN - 2]);
        packet.extend_from_slice(&1u16.to_le_bytes()); // num_buffers
        packet.extend_from_slice(frame);
        chain.write_all(mem, &packet)?;
        let q = self.transport.queue_mut(RX);
        q.put_used(mem, chain.head, total as u32)?; // at most HDR_LEN + MAX_RX_FRAME
        self.stats.rx_frames += 1;
        self.used_interrupt(RX, mem);
        Ok(RxOutcome::Delivered)
    }

    /// Raises the used-buffer interrupt for queue `i` unless the driver suppressed it.
    fn used_interrupt(&mut self, i: usize, mem: &mut dyn GuestDma) {
        match self.transport.queue(i).wants_interrupt(mem) {
            Ok(true) => self.transport.used_interrupt(),
            Ok(false) => {}
            Err(e) => self.transport.fail(e),
        }
    }
}

/// Layout: `mac[6]`, link-up flag, the five counters of [`VirtioNetStats`] (u64, in field
/// order), then the transport ([`Transport::save`]) with its two queues.
impl DeviceState for VirtioNet {
    fn save_state(&self, w: &mut StateWriter) {
        w.bytes(&self.mac);
        w.flag(self.link_up);
        let s = self.stats;
        for v in [
            s.tx_frames,
            s.rx_frames,
            s.rx_no_buffers,
            s.rx_dropped,
            s.tx_blocked,
        ] {
            w.u64(v);
        }
        self.transport.save(w);
    }

    fn restore_state(r: &mut StateReader<'_>) -> Result<Self, StateError> {
        let mut mac = [0; 6];
        mac.copy_from_slice(r.take(6)?);
        Ok(Self {
            mac,
            link_up: r.flag("virtio-net link")?,
            stats: VirtioNetStats {
                tx_frames: r.u64()?,
                rx_frames: r.u64()?,
                rx_no_buffers: r.u64()?,
                rx_dropped: r.u64()?,
                tx_blocked: r.u64()?,
            },
            transport: Transport::restore(r, DEVICE_ID, FEATURES)?,
        })
    }
}
