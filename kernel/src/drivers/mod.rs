// SPDX-License-Identifier: MIT OR Apache-2.0
//! Drivers for the host's own hardware (what Castor itself uses, as opposed to the virtual
//! devices guests see in `vmm::devices`).

#[cfg(target_os = "none")]
pub mod dma;
#[cfg(target_os = "none")]
pub mod net;
pub mod pci;

/// The virtio-net driver's split-virtqueue logic (self-contained), unit tested on the host.
#[cfg(test)]
#[path = "net/virtio_net/ring.rs"]
mod virtio_ring;

/// The e1000 driver's descriptor and ring helpers (self-contained), unit tested on the host
/// (some constants are used only by the driver itself, which is not built here).
#[cfg(test)]
#[allow(dead_code)]
#[path = "net/e1000/ring.rs"]
mod e1000_ring;
