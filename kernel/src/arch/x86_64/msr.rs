// SPDX-License-Identifier: MIT OR Apache-2.0
//! Model-specific register numbers Castor uses (Intel SDM Vol. 4, Table 2-2).

/// IA32_APIC_BASE: local APIC base address and enable bits.
pub const IA32_APIC_BASE: u32 = 0x1B;
/// IA32_EFER: long mode, NX enable, SVM enable.
pub const IA32_EFER: u32 = 0xC000_0080;
/// IA32_GS_BASE: base of the GS segment, used for per-CPU data.
pub const IA32_GS_BASE: u32 = 0xC000_0101;

/// EFER.NXE: execute-disable bit in page tables is honoured.
pub const EFER_NXE: u64 = 1 << 11;
/// EFER.LME: long mode enable.
pub const EFER_LME: u64 = 1 << 8;
