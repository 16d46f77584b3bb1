// SPDX-License-Identifier: MIT OR Apache-2.0
//! Model-specific register numbers Castor uses (Intel SDM Vol. 4, Table 2-2).

/// IA32_APIC_BASE: local APIC base address and enable bits.
pub const IA32_APIC_BASE: u32 = 0x1B;
/// IA32_EFER: long mode, NX enable, SVM enable.
pub const IA32_EFER: u32 = 0xC000_0080;
/// IA32_FS_BASE: base of the FS segment.
pub const IA32_FS_BASE: u32 = 0xC000_0100;
/// IA32_GS_BASE: base of the GS segment, used for per-CPU data.
pub const IA32_GS_BASE: u32 = 0xC000_0101;

/// EFER.NXE: execute-disable bit in page tables is honoured.
pub const EFER_NXE: u64 = 1 << 11;
/// EFER.LME: long mode enable.
pub const EFER_LME: u64 = 1 << 8;

/// IA32_FEATURE_CONTROL: lock bit 0, VMX inside SMX bit 1, VMX outside SMX bit 2.
pub const IA32_FEATURE_CONTROL: u32 = 0x3A;
/// IA32_VMX_BASIC: VMCS revision id, region size, memory type, TRUE_* controls (SDM Vol. 3D, A.1).
pub const IA32_VMX_BASIC: u32 = 0x480;
/// IA32_VMX_PINBASED_CTLS (SDM Vol. 3D, A.3.1).
pub const IA32_VMX_PINBASED_CTLS: u32 = 0x481;
/// IA32_VMX_PROCBASED_CTLS (SDM Vol. 3D, A.3.2).
pub const IA32_VMX_PROCBASED_CTLS: u32 = 0x482;
/// IA32_VMX_EXIT_CTLS (SDM Vol. 3D, A.4).
pub const IA32_VMX_EXIT_CTLS: u32 = 0x483;
/// IA32_VMX_ENTRY_CTLS (SDM Vol. 3D, A.5).
pub const IA32_VMX_ENTRY_CTLS: u32 = 0x484;
/// IA32_VMX_MISC (SDM Vol. 3D, A.6).
pub const IA32_VMX_MISC: u32 = 0x485;
/// IA32_VMX_CR0_FIXED0: CR0 bits that must be 1 in VMX operation (SDM Vol. 3D, A.7).
pub const IA32_VMX_CR0_FIXED0: u32 = 0x486;
/// IA32_VMX_CR0_FIXED1: CR0 bits that may be 1 in VMX operation.
pub const IA32_VMX_CR0_FIXED1: u32 = 0x487;
/// IA32_VMX_CR4_FIXED0: CR4 bits that must be 1 in VMX operation (SDM Vol. 3D, A.8).
pub const IA32_VMX_CR4_FIXED0: u32 = 0x488;
/// IA32_VMX_CR4_FIXED1: CR4 bits that may be 1 in VMX operation.
pub const IA32_VMX_CR4_FIXED1: u32 = 0x489;
/// IA32_VMX_PROCBASED_CTLS2: secondary processor-based controls (SDM Vol. 3D, A.3.3).
pub const IA32_VMX_PROCBASED_CTLS2: u32 = 0x48B;
/// IA32_VMX_EPT_VPID_CAP (SDM Vol. 3D, A.10).
pub const IA32_VMX_EPT_VPID_CAP: u32 = 0x48C;
/// IA32_VMX_TRUE_PINBASED_CTLS (SDM Vol. 3D, A.3.1).
pub const IA32_VMX_TRUE_PINBASED_CTLS: u32 = 0x48D;
/// IA32_VMX_TRUE_PROCBASED_CTLS (SDM Vol. 3D, A.3.2).
pub const IA32_VMX_TRUE_PROCBASED_CTLS: u32 = 0x48E;
/// IA32_VMX_TRUE_EXIT_CTLS (SDM Vol. 3D, A.4).
pub const IA32_VMX_TRUE_EXIT_CTLS: u32 = 0x48F;
/// IA32_VMX_TRUE_ENTRY_CTLS (SDM Vol. 3D, A.5).
pub const IA32_VMX_TRUE_ENTRY_CTLS: u32 = 0x490;

/// VM_CR (AMD): bit 4 SVMDIS disables SVM, bit 3 LOCK locks it (APM Vol. 2, 15.30.1).
pub const VM_CR: u32 = 0xC001_0114;
/// VM_HSAVE_PA (AMD): physical address of the host save area (APM Vol. 2, 15.30.4).
pub const VM_HSAVE_PA: u32 = 0xC001_0117;
/// EFER.SVME: secure virtual machine enable.
pub const EFER_SVME: u64 = 1 << 12;
