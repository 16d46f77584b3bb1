// SPDX-License-Identifier: MIT OR Apache-2.0
//! The virtual machine control block (AMD64 APM Vol. 2, appendix B "Layout of VMCB": Table B-1
//! control area, Table B-2 state save area) and the encodings of what goes in and comes out of
//! it: intercept bits, exit codes (appendix C "SVM Intercept Exit Codes"), event injection
//! (15.20), IOIO and nested-page-fault exit information (15.10.2, 15.25.6), and the MSR and I/O
//! permission maps (15.10, 15.11).
//!
//! The VMCB is one 4 KiB page: the control area at 0x000-0x3FF, the state save area from 0x400.
//! Every field here carries its offset from the start of the VMCB in a `// +0x...` comment
//! (Table B-2 numbers the save area from 0x000; add 0x400), and a unit test checks each one with
//! `offset_of!`. Reserved ranges must stay zero (APM: "SBZ"), so they are private.
//!
//! Fields Castor does not use yet (AVIC, SEV, LBR virtualization, CET) are laid out but have no
//! helpers. Under QEMU TCG there are no next-RIP, clean-bit or decode-assist features (see
//! `TESTBED.md`): [`ControlArea::next_rip`] reads 0 there and the clean bits must stay 0.

use core::fmt;

use bitflags::bitflags;

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

bitflags! {
    /// The first miscellaneous intercept word, VMCB offset 0x00C (APM Vol. 2, Table B-1).
    /// The exit code of each intercept is in [`ExitCode`].
    #[repr(transparent)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct InterceptMisc1: u32 {
        /// Physical INTR (maskable external interrupt).
        const INTR = 1 << 0;
        /// Physical NMI.
        const NMI = 1 << 1;
        /// Physical SMI.
        const SMI = 1 << 2;
        /// Physical INIT.
        const INIT = 1 << 3;
        /// Virtual interrupt (V_IRQ taken by the guest): the interrupt-window exit.
        const VINTR = 1 << 4;
        /// Writes of CR0 that change bits other than CR0.TS or CR0.MP.
        const CR0_SEL_WRITE = 1 << 5;
        /// Reads of IDTR.
        const IDTR_READ = 1 << 6;
        /// Reads of GDTR.
        const GDTR_READ = 1 << 7;
        /// Reads of LDTR.
        const LDTR_READ = 1 << 8;
        /// Reads of TR.
        const TR_READ = 1 << 9;
        /// Writes of IDTR.
        const IDTR_WRITE = 1 << 10;
        /// Writes of GDTR.
        const GDTR_WRITE = 1 << 11;
        /// Writes of LDTR.
        const LDTR_WRITE = 1 << 12;
        /// Writes of TR.
        const TR_WRITE = 1 << 13;
        /// RDTSC.
        const RDTSC = 1 << 14;
        /// RDPMC.
        const RDPMC = 1 << 15;
        /// PUSHF.
        const PUSHF = 1 << 16;
        /// POPF.
        const POPF = 1 << 17;
        /// CPUID.
        const CPUID = 1 << 18;
        /// RSM.
        const RSM = 1 << 19;
        /// IRET.
        const IRET = 1 << 20;
        /// Software interrupt (INTn).
        const INTN = 1 << 21;
        /// INVD.
        const INVD = 1 << 22;
        /// PAUSE (subject to the pause filter).
        const PAUSE = 1 << 23;
        /// HLT.
        const HLT = 1 << 24;
        /// INVLPG.
        const INVLPG = 1 << 25;
        /// INVLPGA.
        const INVLPGA = 1 << 26;
        /// IN/OUT: intercept the ports set in the I/O permission map (IOPM_BASE_PA).
        const IOIO_PROT = 1 << 27;
        /// RDMSR/WRMSR: intercept the MSRs set in the MSR permission map (MSRPM_BASE_PA).
        const MSR_PROT = 1 << 28;
        /// Task switches.
        const TASK_SWITCH = 1 << 29;
        /// FERR_FREEZE: processor "frozen" waiting for an x87 exception.
        const FERR_FREEZE = 1 << 30;
        /// Shutdown (e.g. triple fault).
        const SHUTDOWN = 1 << 31;
    }
}

bitflags! {
    /// The second miscellaneous intercept word, VMCB offset 0x010 (APM Vol. 2, Table B-1).
    #[repr(transparent)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct InterceptMisc2: u32 {
        /// VMRUN. The APM requires this intercept: VMRUN fails with VMEXIT_INVALID without it.
        const VMRUN = 1 << 0;
        /// VMMCALL.
        const VMMCALL = 1 << 1;
        /// VMLOAD.
        const VMLOAD = 1 << 2;
        /// VMSAVE.
        const VMSAVE = 1 << 3;
        /// STGI.
        const STGI = 1 << 4;
        /// CLGI.
        const CLGI = 1 << 5;
        /// SKINIT.
        const SKINIT = 1 << 6;
        /// RDTSCP.
        const RDTSCP = 1 << 7;
        /// ICEBP (INT1).
        const ICEBP = 1 << 8;
        /// WBINVD and WBNOINVD.
        const WBINVD = 1 << 9;
        /// MONITOR and MONITORX.
        const MONITOR = 1 << 10;
        /// MWAIT and MWAITX, unconditionally.
        const MWAIT = 1 << 11;
        /// MWAIT and MWAITX, if the monitor hardware is armed.
        const MWAIT_CONDITIONAL = 1 << 12;
        /// XSETBV.
        const XSETBV = 1 << 13;
        /// RDPRU.
        const RDPRU = 1 << 14;
        /// Writes of EFER, as a trap after the instruction completes.
        const EFER_WRITE_TRAP = 1 << 15;
    }
}

impl InterceptMisc2 {
    /// Writes of CR`n` (0..=15), as a trap after the instruction completes (bits 31:16).
    pub const fn cr_write_trap(n: u8) -> Self {
        Self::from_bits_retain(1 << (16 + (n as u32 & 0xF)))
    }
}

bitflags! {
    /// The third miscellaneous intercept word, VMCB offset 0x014 (APM Vol. 2, Table B-1).
    #[repr(transparent)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct InterceptMisc3: u32 {
        /// INVLPGB with valid operands.
        const INVLPGB = 1 << 0;
        /// INVLPGB with illegal operands.
        const INVLPGB_ILLEGAL = 1 << 1;
        /// INVPCID.
        const INVPCID = 1 << 2;
        /// MCOMMIT.
        const MCOMMIT = 1 << 3;
        /// TLBSYNC.
        const TLBSYNC = 1 << 4;
    }
}

/// TLB_CONTROL values, VMCB offset 0x05C (APM Vol. 2, Table B-1 and 15.16.1 "TLB Flush").
/// Values 3 and 7 need flush-by-ASID (CPUID Fn8000_000A EDX bit 6); QEMU TCG accepts 3
/// without advertising it, and flushes everything on every VMRUN anyway.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlbControl(pub u8);

impl TlbControl {
    /// Do nothing.
    pub const DO_NOTHING: TlbControl = TlbControl(0);
    /// Flush the entire TLB, all ASIDs (host entries too) on VMRUN.
    pub const FLUSH_ALL: TlbControl = TlbControl(1);
    /// Flush this guest's TLB entries (its ASID) on VMRUN.
    pub const FLUSH_GUEST: TlbControl = TlbControl(3);
    /// Flush this guest's non-global TLB entries on VMRUN.
    pub const FLUSH_GUEST_NON_GLOBAL: TlbControl = TlbControl(7);
}

/// Bits of the virtual-interrupt control word, VMCB offset 0x060 (APM Vol. 2, Table B-1 and
/// 15.21 "Interrupt and LocalAPIC Support"). Use the [`ControlArea`] accessors.
pub mod int_ctl {
    /// V_TPR: the guest's virtual TPR (bits 3:0 used; 7:4 SBZ).
    pub const V_TPR_MASK: u64 = 0xF;
    /// V_IRQ: a virtual interrupt is pending. The CPU clears it when the guest takes it.
    pub const V_IRQ: u64 = 1 << 8;
    /// VGIF: the virtual global interrupt flag (with [`VGIF_ENABLE`]).
    pub const VGIF: u64 = 1 << 9;
    /// V_INTR_PRIO: priority of the pending virtual interrupt (bits 19:16).
    pub const V_INTR_PRIO_SHIFT: u32 = 16;
    /// V_INTR_PRIO field mask.
    pub const V_INTR_PRIO_MASK: u64 = 0xF << V_INTR_PRIO_SHIFT;
    /// V_IGN_TPR: the pending virtual interrupt ignores the virtual TPR.
    pub const V_IGN_TPR: u64 = 1 << 20;
    /// V_INTR_MASKING: virtualize EFLAGS.IF and the TPR (the host's IF governs physical
    /// interrupts while the guest runs; CR8 accesses use V_TPR).
    pub const V_INTR_MASKING: u64 = 1 << 24;
    /// Virtual GIF enabled.
    pub const VGIF_ENABLE: u64 = 1 << 25;
    /// AVIC enabled.
    pub const AVIC_ENABLE: u64 = 1 << 31;
    /// V_INTR_VECTOR: vector of the pending virtual interrupt (bits 39:32).
    pub const V_INTR_VECTOR_SHIFT: u32 = 32;
    /// V_INTR_VECTOR field mask.
    pub const V_INTR_VECTOR_MASK: u64 = 0xFF << V_INTR_VECTOR_SHIFT;
}

