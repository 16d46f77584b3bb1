// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host network interface drivers: the NICs Castor itself uses for its peer link (checkpoint
//! stream, heartbeats) — virtio-net (QEMU) and the Intel 82540EM e1000 (QEMU, Bochs, real
//! hardware of that family). Polled: the checkpoint loop drives them; interrupts (MSI-X for
//! virtio-net, INTx for the e1000) are delivered and counted.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use super::pci::{ConfigSpace, Device};

pub mod e1000;
pub mod split;
pub mod virtio_net;

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicError {
    /// The transmit ring is full: poll and retry (back-pressure).
    Full,
    /// The frame is larger than the NIC's maximum (or smaller than an Ethernet header).
    BadLength(usize),
    /// The device is not working (reset failed, link down).
    Down,
}

impl fmt::Display for NicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NicError::Full => write!(f, "transmit ring full"),
            NicError::BadLength(n) => write!(f, "frame of {n} bytes does not fit"),
            NicError::Down => write!(f, "device not working"),
        }
    }
}

/// Counters kept by every driver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NicStats {
    /// Frames handed to the hardware.
    pub tx_frames: u64,
    /// Frames received and returned to the caller.
    pub rx_frames: u64,
    /// Transmit attempts refused because the ring was full.
    pub tx_full: u64,
    /// Received frames dropped (too large for the caller's buffer, errors flagged by the NIC).
    pub rx_dropped: u64,
}

/// Largest frame a driver sends or returns (Ethernet without FCS, no jumbo frames).
pub const MAX_FRAME: usize = 1514;
/// Smallest frame (an Ethernet header).
pub const MIN_FRAME: usize = 14;

/// The NICs found at boot, for whoever uses them (the peer link, the `net` self test).
pub static NICS: spin::Mutex<Vec<Box<dyn Nic>>> = spin::Mutex::new(Vec::new());

/// Takes the first NIC nothing has taken yet (the peer link takes the first, a guest's
/// card the next), if any is left.
pub fn take_first() -> Option<Box<dyn Nic>> {
    let mut nics = NICS.lock();
    (!nics.is_empty()).then(|| nics.remove(0))
}

/// Puts `nic` back as the first free NIC (see [`take_first`]).
pub fn put_first(nic: Box<dyn Nic>) {
    NICS.lock().insert(0, nic);
}

/// A network interface, polled.
pub trait Nic: Send {
    /// Driver name, e.g. "virtio-net" or "e1000".
    fn name(&self) -> &'static str;
    /// The station (MAC) address.
    fn mac(&self) -> [u8; 6];
    /// Queues one Ethernet frame (destination, source, type, payload; no FCS) for transmission.
    fn transmit(&mut self, frame: &[u8]) -> Result<(), NicError>;
    /// Copies the next received frame into `buf` and returns its length; `None` if none is
    /// waiting. A frame longer than `buf` is dropped and counted.
    fn receive(&mut self, buf: &mut [u8]) -> Option<usize>;
    /// Housekeeping: reclaim sent buffers, refill receive buffers. Cheap when idle.
    fn poll(&mut self);
    /// Counters.
    fn stats(&self) -> NicStats;
    /// Also receives unicast frames for `mac` (a guest's station address bridged through this
    /// NIC); false if the NIC cannot. The default: true, for a NIC that filters nothing (QEMU's
    /// virtio-net without the control queue delivers every frame on its wire).
    fn accept_unicast(&mut self, _mac: [u8; 6]) -> bool {
        true
    }
    /// The interrupt mode ("MSI-X", "MSI", "INTx") and interrupts delivered so far; `None`
    /// when the NIC has no interrupt connected.
    fn interrupts(&self) -> Option<(&'static str, u64)> {
        None
    }

    /// Sends the NIC's receive interrupt to the CPU with `apic_id` from now on; false if it
    /// has none that can be moved (the data path stays polled either way).
    fn route_interrupts(&mut self, apic_id: u32) -> bool {
        let _ = apic_id;
        false
    }
}

/// Brings up every supported NIC among `devices`, in PCI order.
pub fn probe_all(devices: &[Device], cfg: &dyn ConfigSpace) -> Vec<Box<dyn Nic>> {
    let _ = cfg;
    let mut nics: Vec<Box<dyn Nic>> = Vec::new();
    for d in devices {
        let result: Option<Result<Box<dyn Nic>, &'static str>> = match (d.vendor, d.device) {
            (0x8086, 0x100E | 0x100F | 0x1015 | 0x1016 | 0x1017 | 0x101E | 0x1026) => {
                Some(e1000::E1000::new(d, cfg).map(|n| Box::new(n) as Box<dyn Nic>))
            }
            (0x1AF4, 0x1000 | 0x1041) => {
                Some(virtio_net::VirtioNet::new(d, cfg).map(|n| Box::new(n) as Box<dyn Nic>))
            }
            _ => None,
        };
        if let Some(result) = result {
            match result {
                Ok(nic) => {
                    let m = nic.mac();
                    log::info!(
                        "net: {} at {} mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                        nic.name(),
                        d.address,
                        m[0],
                        m[1],
                        m[2],
                        m[3],
                        m[4],
                        m[5]
                    );
                    nics.push(nic);
                }
                Err(why) => log::warn!("net: {} not usable: {why}", d.address),
            }
        }
    }
    nics
}
