// SPDX-License-Identifier: MIT OR Apache-2.0
//! The VMCB's intercept words (AMD64 APM Vol. 2, Table B-1): what makes the guest exit.

use bitflags::bitflags;

bitflags! {
    /// The first miscellaneous intercept word, VMCB offset 0x00C (APM Vol. 2, Table B-1).
    /// The exit code of each intercept is in [`super::ExitCode`].
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