bitflags! {
    /// Guest interrupt state, VMCB offset 0x068 (APM Vol. 2, Table B-1).
    #[repr(transparent)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct InterruptState: u64 {
        /// The guest is in an interrupt shadow (after STI or MOV SS): no interrupt may be taken
        /// before the next instruction completes.
        const INTERRUPT_SHADOW = 1 << 0;
        /// The guest's RFLAGS.IF, written by the CPU at #VMEXIT (ignored by VMRUN).
        const GUEST_INTERRUPT_MASK = 1 << 1;
    }
}

bitflags! {
    /// Nested paging and encryption enables, VMCB offset 0x090 (APM Vol. 2, Table B-1).
    #[repr(transparent)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct NestedControl: u64 {
        /// NP_ENABLE: nested paging (N_CR3 holds the root).
        const NP_ENABLE = 1 << 0;
        /// Secure Encrypted Virtualization.
        const SEV_ENABLE = 1 << 1;
        /// SEV with Encrypted State.
        const SEV_ES_ENABLE = 1 << 2;
    }
}

bitflags! {
    /// Virtualization extensions, VMCB offset 0x0B8 (APM Vol. 2, Table B-1).
    #[repr(transparent)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct VirtExt: u64 {
        /// LBR virtualization (DBGCTL and the LBR MSRs switched through the save area).
        const LBR_VIRTUALIZATION = 1 << 0;
        /// Virtualized VMSAVE/VMLOAD (guest VMSAVE/VMLOAD through nested paging).
        const VIRTUAL_VMSAVE_VMLOAD = 1 << 1;
    }
}

bitflags! {
    /// VMCB clean bits, VMCB offset 0x0C0 (APM Vol. 2, 15.15.3 "VMCB Clean Field"): a set bit
    /// tells VMRUN the group is unchanged since the last VMRUN with this VMCB on this CPU.
    /// Leaving them all 0 is always correct (and QEMU TCG has no clean-bit support).
    #[repr(transparent)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct CleanBits: u32 {
        /// Intercept vectors, TSC offset, pause filter count and threshold.
        const INTERCEPTS = 1 << 0;
        /// IOPM_BASE_PA, MSRPM_BASE_PA.
        const IOPM = 1 << 1;
        /// Guest ASID.
        const ASID = 1 << 2;
        /// V_TPR, V_IRQ, V_INTR_PRIO, V_IGN_TPR, V_INTR_MASKING, V_INTR_VECTOR (offset 0x060).
        const TPR = 1 << 3;
        /// NP_ENABLE, N_CR3, G_PAT.
        const NP = 1 << 4;
        /// CR0, CR3, CR4, EFER.
        const CRX = 1 << 5;
        /// DR6, DR7.
        const DRX = 1 << 6;
        /// GDTR, IDTR.
        const DT = 1 << 7;
        /// CS, DS, SS, ES, CPL.
        const SEG = 1 << 8;
        /// CR2.
        const CR2 = 1 << 9;
        /// DBGCTL, BR_FROM, BR_TO, LASTEXCPFROM, LASTEXCPTO.
        const LBR = 1 << 10;
        /// AVIC APIC_BAR, backing page, logical and physical table pointers.
        const AVIC = 1 << 11;
    }
}

/// An #VMEXIT reason, VMCB offset 0x070 (APM Vol. 2, appendix C "SVM Intercept Exit Codes").
///
/// Ranges (CR/DR accesses, exceptions, CR write traps) have constructors and decoders;
/// single codes are associated constants, usable as `match` patterns.
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ExitCode(pub u64);

impl ExitCode {
    /// Read of CR0 (CR`n`: [`ExitCode::cr_read`]).
    pub const CR0_READ: ExitCode = ExitCode(0x00);
    /// Write of CR0 (CR`n`: [`ExitCode::cr_write`]).
    pub const CR0_WRITE: ExitCode = ExitCode(0x10);
    /// Read of DR0 (DR`n`: [`ExitCode::dr_read`]).
    pub const DR0_READ: ExitCode = ExitCode(0x20);
    /// Write of DR0 (DR`n`: [`ExitCode::dr_write`]).
    pub const DR0_WRITE: ExitCode = ExitCode(0x30);
    /// Exception vector 0 (vector `v`: [`ExitCode::exception`]).
    pub const EXCEPTION_BASE: ExitCode = ExitCode(0x40);
    /// Physical INTR.
    pub const INTR: ExitCode = ExitCode(0x60);
    /// Physical NMI.
    pub const NMI: ExitCode = ExitCode(0x61);
    /// Physical SMI.
    pub const SMI: ExitCode = ExitCode(0x62);
    /// Physical INIT.
    pub const INIT: ExitCode = ExitCode(0x63);
    /// Virtual interrupt taken (interrupt window).
    pub const VINTR: ExitCode = ExitCode(0x64);
    /// Selective CR0 write.
    pub const CR0_SEL_WRITE: ExitCode = ExitCode(0x65);
    /// IDTR read.
    pub const IDTR_READ: ExitCode = ExitCode(0x66);
    /// GDTR read.
    pub const GDTR_READ: ExitCode = ExitCode(0x67);
    /// LDTR read.
    pub const LDTR_READ: ExitCode = ExitCode(0x68);
    /// TR read.
    pub const TR_READ: ExitCode = ExitCode(0x69);
    /// IDTR write.
    pub const IDTR_WRITE: ExitCode = ExitCode(0x6A);
    /// GDTR write.
    pub const GDTR_WRITE: ExitCode = ExitCode(0x6B);
    /// LDTR write.
    pub const LDTR_WRITE: ExitCode = ExitCode(0x6C);
    /// TR write.
    pub const TR_WRITE: ExitCode = ExitCode(0x6D);
    /// RDTSC.
    pub const RDTSC: ExitCode = ExitCode(0x6E);
    /// RDPMC.
    pub const RDPMC: ExitCode = ExitCode(0x6F);
    /// PUSHF.
    pub const PUSHF: ExitCode = ExitCode(0x70);
    /// POPF.
    pub const POPF: ExitCode = ExitCode(0x71);
    /// CPUID.
    pub const CPUID: ExitCode = ExitCode(0x72);
    /// RSM.
    pub const RSM: ExitCode = ExitCode(0x73);
    /// IRET.
    pub const IRET: ExitCode = ExitCode(0x74);
    /// Software interrupt (INTn).
    pub const SWINT: ExitCode = ExitCode(0x75);
    /// INVD.
    pub const INVD: ExitCode = ExitCode(0x76);
    /// PAUSE.
    pub const PAUSE: ExitCode = ExitCode(0x77);
    /// HLT.
    pub const HLT: ExitCode = ExitCode(0x78);
    /// INVLPG.
    pub const INVLPG: ExitCode = ExitCode(0x79);
    /// INVLPGA.
    pub const INVLPGA: ExitCode = ExitCode(0x7A);
    /// IN/OUT (EXITINFO1: [`IoioInfo`]; EXITINFO2: RIP of the next instruction).
    pub const IOIO: ExitCode = ExitCode(0x7B);
    /// RDMSR/WRMSR (EXITINFO1: [`MSR_EXIT_WRITE`] or 0).
    pub const MSR: ExitCode = ExitCode(0x7C);
    /// Task switch.
    pub const TASK_SWITCH: ExitCode = ExitCode(0x7D);
    /// FERR_FREEZE.
    pub const FERR_FREEZE: ExitCode = ExitCode(0x7E);
    /// Shutdown (triple fault).
    pub const SHUTDOWN: ExitCode = ExitCode(0x7F);
    /// VMRUN.
    pub const VMRUN: ExitCode = ExitCode(0x80);
    /// VMMCALL.
    pub const VMMCALL: ExitCode = ExitCode(0x81);
    /// VMLOAD.
    pub const VMLOAD: ExitCode = ExitCode(0x82);
    /// VMSAVE.
    pub const VMSAVE: ExitCode = ExitCode(0x83);
    /// STGI.
    pub const STGI: ExitCode = ExitCode(0x84);
    /// CLGI.
    pub const CLGI: ExitCode = ExitCode(0x85);
    /// SKINIT.
    pub const SKINIT: ExitCode = ExitCode(0x86);
    /// RDTSCP.
    pub const RDTSCP: ExitCode = ExitCode(0x87);
    /// ICEBP.
    pub const ICEBP: ExitCode = ExitCode(0x88);
    /// WBINVD or WBNOINVD.
    pub const WBINVD: ExitCode = ExitCode(0x89);
    /// MONITOR or MONITORX.
    pub const MONITOR: ExitCode = ExitCode(0x8A);
    /// MWAIT or MWAITX.
    pub const MWAIT: ExitCode = ExitCode(0x8B);
    /// MWAIT or MWAITX with the monitor armed.
    pub const MWAIT_CONDITIONAL: ExitCode = ExitCode(0x8C);
    /// XSETBV.
    pub const XSETBV: ExitCode = ExitCode(0x8D);
    /// RDPRU.
    pub const RDPRU: ExitCode = ExitCode(0x8E);
    /// EFER write (trap, after the instruction).
    pub const EFER_WRITE_TRAP: ExitCode = ExitCode(0x8F);
    /// CR0 write (trap; CR`n`: [`ExitCode::cr_write_trap`]).
    pub const CR0_WRITE_TRAP: ExitCode = ExitCode(0x90);
    /// INVLPGB.
    pub const INVLPGB: ExitCode = ExitCode(0xA0);
    /// INVLPGB with illegal operands.
    pub const INVLPGB_ILLEGAL: ExitCode = ExitCode(0xA1);
    /// INVPCID.
    pub const INVPCID: ExitCode = ExitCode(0xA2);
    /// MCOMMIT.
    pub const MCOMMIT: ExitCode = ExitCode(0xA3);
    /// TLBSYNC.
    pub const TLBSYNC: ExitCode = ExitCode(0xA4);
    /// Nested page fault (EXITINFO1: [`NpfInfo`]; EXITINFO2: guest-physical address).
    pub const NPF: ExitCode = ExitCode(0x400);
    /// AVIC: incomplete virtual IPI delivery.
    pub const AVIC_INCOMPLETE_IPI: ExitCode = ExitCode(0x401);
    /// AVIC: access to an unaccelerated APIC register.
    pub const AVIC_NOACCEL: ExitCode = ExitCode(0x402);
    /// VMGEXIT (SEV-ES).
    pub const VMGEXIT: ExitCode = ExitCode(0x403);
    /// VMEXIT_INVALID (-1): VMRUN found invalid guest state in the VMCB (15.5.1).
    pub const INVALID: ExitCode = ExitCode(-1i64 as u64);
    /// VMEXIT_BUSY (-2): the VMSA of an SEV-SNP guest is in use.
    pub const BUSY: ExitCode = ExitCode(-2i64 as u64);

