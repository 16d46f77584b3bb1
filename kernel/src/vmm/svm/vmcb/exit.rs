// SPDX-License-Identifier: MIT OR Apache-2.0
//! What an #VMEXIT reports: the exit code (AMD64 APM Vol. 2, appendix C "SVM Intercept Exit
//! Codes") and the decoded exit information of MSR, IOIO and nested-page-fault intercepts
//! (15.11, 15.10.2, 15.25.6).

use core::fmt;

use bitflags::bitflags;

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
