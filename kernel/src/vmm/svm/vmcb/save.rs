// SPDX-License-Identifier: MIT OR Apache-2.0
//! The VMCB state save area (AMD64 APM Vol. 2, Table B-2) and the segment registers in it.

use core::fmt;

/// A segment register (or GDTR/IDTR) as the VMCB holds it (APM Vol. 2, Table B-2).
///
/// `attrib` is the descriptor's attribute bits packed into 12 bits: bits 7:0 are descriptor
/// bits 47:40 (type, S, DPL, P) and bits 11:8 are descriptor bits 55:52 (AVL, L, D/B, G).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segment {
    /// Selector.
    pub selector: u16, // +0x0
    /// Packed attributes (see the type documentation).
    pub attrib: u16, // +0x2
    /// Limit, in bytes (expanded by G, as in the hidden part of the register).
    pub limit: u32, // +0x4
    /// Base address.
    pub base: u64, // +0x8
}

impl Segment {
    /// The VMCS "unusable" bit of an access-rights value (Intel SDM Vol. 3C, Table 26-2).
    const VMX_UNUSABLE: u32 = 1 << 16;
    /// The present bit of `attrib`.
    const PRESENT: u16 = 1 << 7;

    /// A segment from VMX-style access rights (Intel SDM Vol. 3C, Table 26-2: bits 7:0 type, S,
    /// DPL, P; bits 15:12 AVL, L, D/B, G; bit 16 unusable), so guest setup tables can serve
    /// both back ends. An unusable segment becomes attrib 0 (not present).
    pub const fn from_access_rights(selector: u16, base: u64, limit: u32, rights: u32) -> Self {
        Self {
            selector,
            attrib: Self::attrib_from_access_rights(rights),
            limit,
            base,
        }
    }

    /// Packs VMX-style access rights into the VMCB `attrib` format (0 if unusable).
    pub const fn attrib_from_access_rights(rights: u32) -> u16 {
        if rights & Self::VMX_UNUSABLE != 0 {
            return 0;
        }
        ((rights & 0xFF) | ((rights >> 4) & 0xF00)) as u16
    }

    /// Packs VMX-style access rights into `attrib` keeping every attribute bit; an unusable
    /// segment is made not present. The exact inverse of [`Segment::access_rights`] for every
    /// 12-bit `attrib`, so a state saved from a VMCB loads back bit for bit (vCPU checkpoints).
    pub const fn attrib_exact(rights: u32) -> u16 {
        let packed = ((rights & 0xFF) | ((rights >> 4) & 0xF00)) as u16;
        if rights & Self::VMX_UNUSABLE != 0 {
            packed & !Self::PRESENT
        } else {
            packed
        }
    }

    /// This segment's attributes as VMX-style access rights (unusable if not present).
    pub const fn access_rights(&self) -> u32 {
        let a = self.attrib as u32;
        let rights = (a & 0xFF) | ((a & 0xF00) << 4);
        if self.attrib & Self::PRESENT == 0 {
            rights | Self::VMX_UNUSABLE
        } else {
            rights
        }
    }
}