    /// Read of CR`n` (0..=15).
    pub const fn cr_read(n: u8) -> Self {
        Self(n as u64 & 0xF)
    }

    /// Write of CR`n` (0..=15).
    pub const fn cr_write(n: u8) -> Self {
        Self(0x10 + (n as u64 & 0xF))
    }

    /// Read of DR`n` (0..=15).
    pub const fn dr_read(n: u8) -> Self {
        Self(0x20 + (n as u64 & 0xF))
    }

    /// Write of DR`n` (0..=15).
    pub const fn dr_write(n: u8) -> Self {
        Self(0x30 + (n as u64 & 0xF))
    }

    /// Exception `vector` (0..=31).
    pub const fn exception(vector: u8) -> Self {
        Self(0x40 + (vector as u64 & 0x1F))
    }

    /// Write of CR`n` (0..=15) as a trap.
    pub const fn cr_write_trap(n: u8) -> Self {
        Self(0x90 + (n as u64 & 0xF))
    }

    /// For a CR access exit, `(n, is_write)`.
    pub const fn cr_access(self) -> Option<(u8, bool)> {
        match self.0 {
            0x00..=0x1F => Some(((self.0 & 0xF) as u8, self.0 >= 0x10)),
            _ => None,
        }
    }

    /// For a DR access exit, `(n, is_write)`.
    pub const fn dr_access(self) -> Option<(u8, bool)> {
        match self.0 {
            0x20..=0x3F => Some(((self.0 & 0xF) as u8, self.0 >= 0x30)),
            _ => None,
        }
    }

    /// For an exception exit, the vector.
    pub const fn exception_vector(self) -> Option<u8> {
        match self.0 {
            0x40..=0x5F => Some((self.0 - 0x40) as u8),
            _ => None,
        }
    }

    /// For a CR write trap exit, the register number.
    pub const fn cr_write_trap_register(self) -> Option<u8> {
        match self.0 {
            0x90..=0x9F => Some((self.0 & 0xF) as u8),
            _ => None,
        }
    }

    /// A short name for logs ("CR read", "exception", "CPUID", ...; "unknown" if none).
    pub const fn name(self) -> &'static str {
        match self.0 {
            0x00..=0x0F => "CR read",
            0x10..=0x1F => "CR write",
            0x20..=0x2F => "DR read",
            0x30..=0x3F => "DR write",
            0x40..=0x5F => "exception",
            0x60 => "INTR",
            0x61 => "NMI",
            0x62 => "SMI",
            0x63 => "INIT",
            0x64 => "VINTR",
            0x65 => "CR0 selective write",
            0x66 => "IDTR read",
            0x67 => "GDTR read",
            0x68 => "LDTR read",
            0x69 => "TR read",
            0x6A => "IDTR write",
            0x6B => "GDTR write",
            0x6C => "LDTR write",
            0x6D => "TR write",
            0x6E => "RDTSC",
            0x6F => "RDPMC",
            0x70 => "PUSHF",
            0x71 => "POPF",
            0x72 => "CPUID",
            0x73 => "RSM",
            0x74 => "IRET",
            0x75 => "INTn",
            0x76 => "INVD",
            0x77 => "PAUSE",
            0x78 => "HLT",
            0x79 => "INVLPG",
            0x7A => "INVLPGA",
            0x7B => "IOIO",
            0x7C => "MSR",
            0x7D => "task switch",
            0x7E => "FERR_FREEZE",
            0x7F => "shutdown",
            0x80 => "VMRUN",
            0x81 => "VMMCALL",
            0x82 => "VMLOAD",
            0x83 => "VMSAVE",
            0x84 => "STGI",
            0x85 => "CLGI",
            0x86 => "SKINIT",
            0x87 => "RDTSCP",
            0x88 => "ICEBP",
            0x89 => "WBINVD",
            0x8A => "MONITOR",
            0x8B => "MWAIT",
            0x8C => "MWAIT (conditional)",
            0x8D => "XSETBV",
            0x8E => "RDPRU",
            0x8F => "EFER write trap",
            0x90..=0x9F => "CR write trap",
            0xA0 => "INVLPGB",
            0xA1 => "INVLPGB (illegal)",
            0xA2 => "INVPCID",
            0xA3 => "MCOMMIT",
            0xA4 => "TLBSYNC",
            0x400 => "nested page fault",
            0x401 => "AVIC incomplete IPI",
            0x402 => "AVIC unaccelerated access",
            0x403 => "VMGEXIT",
            0xFFFF_FFFF_FFFF_FFFF => "VMEXIT_INVALID",
            0xFFFF_FFFF_FFFF_FFFE => "VMEXIT_BUSY",
            _ => "unknown",
        }
    }
}

impl fmt::Debug for ExitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExitCode({:#x} {}", self.0, self.name())?;
        if let Some((n, _)) = self.cr_access().or(self.dr_access()) {
            write!(f, " {n}")?;
        }
        if let Some(n) = self.exception_vector().or(self.cr_write_trap_register()) {
            write!(f, " {n}")?;
        }
        write!(f, ")")
    }
}

impl fmt::Display for ExitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// EXITINFO1 of an MSR exit: set for WRMSR, clear for RDMSR (APM Vol. 2, 15.11).
pub const MSR_EXIT_WRITE: u64 = 1;

/// The kind of event in an [`EventInfo`] (APM Vol. 2, 15.20: TYPE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum EventType {
    /// External or virtual interrupt (INTR).
    External = 0,
    /// NMI (the vector is ignored).
    Nmi = 2,
    /// Exception (fault or trap).
    Exception = 3,
    /// Software interrupt (INTn).
    SoftwareInterrupt = 4,
}

/// An event to inject (EVENTINJ, VMCB offset 0x0A8) or one whose delivery an intercept
/// interrupted (EXITINTINFO, offset 0x088); both use this format (APM Vol. 2, 15.20 "Event
/// Injection"; 15.7.2): bits 7:0 vector, 10:8 type, 11 error code valid, 31 valid,
/// 63:32 error code.
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct EventInfo(pub u64);

impl EventInfo {
    const TYPE_SHIFT: u32 = 8;
    const ERROR_VALID: u64 = 1 << 11;
    const VALID: u64 = 1 << 31;

    /// No event.
    pub const NONE: EventInfo = EventInfo(0);

    const fn event(vector: u8, kind: EventType, error_code: Option<u32>) -> Self {
        let mut v = (vector as u64) | ((kind as u64) << Self::TYPE_SHIFT) | Self::VALID;
        if let Some(e) = error_code {
            v |= Self::ERROR_VALID | ((e as u64) << 32);
        }
        Self(v)
    }

    /// An external interrupt with `vector`.
    pub const fn external(vector: u8) -> Self {
        Self::event(vector, EventType::External, None)
    }

    /// An NMI.
    pub const fn nmi() -> Self {
        Self::event(2, EventType::Nmi, None)
    }

    /// Exception `vector`, with an error code if it pushes one (see
    /// [`exception_has_error_code`]). Injecting #BP or #OF this way does not advance RIP.
    pub const fn exception(vector: u8, error_code: Option<u32>) -> Self {
        Self::event(vector, EventType::Exception, error_code)
    }

    /// A software interrupt (INTn) with `vector`. RIP must already point past the INTn.
    pub const fn software_interrupt(vector: u8) -> Self {
        Self::event(vector, EventType::SoftwareInterrupt, None)
    }

