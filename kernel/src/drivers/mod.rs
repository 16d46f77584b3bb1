// SPDX-License-Identifier: MIT OR Apache-2.0
//! Drivers for the host's own hardware (what Castor itself uses, as opposed to the virtual
//! devices guests see in `vmm::devices`).

#[cfg(target_os = "none")]
pub mod dma;
#[cfg(target_os = "none")]
pub mod net;
pub mod pci;