/// The VMCB state save area (APM Vol. 2, Table B-2), up to SPEC_CTRL. Offsets in the comments
/// are from the start of the VMCB (Table B-2's offset + 0x400).
///
/// VMRUN loads and #VMEXIT saves ES, CS, SS, DS (with hidden state), GDTR, IDTR, CPL, EFER,
/// CR0/2/3/4, DR6/7, RFLAGS, RIP, RSP, RAX and, with nested paging, G_PAT (APM Vol. 2, 15.5.1
/// and 15.6); FS, GS, TR, LDTR (with hidden state), KernelGsBase, STAR/LSTAR/CSTAR/SFMASK and
/// SYSENTER_* only move with VMLOAD/VMSAVE (15.5.2). The other general registers are the
/// hypervisor's job.
#[repr(C)]
pub struct SaveArea {
    /// ES.
    pub es: Segment, // +0x400
    /// CS.
    pub cs: Segment, // +0x410
    /// SS.
    pub ss: Segment, // +0x420
    /// DS.
    pub ds: Segment, // +0x430
    /// FS (VMLOAD/VMSAVE).
    pub fs: Segment, // +0x440
    /// GS (VMLOAD/VMSAVE).
    pub gs: Segment, // +0x450
    /// GDTR (only base and limit used).
    pub gdtr: Segment, // +0x460
    /// LDTR (VMLOAD/VMSAVE).
    pub ldtr: Segment, // +0x470
    /// IDTR (only base and limit used).
    pub idtr: Segment, // +0x480
    /// TR (VMLOAD/VMSAVE).
    pub tr: Segment, // +0x490
    pub(super) _reserved_4a0: [u8; 0x2B], // +0x4A0 (0x4CA is VMPL for SEV-SNP)
    /// Current privilege level: VMRUN takes the guest's CPL from here (keep it equal to SS.DPL;
    /// 0 in real mode).
    pub cpl: u8, // +0x4CB
    pub(super) _reserved_4cc: u32,        // +0x4CC
    /// EFER. SVME must be set (VMRUN fails with VMEXIT_INVALID otherwise).
    pub efer: u64, // +0x4D0
    pub(super) _reserved_4d8: [u8; 0x70], // +0x4D8
    /// CR4.
    pub cr4: u64,             // +0x548
    /// CR3 (guest-physical with nested paging).
    pub cr3: u64, // +0x550
    /// CR0.
    pub cr0: u64,             // +0x558
    /// DR7.
    pub dr7: u64,             // +0x560
    /// DR6.
    pub dr6: u64,             // +0x568
    /// RFLAGS.
    pub rflags: u64,       // +0x570
    /// RIP.
    pub rip: u64,             // +0x578
    pub(super) _reserved_580: [u8; 0x58], // +0x580
    /// RSP.
    pub rsp: u64,             // +0x5D8
    /// CET: supervisor CET control (S_CET).
    pub s_cet: u64, // +0x5E0
    /// CET: shadow stack pointer (SSP).
    pub ssp: u64, // +0x5E8
    /// CET: interrupt shadow stack table address (ISST_ADDR).
    pub isst_addr: u64, // +0x5F0
    /// RAX.
    pub rax: u64,             // +0x5F8
    /// STAR (VMLOAD/VMSAVE).
    pub star: u64, // +0x600
    /// LSTAR (VMLOAD/VMSAVE).
    pub lstar: u64, // +0x608
    /// CSTAR (VMLOAD/VMSAVE).
    pub cstar: u64, // +0x610
    /// SFMASK (VMLOAD/VMSAVE).
    pub sfmask: u64, // +0x618
    /// KernelGsBase (VMLOAD/VMSAVE).
    pub kernel_gs_base: u64, // +0x620
    /// SYSENTER_CS (VMLOAD/VMSAVE).
    pub sysenter_cs: u64, // +0x628
    /// SYSENTER_ESP (VMLOAD/VMSAVE).
    pub sysenter_esp: u64, // +0x630
    /// SYSENTER_EIP (VMLOAD/VMSAVE).
    pub sysenter_eip: u64, // +0x638
    /// CR2.
    pub cr2: u64,             // +0x640
    pub(super) _reserved_648: [u8; 0x20], // +0x648
    /// Guest PAT, used by nested paging (with NP_ENABLE) to combine with the nested tables'
    /// memory types (APM Vol. 2, 15.25 "Nested Paging").
    pub g_pat: u64, // +0x668
    /// DBGCTL (with LBR virtualization).
    pub dbgctl: u64, // +0x670
    /// BR_FROM (with LBR virtualization).
    pub br_from: u64, // +0x678
    /// BR_TO (with LBR virtualization).
    pub br_to: u64, // +0x680
    /// LASTEXCPFROM (with LBR virtualization).
    pub last_excp_from: u64, // +0x688
    /// LASTEXCPTO (with LBR virtualization).
    pub last_excp_to: u64, // +0x690
    pub(super) _reserved_698: [u8; 0x48], // +0x698
    /// SPEC_CTRL of the guest (if the CPU saves it here).
    pub spec_ctrl: u64, // +0x6E0
}

impl fmt::Debug for SaveArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SaveArea");
        for (name, seg) in [
            ("es", &self.es),
            ("cs", &self.cs),
            ("ss", &self.ss),
            ("ds", &self.ds),
            ("fs", &self.fs),
            ("gs", &self.gs),
            ("gdtr", &self.gdtr),
            ("ldtr", &self.ldtr),
            ("idtr", &self.idtr),
            ("tr", &self.tr),
        ] {
            d.field(
                name,
                &format_args!(
                    "{:#06x} attrib {:#05x} limit {:#x} base {:#x}",
                    seg.selector, seg.attrib, seg.limit, seg.base
                ),
            );
        }
        d.field("cpl", &self.cpl);
        for (name, v) in [
            ("efer", &self.efer),
            ("cr0", &self.cr0),
            ("cr2", &self.cr2),
            ("cr3", &self.cr3),
            ("cr4", &self.cr4),
            ("dr6", &self.dr6),
            ("dr7", &self.dr7),
            ("rflags", &self.rflags),
            ("rip", &self.rip),
            ("rsp", &self.rsp),
            ("rax", &self.rax),
            ("star", &self.star),
            ("lstar", &self.lstar),
            ("cstar", &self.cstar),
            ("sfmask", &self.sfmask),
            ("kernel_gs_base", &self.kernel_gs_base),
            ("sysenter_cs", &self.sysenter_cs),
            ("sysenter_esp", &self.sysenter_esp),
            ("sysenter_eip", &self.sysenter_eip),
            ("g_pat", &self.g_pat),
            ("dbgctl", &self.dbgctl),
        ] {
            d.field(name, &format_args!("{v:#x}"));
        }
        d.finish_non_exhaustive()
    }
}