    /// Whether an event is present (bit 31).
    pub const fn valid(self) -> bool {
        self.0 & Self::VALID != 0
    }

    /// Vector (bits 7:0).
    pub const fn vector(self) -> u8 {
        self.0 as u8
    }

    /// Event type, or `None` for a reserved encoding (1, 5-7).
    pub const fn event_type(self) -> Option<EventType> {
        match (self.0 >> Self::TYPE_SHIFT) & 7 {
            0 => Some(EventType::External),
            2 => Some(EventType::Nmi),
            3 => Some(EventType::Exception),
            4 => Some(EventType::SoftwareInterrupt),
            _ => None,
        }
    }

    /// The error code, if bit 11 says it is valid.
    pub const fn error_code(self) -> Option<u32> {
        if self.0 & Self::ERROR_VALID != 0 {
            Some((self.0 >> 32) as u32)
        } else {
            None
        }
    }
}

impl fmt::Debug for EventInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.valid() {
            return write!(f, "EventInfo(none, {:#x})", self.0);
        }
        write!(
            f,
            "EventInfo({:?} vector {}",
            self.event_type(),
            self.vector()
        )?;
        if let Some(e) = self.error_code() {
            write!(f, " error {e:#x}")?;
        }
        write!(f, ")")
    }
}

/// Whether exception `vector` pushes an error code (#DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP,
/// #VC, #SX; APM Vol. 2, 8.2 "Vectors"), and so needs one when injected.
pub const fn exception_has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// EXITINFO1 of an IOIO intercept, decoded (APM Vol. 2, 15.10.2 "IN and OUT Behavior"). EXITINFO2 holds the RIP of the instruction after the IN/OUT, which is how to
/// skip it without next-RIP support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoioInfo {
    /// Port number (bits 31:16).
    pub port: u16,
    /// IN or INS (TYPE, bit 0); else OUT or OUTS.
    pub input: bool,
    /// INS or OUTS (STR, bit 2).
    pub string: bool,
    /// With a REP prefix (REP, bit 3).
    pub rep: bool,
    /// Operand size in bytes: 1, 2 or 4 (SZ8/SZ16/SZ32, bits 6:4); 0 if none is set.
    pub size: u8,
    /// Address size in bits: 16, 32 or 64 (A16/A32/A64, bits 9:7); 0 if none is set.
    pub address_bits: u8,
    /// Effective segment of a string instruction (bits 12:10; 0 = ES ... 5 = GS). Only
    /// reported with decode assists; 0 otherwise.
    pub segment: u8,
}

impl IoioInfo {
    /// Decodes EXITINFO1.
    pub const fn decode(info1: u64) -> Self {
        let size = match (info1 >> 4) & 7 {
            0b001 => 1,
            0b010 => 2,
            0b100 => 4,
            _ => 0,
        };
        let address_bits = match (info1 >> 7) & 7 {
            0b001 => 16,
            0b010 => 32,
            0b100 => 64,
            _ => 0,
        };
        Self {
            port: (info1 >> 16) as u16,
            input: info1 & (1 << 0) != 0,
            string: info1 & (1 << 2) != 0,
            rep: info1 & (1 << 3) != 0,
            size,
            address_bits,
            segment: ((info1 >> 10) & 7) as u8,
        }
    }
}

bitflags! {
    /// EXITINFO1 of a nested page fault (APM Vol. 2, 15.25.6 "Nested versus Guest Page Faults,
    /// Fault Ordering"): a #PF-style error code about the nested walk, plus where in the guest's
    /// translation it happened. EXITINFO2 holds the faulting guest-physical address.
    #[repr(transparent)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct NpfInfo: u64 {
        /// The nested entry was present (a protection violation), else not present.
        const PRESENT = 1 << 0;
        /// The access was a write.
        const WRITE = 1 << 1;
        /// The access was a user access (always set: nested accesses are user accesses).
        const USER = 1 << 2;
        /// A reserved bit was set in a nested entry.
        const RESERVED = 1 << 3;
        /// The access was an instruction fetch.
        const FETCH = 1 << 4;
        /// The fault happened translating the guest's final physical address.
        const FINAL_TRANSLATION = 1 << 32;
        /// The fault happened translating an address of the guest's own page tables (its
        /// page-table walk).
        const GUEST_PAGE_TABLE = 1 << 33;
    }
}

impl NpfInfo {
    /// Decodes EXITINFO1 (unnamed bits are kept).
    pub const fn decode(info1: u64) -> Self {
        Self::from_bits_retain(info1)
    }
}

/// Size of the MSR permission map (two 4 KiB pages; APM Vol. 2, 15.11).
pub const MSRPM_SIZE: usize = 0x2000;
/// Size of the I/O permission map (three 4 KiB pages: one bit per port, plus the bits that
/// accesses crossing port 0xFFFF read; APM Vol. 2, 15.10.1).
pub const IOPM_SIZE: usize = 0x3000;

/// Where MSR `msr` lives in the MSR permission map (APM Vol. 2, 15.11 "MSR Intercepts"):
/// `(byte offset, bit)` of its read-intercept bit; the write-intercept bit is the
/// next one (`bit + 1`, same byte). `None` for MSRs outside the three covered ranges
/// (0000_0000-0000_1FFF at byte 0, C000_0000-C000_1FFF at 0x800, C001_0000-C001_1FFF at
/// 0x1000); accesses to those always exit when MSR_PROT is set.
pub const fn msrpm_position(msr: u32) -> Option<(usize, u8)> {
    let base = match msr & !0x1FFF {
        0x0000_0000 => 0x000,
        0xC000_0000 => 0x800,
        0xC001_0000 => 0x1000,
        _ => return None,
    };
    let bit = (msr & 0x1FFF) as usize * 2;
    Some((base + bit / 8, (bit % 8) as u8))
}

/// The VMCB control area (APM Vol. 2, Table B-1), 0x400 bytes.
#[repr(C)]
pub struct ControlArea {
    /// Intercept reads of CR`n` (bit `n`).
    pub intercept_cr_read: u16, // +0x000
    /// Intercept writes of CR`n` (bit `n`).
    pub intercept_cr_write: u16, // +0x002
    /// Intercept reads of DR`n` (bit `n`).
    pub intercept_dr_read: u16, // +0x004
    /// Intercept writes of DR`n` (bit `n`).
    pub intercept_dr_write: u16, // +0x006
    /// Intercept exception vector `v` (bit `v`).
    pub intercept_exceptions: u32, // +0x008
    /// Instruction and event intercepts, first word.
    pub intercept_misc1: InterceptMisc1, // +0x00C
    /// Instruction intercepts, second word (VMRUN must be set).
    pub intercept_misc2: InterceptMisc2, // +0x010
    /// Instruction intercepts, third word.
    pub intercept_misc3: InterceptMisc3, // +0x014
    _reserved_018: [u8; 0x24], // +0x018
    /// PAUSE filter threshold (cycles between PAUSEs that restart the count).
    pub pause_filter_threshold: u16, // +0x03C
    /// PAUSE filter count (PAUSEs before the intercept fires).
    pub pause_filter_count: u16, // +0x03E
    /// Physical address of the I/O permission map ([`IOPM_SIZE`], 4 KiB aligned).
    pub iopm_base_pa: u64, // +0x040
    /// Physical address of the MSR permission map ([`MSRPM_SIZE`], 4 KiB aligned).
    pub msrpm_base_pa: u64, // +0x048
    /// Added to the host TSC for the guest's RDTSC/RDTSCP/TSC MSR reads.
    pub tsc_offset: u64, // +0x050
    /// Guest ASID (non-zero; ASID 0 is the host's).
    pub guest_asid: u32, // +0x058
    /// TLB flush on VMRUN.
    pub tlb_control: TlbControl, // +0x05C
    _reserved_05d: [u8; 3],    // +0x05D
    /// Virtual interrupt control: V_TPR, V_IRQ, VGIF, V_INTR_PRIO, V_IGN_TPR, V_INTR_MASKING,
    /// AVIC enable, V_INTR_VECTOR ([`int_ctl`] bits; use the accessors).
    pub int_ctl: u64, // +0x060
    /// Interrupt shadow and the guest's interrupt mask.
    pub int_state: InterruptState, // +0x068
    /// Why the guest exited.
    pub exit_code: ExitCode, // +0x070
    /// Exit-specific information.
    pub exit_info1: u64, // +0x078
    /// More exit-specific information.
    pub exit_info2: u64, // +0x080
    /// An event whose delivery was interrupted by the exit (re-inject it).
    pub exit_int_info: EventInfo, // +0x088
    /// Nested paging and SEV enables.
    pub nested_control: NestedControl, // +0x090
    /// AVIC: physical address of the guest's APIC (bits 51:0).
    pub avic_apic_bar: u64, // +0x098
    /// SEV-ES: guest-physical address of the GHCB.
    pub ghcb_gpa: u64, // +0x0A0
    /// Event to inject on VMRUN.
    pub event_inj: EventInfo, // +0x0A8
    /// Nested page table root (see `npt::ncr3`).
    pub n_cr3: u64, // +0x0B0
    /// LBR virtualization and virtualized VMSAVE/VMLOAD.
    pub virt_ext: VirtExt, // +0x0B8
    /// VMCB clean bits (keep 0 unless the CPU supports them).
    pub clean_bits: CleanBits, // +0x0C0
    _reserved_0c4: u32,        // +0x0C4
    /// RIP of the next instruction, saved on instruction intercepts with NRIPS (0 without).
    pub next_rip: u64, // +0x0C8
    /// Number of guest instruction bytes fetched (decode assists).
    pub bytes_fetched: u8, // +0x0D0
    /// Guest instruction bytes (decode assists).
    pub guest_instruction_bytes: [u8; 15], // +0x0D1
    /// AVIC: physical address of the APIC backing page (bits 51:12).
    pub avic_backing_page: u64, // +0x0E0
    _reserved_0e8: u64,        // +0x0E8
    /// AVIC: physical address of the logical APIC ID table (bits 51:12).
    pub avic_logical_table: u64, // +0x0F0
    /// AVIC: physical address of the physical APIC ID table (51:12) and max index (7:0).
    pub avic_physical_table: u64, // +0x0F8
    _reserved_100: u64,        // +0x100
    /// SEV-ES: physical address of the encrypted save area (VMSA).
    pub vmsa_pa: u64, // +0x108
    _reserved_110: [u8; 0x2D0], // +0x110
    /// Reserved for the host's own use (the CPU ignores it).
    pub host_reserved: [u8; 0x20], // +0x3E0
}

