// SPDX-License-Identifier: MIT OR Apache-2.0
//! The virtual-machine monitor: hardware virtualization back ends and what they share.

pub mod vmx;