impl ControlArea {
    /// The virtual TPR (V_TPR, bits 3:0).
    pub const fn v_tpr(&self) -> u8 {
        (self.int_ctl & int_ctl::V_TPR_MASK) as u8
    }

    /// Sets the virtual TPR (low 4 bits of `tpr`).
    pub const fn set_v_tpr(&mut self, tpr: u8) {
        self.int_ctl = (self.int_ctl & !int_ctl::V_TPR_MASK) | (tpr as u64 & int_ctl::V_TPR_MASK);
    }

    /// Whether a virtual interrupt is pending (V_IRQ; the CPU clears it when the guest takes
    /// it).
    pub const fn v_irq(&self) -> bool {
        self.int_ctl & int_ctl::V_IRQ != 0
    }

    /// Makes a virtual interrupt pending with `vector` and `priority` (V_IRQ, V_INTR_VECTOR,
    /// V_INTR_PRIO), compared against V_TPR unless `ignore_tpr` (V_IGN_TPR). With the VINTR
    /// intercept this is the interrupt window: the exit comes when the guest could take it.
    pub const fn request_virtual_interrupt(&mut self, vector: u8, priority: u8, ignore_tpr: bool) {
        let mut v = self.int_ctl
            & !(int_ctl::V_INTR_VECTOR_MASK | int_ctl::V_INTR_PRIO_MASK | int_ctl::V_IGN_TPR);
        v |= int_ctl::V_IRQ
            | ((vector as u64) << int_ctl::V_INTR_VECTOR_SHIFT)
            | ((priority as u64 & 0xF) << int_ctl::V_INTR_PRIO_SHIFT);
        if ignore_tpr {
            v |= int_ctl::V_IGN_TPR;
        }
        self.int_ctl = v;
    }

    /// Withdraws a pending virtual interrupt (clears V_IRQ).
    pub const fn clear_virtual_interrupt(&mut self) {
        self.int_ctl &= !int_ctl::V_IRQ;
    }

    /// The pending virtual interrupt's vector (V_INTR_VECTOR).
    pub const fn v_intr_vector(&self) -> u8 {
        (self.int_ctl >> int_ctl::V_INTR_VECTOR_SHIFT) as u8
    }

    /// Whether V_INTR_MASKING is set.
    pub const fn v_intr_masking(&self) -> bool {
        self.int_ctl & int_ctl::V_INTR_MASKING != 0
    }

    /// Sets or clears V_INTR_MASKING (virtualized EFLAGS.IF and TPR).
    pub const fn set_v_intr_masking(&mut self, on: bool) {
        if on {
            self.int_ctl |= int_ctl::V_INTR_MASKING;
        } else {
            self.int_ctl &= !int_ctl::V_INTR_MASKING;
        }
    }

    /// Intercept exception `vector` (0..=31).
    pub const fn intercept_exception(&mut self, vector: u8) {
        self.intercept_exceptions |= 1 << (vector & 0x1F);
    }
}

impl fmt::Debug for ControlArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlArea")
            .field(
                "intercept_cr_read",
                &format_args!("{:#x}", self.intercept_cr_read),
            )
            .field(
                "intercept_cr_write",
                &format_args!("{:#x}", self.intercept_cr_write),
            )
            .field(
                "intercept_dr_read",
                &format_args!("{:#x}", self.intercept_dr_read),
            )
            .field(
                "intercept_dr_write",
                &format_args!("{:#x}", self.intercept_dr_write),
            )
            .field(
                "intercept_exceptions",
                &format_args!("{:#x}", self.intercept_exceptions),
            )
            .field("intercept_misc1", &self.intercept_misc1)
            .field("intercept_misc2", &self.intercept_misc2)
            .field("intercept_misc3", &self.intercept_misc3)
            .field("pause_filter_threshold", &self.pause_filter_threshold)
            .field("pause_filter_count", &self.pause_filter_count)
            .field("iopm_base_pa", &format_args!("{:#x}", self.iopm_base_pa))
            .field("msrpm_base_pa", &format_args!("{:#x}", self.msrpm_base_pa))
            .field("tsc_offset", &format_args!("{:#x}", self.tsc_offset))
            .field("guest_asid", &self.guest_asid)
            .field("tlb_control", &self.tlb_control)
            .field("int_ctl", &format_args!("{:#x}", self.int_ctl))
            .field("int_state", &self.int_state)
            .field("exit_code", &self.exit_code)
            .field("exit_info1", &format_args!("{:#x}", self.exit_info1))
            .field("exit_info2", &format_args!("{:#x}", self.exit_info2))
            .field("exit_int_info", &self.exit_int_info)
            .field("nested_control", &self.nested_control)
            .field("event_inj", &self.event_inj)
            .field("n_cr3", &format_args!("{:#x}", self.n_cr3))
            .field("virt_ext", &self.virt_ext)
            .field("clean_bits", &self.clean_bits)
            .field("next_rip", &format_args!("{:#x}", self.next_rip))
            .finish_non_exhaustive()
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
    _reserved_4a0: [u8; 0x2B], // +0x4A0 (0x4CA is VMPL for SEV-SNP)
    /// Current privilege level: VMRUN takes the guest's CPL from here (keep it equal to SS.DPL;
    /// 0 in real mode).
    pub cpl: u8, // +0x4CB
    _reserved_4cc: u32,        // +0x4CC
    /// EFER. SVME must be set (VMRUN fails with VMEXIT_INVALID otherwise).
    pub efer: u64, // +0x4D0
    _reserved_4d8: [u8; 0x70], // +0x4D8
    /// CR4.
    pub cr4: u64,  // +0x548
    /// CR3 (guest-physical with nested paging).
    pub cr3: u64, // +0x550
    /// CR0.
    pub cr0: u64,  // +0x558
    /// DR7.
    pub dr7: u64,  // +0x560
    /// DR6.
    pub dr6: u64,  // +0x568
    /// RFLAGS.
    pub rflags: u64, // +0x570
    /// RIP.
    pub rip: u64,  // +0x578
    _reserved_580: [u8; 0x58], // +0x580
    /// RSP.
    pub rsp: u64,  // +0x5D8
    /// CET: supervisor CET control (S_CET).
    pub s_cet: u64, // +0x5E0
    /// CET: shadow stack pointer (SSP).
    pub ssp: u64, // +0x5E8
    /// CET: interrupt shadow stack table address (ISST_ADDR).
    pub isst_addr: u64, // +0x5F0
    /// RAX.
    pub rax: u64,  // +0x5F8
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
    pub cr2: u64,  // +0x640
    _reserved_648: [u8; 0x20], // +0x648
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
    _reserved_698: [u8; 0x48], // +0x698
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

/// A virtual machine control block: one 4 KiB aligned page (APM Vol. 2, appendix B).
#[repr(C, align(4096))]
pub struct Vmcb {
    /// Control area (0x000-0x3FF).
    pub control: ControlArea, // +0x000
    /// State save area (from 0x400).
    pub save: SaveArea, // +0x400
    _reserved_6e8: [u8; 0x1000 - 0x6E8], // +0x6E8 (later save-area fields: LBR stack, IBS)
}

const _: () = assert!(core::mem::size_of::<ControlArea>() == 0x400);
const _: () = assert!(core::mem::size_of::<SaveArea>() == 0x2E8);
const _: () = assert!(core::mem::offset_of!(Vmcb, save) == 0x400);
const _: () = assert!(core::mem::size_of::<Vmcb>() == 0x1000);
const _: () = assert!(core::mem::align_of::<Vmcb>() == 0x1000);

impl Vmcb {
    /// An all-zero VMCB (no intercepts, no state): the starting point before setup.
    pub const fn zeroed() -> Self {
        // SAFETY: every field is an integer, an array of integers, or a `repr(transparent)`
        // wrapper of one (bitflags, ExitCode, EventInfo, TlbControl), for which all-zero bytes
        // are a valid value.
        unsafe { core::mem::zeroed() }
    }
}

impl Default for Vmcb {
    fn default() -> Self {
        Self::zeroed()
    }
}

impl fmt::Debug for Vmcb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vmcb")
            .field("control", &self.control)
            .field("save", &self.save)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};
    use std::boxed::Box;
    use std::format;

    /// One field: its name, its offset, its size, and the offset the APM gives.
    struct Field {
        name: &'static str,
        offset: usize,
        size: usize,
        apm: usize,
    }

    fn field_size<T, F>(_: fn(&T) -> &F) -> usize {
        size_of::<F>()
    }

    /// Lists the fields of `$ty` (every one, reserved ranges included) with the APM offsets,
    /// counted from the start of the VMCB (`$base` is where `$ty` starts).
    macro_rules! fields {
        ($ty:ty, $base:expr, { $($field:ident: $apm:expr,)* }) => {
            std::vec![$(Field {
                name: stringify!($field),
                offset: $base + offset_of!($ty, $field),
                size: field_size(|s: &$ty| &s.$field),
                apm: $apm,
            }),*]
        };
    }

    /// Each field at the APM's offset, and each one ending where the next begins (the last at
    /// `end`): no compiler padding, no field of the wrong width, none missing from the list.
    fn check(fields: &[Field], end: usize) {
        for f in fields {
            assert_eq!(
                f.offset, f.apm,
                "{}: at {:#x}, APM says {:#x}",
                f.name, f.offset, f.apm
            );
        }
        for pair in fields.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert_eq!(
                a.offset + a.size,
                b.offset,
                "{} must end where {} begins",
                a.name,
                b.name
            );
        }
        let last = fields.last().unwrap();
        assert_eq!(last.offset + last.size, end, "{} ends the area", last.name);
    }

    /// Table B-1.
    #[test]
    fn control_area_offsets_match_the_apm() {
        let fields = fields!(ControlArea, 0, {
            intercept_cr_read: 0x000,
            intercept_cr_write: 0x002,
            intercept_dr_read: 0x004,
            intercept_dr_write: 0x006,
            intercept_exceptions: 0x008,
            intercept_misc1: 0x00C,
            intercept_misc2: 0x010,
            intercept_misc3: 0x014,
            _reserved_018: 0x018,
            pause_filter_threshold: 0x03C,
            pause_filter_count: 0x03E,
            iopm_base_pa: 0x040,
            msrpm_base_pa: 0x048,
            tsc_offset: 0x050,
            guest_asid: 0x058,
            tlb_control: 0x05C,
            _reserved_05d: 0x05D,
            int_ctl: 0x060,
            int_state: 0x068,
            exit_code: 0x070,
            exit_info1: 0x078,
            exit_info2: 0x080,
            exit_int_info: 0x088,
            nested_control: 0x090,
            avic_apic_bar: 0x098,
            ghcb_gpa: 0x0A0,
            event_inj: 0x0A8,
            n_cr3: 0x0B0,
            virt_ext: 0x0B8,
            clean_bits: 0x0C0,
            _reserved_0c4: 0x0C4,
            next_rip: 0x0C8,
            bytes_fetched: 0x0D0,
            guest_instruction_bytes: 0x0D1,
            avic_backing_page: 0x0E0,
            _reserved_0e8: 0x0E8,
            avic_logical_table: 0x0F0,
            avic_physical_table: 0x0F8,
            _reserved_100: 0x100,
            vmsa_pa: 0x108,
            _reserved_110: 0x110,
            host_reserved: 0x3E0,
        });
        assert_eq!(fields.len(), 42);
        check(&fields, 0x400);
        assert_eq!(offset_of!(Vmcb, control), 0);
        assert_eq!(size_of::<ControlArea>(), 0x400);
    }

    /// Table B-2 (whose offsets count from the save area: here + 0x400).
    #[test]
    fn save_area_offsets_match_the_apm() {
        let fields = fields!(SaveArea, offset_of!(Vmcb, save), {
            es: 0x400,
            cs: 0x410,
            ss: 0x420,
            ds: 0x430,
            fs: 0x440,
            gs: 0x450,
            gdtr: 0x460,
            ldtr: 0x470,
            idtr: 0x480,
            tr: 0x490,
            _reserved_4a0: 0x4A0,
            cpl: 0x4CB,
            _reserved_4cc: 0x4CC,
            efer: 0x4D0,
            _reserved_4d8: 0x4D8,
            cr4: 0x548,
            cr3: 0x550,
            cr0: 0x558,
            dr7: 0x560,
            dr6: 0x568,
            rflags: 0x570,
            rip: 0x578,
            _reserved_580: 0x580,
            rsp: 0x5D8,
            s_cet: 0x5E0,
            ssp: 0x5E8,
            isst_addr: 0x5F0,
            rax: 0x5F8,
            star: 0x600,
            lstar: 0x608,
            cstar: 0x610,
            sfmask: 0x618,
            kernel_gs_base: 0x620,
            sysenter_cs: 0x628,
            sysenter_esp: 0x630,
            sysenter_eip: 0x638,
            cr2: 0x640,
            _reserved_648: 0x648,
            g_pat: 0x668,
            dbgctl: 0x670,
            br_from: 0x678,
            br_to: 0x680,
            last_excp_from: 0x688,
            last_excp_to: 0x690,
            _reserved_698: 0x698,
            spec_ctrl: 0x6E0,
        });
        assert_eq!(fields.len(), 46);
        check(&fields, 0x6E8);
        let vmcb = fields!(Vmcb, 0, {
            control: 0x000,
            save: 0x400,
            _reserved_6e8: 0x6E8,
        });
        check(&vmcb, 0x1000);
    }

    #[test]
    fn segment_layout_and_vmcb_size() {
        assert_eq!(offset_of!(Segment, selector), 0);
        assert_eq!(offset_of!(Segment, attrib), 2);
        assert_eq!(offset_of!(Segment, limit), 4);
        assert_eq!(offset_of!(Segment, base), 8);
        assert_eq!(size_of::<Segment>(), 16);
        assert_eq!(size_of::<Vmcb>(), 4096);
        assert_eq!(core::mem::align_of::<Vmcb>(), 4096);
        // Typed fields keep the width of the raw field.
        assert_eq!(size_of::<InterceptMisc1>(), 4);
        assert_eq!(size_of::<InterruptState>(), 8);
        assert_eq!(size_of::<ExitCode>(), 8);
        assert_eq!(size_of::<EventInfo>(), 8);
        assert_eq!(size_of::<NestedControl>(), 8);
        assert_eq!(size_of::<CleanBits>(), 4);
        assert_eq!(size_of::<TlbControl>(), 1);
    }

    /// Writes through the typed fields land on the APM's bytes.
    #[test]
    fn fields_write_the_right_bytes() {
        let mut v = Box::new(Vmcb::zeroed());
        v.control.intercept_misc2 = InterceptMisc2::VMRUN | InterceptMisc2::VMMCALL;
        v.control.guest_asid = 1;
        v.control.tlb_control = TlbControl::FLUSH_GUEST;
        v.control.nested_control = NestedControl::NP_ENABLE;
        v.control.exit_code = ExitCode::INVALID;
        v.save.cpl = 3;
        v.save.efer = 0x1000;
        v.save.rip = 0x1122_3344_5566_7788;
        v.save.cs = Segment::from_access_rights(0x08, 0, 0xFFFF_FFFF, 0xA09B);
        // SAFETY: `Vmcb` is 4096 plain bytes (asserted above); viewing them as `u8` is valid.
        let bytes: &[u8; 4096] = unsafe { &*(&*v as *const Vmcb).cast::<[u8; 4096]>() };
        assert_eq!(bytes[0x010], 0b11);
        assert_eq!(bytes[0x058], 1);
        assert_eq!(bytes[0x05C], 3);
        assert_eq!(bytes[0x090], 1);
        assert_eq!(&bytes[0x070..0x078], &[0xFF; 8]);
        assert_eq!(bytes[0x4CB], 3);
        assert_eq!(bytes[0x4D1], 0x10);
        assert_eq!(bytes[0x578], 0x88);
        assert_eq!(bytes[0x57F], 0x11);
        assert_eq!(
            &bytes[0x410..0x418],
            &[0x08, 0, 0x9B, 0x0A, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        let set = bytes.iter().filter(|&&b| b != 0).count();
        assert_eq!(set, 1 + 1 + 1 + 1 + 8 + 1 + 1 + 8 + 7);
    }

    #[test]
    fn segment_attributes_convert_from_and_to_vmx_rights() {
        // 64-bit code: type 0xB, S, P; L, G.
        assert_eq!(Segment::attrib_from_access_rights(0xA09B), 0xA9B);
        assert_eq!(Segment::attrib_from_access_rights(0x209B), 0x29B);
        // 32-bit flat data: D/B, G.
        assert_eq!(Segment::attrib_from_access_rights(0xC093), 0xC93);
        // Busy TSS; unusable LDTR.
        assert_eq!(Segment::attrib_from_access_rights(0x8B), 0x8B);
        assert_eq!(Segment::attrib_from_access_rights(1 << 16), 0);
        let s = Segment::from_access_rights(0x10, 0x1000, 0xFFFF, 0xC093);
        assert_eq!(
            (s.selector, s.base, s.limit, s.attrib),
            (0x10, 0x1000, 0xFFFF, 0xC93)
        );
        assert_eq!(s.access_rights(), 0xC093);
        assert_eq!(
            Segment::default().access_rights(),
            1 << 16,
            "not present = unusable"
        );
    }

    #[test]
    fn exact_attributes_survive_a_round_trip_through_vmx_rights() {
        for attrib in 0..0x1000u16 {
            let s = Segment {
                attrib,
                ..Segment::default()
            };
            assert_eq!(Segment::attrib_exact(s.access_rights()), attrib);
        }
        // Unusable with other bits set (as VT-x may save it): not present, bits kept.
        assert_eq!(Segment::attrib_exact((1 << 16) | 0xC093), 0xC13);
        assert_eq!(Segment::attrib_exact(0xA09B), 0xA9B);
    }

    #[test]
    fn intercept_bits_follow_table_b1() {
        assert_eq!(InterceptMisc1::INTR.bits(), 1);
        assert_eq!(InterceptMisc1::VINTR.bits(), 1 << 4);
        assert_eq!(InterceptMisc1::CPUID.bits(), 1 << 18);
        assert_eq!(InterceptMisc1::HLT.bits(), 1 << 24);
        assert_eq!(InterceptMisc1::IOIO_PROT.bits(), 1 << 27);
        assert_eq!(InterceptMisc1::MSR_PROT.bits(), 1 << 28);
        assert_eq!(InterceptMisc1::SHUTDOWN.bits(), 1 << 31);
        assert_eq!(InterceptMisc1::all().bits(), u32::MAX, "32 distinct bits");
        assert_eq!(InterceptMisc2::VMRUN.bits(), 1);
        assert_eq!(InterceptMisc2::XSETBV.bits(), 1 << 13);
        assert_eq!(InterceptMisc2::all().bits(), 0xFFFF);
        assert_eq!(InterceptMisc2::cr_write_trap(0).bits(), 1 << 16);
        assert_eq!(InterceptMisc2::cr_write_trap(15).bits(), 1 << 31);
        assert_eq!(InterceptMisc3::INVPCID.bits(), 1 << 2);
        // Appendix C numbers the intercepts of each word in bit order: bit n of misc1 exits
        // with 0x60 + n, of misc2 with 0x80 + n, of misc3 with 0xA0 + n. Both tables agree.
        for (flag, code) in [
            (InterceptMisc1::INTR, ExitCode::INTR),
            (InterceptMisc1::NMI, ExitCode::NMI),
            (InterceptMisc1::SMI, ExitCode::SMI),
            (InterceptMisc1::INIT, ExitCode::INIT),
            (InterceptMisc1::VINTR, ExitCode::VINTR),
            (InterceptMisc1::CR0_SEL_WRITE, ExitCode::CR0_SEL_WRITE),
            (InterceptMisc1::IDTR_READ, ExitCode::IDTR_READ),
            (InterceptMisc1::GDTR_READ, ExitCode::GDTR_READ),
            (InterceptMisc1::LDTR_READ, ExitCode::LDTR_READ),
            (InterceptMisc1::TR_READ, ExitCode::TR_READ),
            (InterceptMisc1::IDTR_WRITE, ExitCode::IDTR_WRITE),
            (InterceptMisc1::GDTR_WRITE, ExitCode::GDTR_WRITE),
            (InterceptMisc1::LDTR_WRITE, ExitCode::LDTR_WRITE),
            (InterceptMisc1::TR_WRITE, ExitCode::TR_WRITE),
            (InterceptMisc1::RDTSC, ExitCode::RDTSC),
            (InterceptMisc1::RDPMC, ExitCode::RDPMC),
            (InterceptMisc1::PUSHF, ExitCode::PUSHF),
            (InterceptMisc1::POPF, ExitCode::POPF),
            (InterceptMisc1::CPUID, ExitCode::CPUID),
            (InterceptMisc1::RSM, ExitCode::RSM),
            (InterceptMisc1::IRET, ExitCode::IRET),
            (InterceptMisc1::INTN, ExitCode::SWINT),
            (InterceptMisc1::INVD, ExitCode::INVD),
            (InterceptMisc1::PAUSE, ExitCode::PAUSE),
            (InterceptMisc1::HLT, ExitCode::HLT),
            (InterceptMisc1::INVLPG, ExitCode::INVLPG),
            (InterceptMisc1::INVLPGA, ExitCode::INVLPGA),
            (InterceptMisc1::IOIO_PROT, ExitCode::IOIO),
            (InterceptMisc1::MSR_PROT, ExitCode::MSR),
            (InterceptMisc1::TASK_SWITCH, ExitCode::TASK_SWITCH),
            (InterceptMisc1::FERR_FREEZE, ExitCode::FERR_FREEZE),
            (InterceptMisc1::SHUTDOWN, ExitCode::SHUTDOWN),
        ] {
            assert_eq!(flag.bits().count_ones(), 1);
            assert_eq!(
                code.0,
                0x60 + u64::from(flag.bits().trailing_zeros()),
                "{code:?}"
            );
        }
        assert_eq!(InterceptMisc1::all().iter().count(), 32);
        for (flag, code) in [
            (InterceptMisc2::VMRUN, ExitCode::VMRUN),
            (InterceptMisc2::VMMCALL, ExitCode::VMMCALL),
            (InterceptMisc2::VMLOAD, ExitCode::VMLOAD),
            (InterceptMisc2::VMSAVE, ExitCode::VMSAVE),
            (InterceptMisc2::STGI, ExitCode::STGI),
            (InterceptMisc2::CLGI, ExitCode::CLGI),
            (InterceptMisc2::SKINIT, ExitCode::SKINIT),
            (InterceptMisc2::RDTSCP, ExitCode::RDTSCP),
            (InterceptMisc2::ICEBP, ExitCode::ICEBP),
            (InterceptMisc2::WBINVD, ExitCode::WBINVD),
            (InterceptMisc2::MONITOR, ExitCode::MONITOR),
            (InterceptMisc2::MWAIT, ExitCode::MWAIT),
            (
                InterceptMisc2::MWAIT_CONDITIONAL,
                ExitCode::MWAIT_CONDITIONAL,
            ),
            (InterceptMisc2::XSETBV, ExitCode::XSETBV),
            (InterceptMisc2::RDPRU, ExitCode::RDPRU),
            (InterceptMisc2::EFER_WRITE_TRAP, ExitCode::EFER_WRITE_TRAP),
        ] {
            assert_eq!(flag.bits().count_ones(), 1);
            assert_eq!(
                code.0,
                0x80 + u64::from(flag.bits().trailing_zeros()),
                "{code:?}"
            );
        }
        assert_eq!(InterceptMisc2::all().iter().count(), 16);
        for (flag, code) in [
            (InterceptMisc3::INVLPGB, ExitCode::INVLPGB),
            (InterceptMisc3::INVLPGB_ILLEGAL, ExitCode::INVLPGB_ILLEGAL),
            (InterceptMisc3::INVPCID, ExitCode::INVPCID),
            (InterceptMisc3::MCOMMIT, ExitCode::MCOMMIT),
            (InterceptMisc3::TLBSYNC, ExitCode::TLBSYNC),
        ] {
            assert_eq!(flag.bits().count_ones(), 1);
            assert_eq!(
                code.0,
                0xA0 + u64::from(flag.bits().trailing_zeros()),
                "{code:?}"
            );
        }
        assert_eq!(InterceptMisc3::all().iter().count(), 5);
        for n in 0..16 {
            assert_eq!(
                ExitCode::cr_write_trap(n).0,
                0x80 + u64::from(InterceptMisc2::cr_write_trap(n).bits().trailing_zeros())
            );
        }
        let mut c = Box::new(Vmcb::zeroed()).control;
        c.intercept_exception(14);
        c.intercept_exception(1);
        assert_eq!(c.intercept_exceptions, (1 << 14) | (1 << 1));
    }

    #[test]
    fn exit_codes_follow_appendix_c() {
        assert_eq!(ExitCode::cr_read(3), ExitCode(0x03));
        assert_eq!(ExitCode::cr_write(8), ExitCode(0x18));
        assert_eq!(ExitCode::dr_read(7), ExitCode(0x27));
        assert_eq!(ExitCode::dr_write(6), ExitCode(0x36));
        assert_eq!(ExitCode::exception(14), ExitCode(0x4E));
        assert_eq!(ExitCode::cr_write_trap(4), ExitCode(0x94));
        assert_eq!(ExitCode(0x18).cr_access(), Some((8, true)));
        assert_eq!(ExitCode(0x00).cr_access(), Some((0, false)));
        assert_eq!(ExitCode(0x3F).dr_access(), Some((15, true)));
        assert_eq!(ExitCode(0x40).exception_vector(), Some(0));
        assert_eq!(ExitCode(0x5F).exception_vector(), Some(31));
        assert_eq!(ExitCode(0x60).exception_vector(), None);
        assert_eq!(ExitCode::CPUID.cr_access(), None);
        for (code, value) in [
            (ExitCode::INTR, 0x60),
            (ExitCode::NMI, 0x61),
            (ExitCode::SMI, 0x62),
            (ExitCode::INIT, 0x63),
            (ExitCode::VINTR, 0x64),
            (ExitCode::CR0_SEL_WRITE, 0x65),
            (ExitCode::CPUID, 0x72),
            (ExitCode::HLT, 0x78),
            (ExitCode::INVLPG, 0x79),
            (ExitCode::INVLPGA, 0x7A),
            (ExitCode::IOIO, 0x7B),
            (ExitCode::MSR, 0x7C),
            (ExitCode::TASK_SWITCH, 0x7D),
            (ExitCode::FERR_FREEZE, 0x7E),
            (ExitCode::SHUTDOWN, 0x7F),
            (ExitCode::VMRUN, 0x80),
            (ExitCode::VMMCALL, 0x81),
            (ExitCode::VMLOAD, 0x82),
            (ExitCode::VMSAVE, 0x83),
            (ExitCode::STGI, 0x84),
            (ExitCode::CLGI, 0x85),
            (ExitCode::SKINIT, 0x86),
            (ExitCode::RDTSCP, 0x87),
            (ExitCode::ICEBP, 0x88),
            (ExitCode::WBINVD, 0x89),
            (ExitCode::MONITOR, 0x8A),
            (ExitCode::MWAIT, 0x8B),
            (ExitCode::MWAIT_CONDITIONAL, 0x8C),
            (ExitCode::XSETBV, 0x8D),
            (ExitCode::NPF, 0x400),
            (ExitCode::INVALID, u64::MAX),
        ] {
            assert_eq!(code.0, value, "{code:?}");
        }
        assert_eq!(
            format!("{:?}", ExitCode::exception(13)),
            "ExitCode(0x4d exception 13)"
        );
        assert_eq!(
            format!("{:?}", ExitCode::cr_write(3)),
            "ExitCode(0x13 CR write 3)"
        );
        assert_eq!(
            format!("{:?}", ExitCode::cr_write_trap(8)),
            "ExitCode(0x98 CR write trap 8)"
        );
        assert_eq!(
            format!("{}", ExitCode::NPF),
            "ExitCode(0x400 nested page fault)"
        );
        assert_eq!(format!("{}", ExitCode(0x1234)), "ExitCode(0x1234 unknown)");
        // Usable as match patterns.
        let kind = match ExitCode(0x78) {
            ExitCode::CPUID => "cpuid",
            ExitCode::HLT => "hlt",
            _ => "other",
        };
        assert_eq!(kind, "hlt");
    }

    #[test]
    fn event_injection_encoding() {
        // #GP(0): vector 13, type 3, EV, V.
        let gp = EventInfo::exception(13, Some(0));
        assert_eq!(gp.0, 0x8000_0B0D);
        assert_eq!(
            (gp.valid(), gp.vector(), gp.event_type(), gp.error_code()),
            (true, 13, Some(EventType::Exception), Some(0))
        );
        // #PF with error code 6 in bits 63:32.
        assert_eq!(EventInfo::exception(14, Some(6)).0, 0x0000_0006_8000_0B0E);
        // #UD: no error code.
        assert_eq!(EventInfo::exception(6, None).0, 0x8000_0306);
        assert_eq!(EventInfo::external(0x20).0, 0x8000_0020);
        assert_eq!(EventInfo::nmi().0, 0x8000_0202);
        assert_eq!(EventInfo::software_interrupt(0x80).0, 0x8000_0480);
        assert!(!EventInfo::NONE.valid());
        assert_eq!(
            EventInfo(0x8000_0100).event_type(),
            None,
            "type 1 is reserved"
        );
        assert_eq!(EventInfo::exception(6, None).error_code(), None);
        assert_eq!(
            format!("{:?}", EventInfo::exception(14, Some(6))),
            "EventInfo(Some(Exception) vector 14 error 0x6)"
        );
        assert!(exception_has_error_code(8) && exception_has_error_code(14));
        assert!(exception_has_error_code(17) && !exception_has_error_code(6));
        assert!(!exception_has_error_code(3) && !exception_has_error_code(18));
    }

    #[test]
    fn virtual_interrupt_control() {
        let mut c = Box::new(Vmcb::zeroed()).control;
        c.set_v_intr_masking(true);
        c.set_v_tpr(0x1F);
        assert_eq!(c.v_tpr(), 0xF);
        c.request_virtual_interrupt(0x30, 3, true);
        assert_eq!(c.int_ctl, 0x30_0113_010F);
        assert!(c.v_irq() && c.v_intr_masking());
        assert_eq!(c.v_intr_vector(), 0x30);
        c.request_virtual_interrupt(0x41, 2, false);
        assert_eq!(c.int_ctl, 0x41_0102_010F);
        c.clear_virtual_interrupt();
        assert!(!c.v_irq());
        c.set_v_intr_masking(false);
        assert_eq!(c.int_ctl, 0x41_0002_000F);
    }

    #[test]
    fn ioio_exit_info_decodes() {
        // `out dx, al` to 0x3F8: port 0x3F8, SZ8, A64 (the CPU sets an address size even for
        // non-string instructions).
        let info = IoioInfo::decode(0x03F8_0210);
        assert_eq!(
            info,
            IoioInfo {
                port: 0x3F8,
                input: false,
                string: false,
                rep: false,
                size: 1,
                address_bits: 64,
                segment: 0,
            }
        );
        // `in eax, 0xCFC`.
        let info = IoioInfo::decode(0x0CFC_0041);
        assert_eq!((info.port, info.input, info.size), (0xCFC, true, 4));
        // `rep insw` from port 0x1F0 with 32-bit addresses, segment ES.
        let info = IoioInfo::decode(0x01F0_012D);
        assert_eq!(
            (
                info.port,
                info.input,
                info.string,
                info.rep,
                info.size,
                info.address_bits
            ),
            (0x1F0, true, true, true, 2, 32)
        );
        // `rep outsb` with 16-bit addresses from DS (segment 3, reported with decode assists).
        let info = IoioInfo::decode(0x0080_0C9C);
        assert_eq!(
            (
                info.port,
                info.input,
                info.string,
                info.rep,
                info.size,
                info.address_bits
            ),
            (0x80, false, true, true, 1, 16)
        );
        assert_eq!(info.segment, 3);
        assert_eq!(IoioInfo::decode(0).size, 0);
    }

    #[test]
    fn npf_exit_info_decodes() {
        // A write to a present, read-only page while translating the final address.
        let npf = NpfInfo::decode(0x1_0000_0007);
        assert!(npf.contains(NpfInfo::PRESENT | NpfInfo::WRITE | NpfInfo::USER));
        assert!(npf.contains(NpfInfo::FINAL_TRANSLATION));
        assert!(!npf.contains(NpfInfo::FETCH) && !npf.contains(NpfInfo::GUEST_PAGE_TABLE));
        // An instruction fetch from an unmapped page during the guest's page-table walk.
        let npf = NpfInfo::decode(0x2_0000_0014);
        assert!(npf.contains(NpfInfo::FETCH | NpfInfo::GUEST_PAGE_TABLE));
        assert!(!npf.contains(NpfInfo::PRESENT));
        // Unknown bits survive.
        assert_eq!(NpfInfo::decode(1 << 40).bits(), 1 << 40);
    }

    #[test]
    fn msr_permission_map_positions() {
        assert_eq!(msrpm_position(0), Some((0, 0)));
        // IA32_APIC_BASE 0x1B: bits 54/55 of the first range.
        assert_eq!(msrpm_position(0x1B), Some((6, 6)));
        assert_eq!(msrpm_position(0x1FFF), Some((0x7FF, 6)));
        // EFER C000_0080 at 0x800 + 0x80 * 2 / 8.
        assert_eq!(msrpm_position(0xC000_0080), Some((0x820, 0)));
        // KernelGsBase C000_0102.
        assert_eq!(msrpm_position(0xC000_0102), Some((0x840, 4)));
        assert_eq!(msrpm_position(0xC001_0000), Some((0x1000, 0)));
        assert_eq!(msrpm_position(0xC001_1FFF), Some((0x17FF, 6)));
        assert_eq!(msrpm_position(0x2000), None);
        assert_eq!(msrpm_position(0x4000_0000), None);
        assert_eq!(msrpm_position(0xC000_2000), None);
        assert_eq!((MSRPM_SIZE, IOPM_SIZE), (2 * 4096, 3 * 4096));
    }

    #[test]
    fn zeroed_vmcb_is_all_zero_and_debug_skips_reserved() {
        let v = Box::new(Vmcb::default());
        // SAFETY: as in `fields_write_the_right_bytes`.
        let bytes: &[u8; 4096] = unsafe { &*(&*v as *const Vmcb).cast::<[u8; 4096]>() };
        assert!(bytes.iter().all(|&b| b == 0));
        let dump = format!("{v:?}");
        assert!(dump.contains("exit_code: ExitCode(0x0 CR read 0)"));
        assert!(!dump.contains("_reserved"));
    }
}
