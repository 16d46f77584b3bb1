// SPDX-License-Identifier: MIT OR Apache-2.0
//! Instruction emulation both back ends share: what CPUID, RDMSR/WRMSR, IN and OUT do to the
//! guest's general registers, and the register dump. The back ends keep only what differs
//! between VT-x and AMD-V: decoding the exit, moving RIP past the instruction, injecting the
//! exception an [`Emulated::Fault`] asks for, and their hardware state.

use core::fmt;

use super::msr::VirtualMsrs;
use super::vcpu::{Exit, GuestRegs, InterruptSource, Width};
use super::{cpuid, cpuid_clocks};

/// An exception to inject into the guest, with its error code if the vector pushes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    /// Vector.
    pub vector: u8,
    /// Error code.
    pub error: Option<u32>,
}

impl Exception {
    /// Invalid opcode, #UD (vector 6; Intel SDM Vol. 3A, 6.15 "Exception and Interrupt
    /// Reference"; AMD64 APM Vol. 2, 8.2.7): no error code.
    pub const UD: Self = Self {
        vector: 6,
        error: None,
    };
    /// General protection with error code 0, #GP(0) (vector 13; SDM Vol. 3A, 6.15; APM
    /// Vol. 2, 8.2.14), as RDMSR/WRMSR raise for an MSR the CPU lacks or a value it refuses.
    pub const GP0: Self = Self {
        vector: 13,
        error: Some(0),
    };
}

/// What an emulated instruction asks of the back end.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulated {
    /// The instruction completed: move the guest past it.
    Done,
    /// The instruction faults instead (it had no effect; RIP stays on it): inject this.
    Fault(Exception),
}

/// CPUID: the host's answer for leaf EAX, subleaf ECX, filtered by [`cpuid::filter`] for vCPU
/// `vcpu_index` (its APIC id) and narrowed to the pair's CPU model if there is one
/// ([`cpuid::filter_with`]), or the guest's clock rates (its TSC runs at `tsc_hz`) for leaves
/// 0x15 and 0x16 where the host has them ([`cpuid_clocks::clock_leaf`]), into EAX, EBX, ECX,
/// EDX (upper halves zeroed, SDM Vol. 2A, CPUID).
pub fn cpuid(regs: &mut GuestRegs, vcpu_index: u32, tsc_hz: u64) -> Emulated {
    let (leaf, subleaf) = (regs.rax as u32, regs.rcx as u32);
    let host: cpuid::Regs = core::arch::x86_64::__cpuid_count(leaf, subleaf).into();
    let clocks = cpuid_clocks::Clocks {
        tsc_hz,
        lapic_hz: cpuid_clocks::LAPIC_TIMER_HZ,
    };
    let model = super::cpu_model::negotiated();
    let filtered = |leaf, host| cpuid::filter_with(model, leaf, subleaf, host, vcpu_index as u8);
    // A pair's negotiated model decides every leaf; a single host adds its clock leaves.
    let answer = match model {
        Some(_) => None,
        None => {
            let host0 = cpuid_clocks::HostLeaf0::new(host_leaf0());
            let plain = if leaf == 0 { filtered(0, host) } else { host };
            cpuid_clocks::single_host_leaf(leaf, host0, clocks, plain)
        }
    }
    .unwrap_or_else(|| filtered(leaf, host));
    regs.set_cpuid(answer);
    Emulated::Done
}

/// The host's leaf 0, read once (a host CPUID is itself an exit when Castor runs nested).
fn host_leaf0() -> cpuid::Regs {
    static LEAF0: spin::Once<cpuid::Regs> = spin::Once::new();
    *LEAF0.call_once(|| core::arch::x86_64::__cpuid(0).into())
}

/// RDMSR (`write` false) or WRMSR of the MSR in ECX: the interrupt controller's own (the local
/// APIC's IA32_APIC_BASE and IA32_TSC_DEADLINE) go to `irq`, the rest to the virtual MSR file;
/// `tsc` is the guest's current TSC. An MSR the file does not know, or a value it refuses, raises #GP(0) as
/// on a CPU without it (SDM Vol. 2B, RDMSR/WRMSR).
pub fn msr(
    regs: &mut GuestRegs,
    msrs: &mut VirtualMsrs,
    irq: &mut dyn InterruptSource,
    write: bool,
    tsc: u64,
) -> Emulated {
    let msr = regs.msr_index();
    let ok = if write {
        match irq.write_msr(msr, regs.msr_value(), tsc) {
            Some(result) => result.is_ok(),
            None => msrs.write(msr, regs.msr_value()).is_ok(),
        }
    } else {
        irq.read_msr(msr)
            .or_else(|| msrs.read(msr, tsc))
            .map(|value| regs.set_msr_value(value))
            .is_some()
    };
    if ok {
        Emulated::Done
    } else {
        msr_fault(msr, write)
    }
}

/// The #GP(0) of an RDMSR/WRMSR the vCPU refuses (logged at debug level).
pub fn msr_fault(msr: u32, write: bool) -> Emulated {
    log::debug!(
        "guest {} MSR {msr:#x}: #GP",
        if write { "wrote" } else { "read" }
    );
    Emulated::Fault(Exception::GP0)
}

/// The low `width` bytes of a 32-bit port value.
pub fn io_mask(width: Width) -> u32 {
    if width >= 4 {
        u32::MAX
    } else {
        (1 << (8 * width)) - 1
    }
}

/// A non-string IN or OUT, already moved past: OUT becomes [`Exit::IoOut`] with the low
/// `width` bytes of EAX; IN becomes [`Exit::IoIn`] and is remembered in `pending` until
/// [`PendingIn::complete`].
pub fn port_io(
    regs: &GuestRegs,
    pending: &mut PendingIn,
    port: u16,
    width: Width,
    input: bool,
) -> Exit {
    if input {
        pending.width = Some(width);
        Exit::IoIn { port, width }
    } else {
        Exit::IoOut {
            port,
            width,
            value: regs.rax as u32 & io_mask(width),
        }
    }
}

/// An IN waiting for the value the monitor reads from the port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingIn {
    width: Option<Width>,
}

impl PendingIn {
    /// The pending IN of a saved state (`None`: nothing pending).
    pub fn with_width(width: Option<Width>) -> Self {
        Self { width }
    }

    /// The width of the pending IN, if any (for saving the state).
    pub fn width(&self) -> Option<Width> {
        self.width
    }

    /// Completes the pending IN, if any, with `value`: IN AL/AX leaves the upper bits of RAX,
    /// IN EAX zero-extends (SDM Vol. 2A, IN; APM Vol. 3, IN).
    pub fn complete(&mut self, regs: &mut GuestRegs, value: u32) {
        if let Some(width) = self.width.take() {
            let mask = u64::from(io_mask(width));
            let keep = if width >= 4 { 0 } else { regs.rax & !mask };
            regs.rax = keep | (u64::from(value) & mask);
        }
    }
}

impl GuestRegs {
    /// The MSR index of RDMSR/WRMSR: ECX.
    pub fn msr_index(&self) -> u32 {
        self.rcx as u32
    }

    /// The value WRMSR writes: EDX:EAX.
    pub fn msr_value(&self) -> u64 {
        (self.rdx << 32) | (self.rax & 0xFFFF_FFFF)
    }

    /// Sets EDX:EAX to what RDMSR read (upper halves of RAX and RDX zeroed).
    pub fn set_msr_value(&mut self, value: u64) {
        self.rax = value & 0xFFFF_FFFF;
        self.rdx = value >> 32;
    }

    /// Sets EAX, EBX, ECX, EDX to a CPUID answer (upper halves zeroed).
    pub fn set_cpuid(&mut self, r: cpuid::Regs) {
        self.rax = u64::from(r.eax);
        self.rbx = u64::from(r.ebx);
        self.rcx = u64::from(r.ecx);
        self.rdx = u64::from(r.edx);
    }

    /// General register number `n` as instructions encode it (0 RAX, 1 RCX, 2 RDX, 3 RBX,
    /// 4 RSP, 5 RBP, 6 RSI, 7 RDI, 8-15 R8-R15; SDM Vol. 2A, Table 2-2); RSP is not kept here,
    /// so the caller passes it.
    pub fn by_number(&self, n: u8, rsp: u64) -> u64 {
        match n & 0xF {
            0 => self.rax,
            1 => self.rcx,
            2 => self.rdx,
            3 => self.rbx,
            4 => rsp,
            5 => self.rbp,
            6 => self.rsi,
            7 => self.rdi,
            8 => self.r8,
            9 => self.r9,
            10 => self.r10,
            11 => self.r11,
            12 => self.r12,
            13 => self.r13,
            14 => self.r14,
            _ => self.r15,
        }
    }

    /// General register number `n` (numbered as in [`GuestRegs::by_number`]) to write; `None`
    /// for RSP (4), which the back end keeps in its control structure.
    pub fn by_number_mut(&mut self, n: u8) -> Option<&mut u64> {
        Some(match n & 0xF {
            0 => &mut self.rax,
            1 => &mut self.rcx,
            2 => &mut self.rdx,
            3 => &mut self.rbx,
            4 => return None,
            5 => &mut self.rbp,
            6 => &mut self.rsi,
            7 => &mut self.rdi,
            8 => &mut self.r8,
            9 => &mut self.r9,
            10 => &mut self.r10,
            11 => &mut self.r11,
            12 => &mut self.r12,
            13 => &mut self.r13,
            14 => &mut self.r14,
            _ => &mut self.r15,
        })
    }

    /// Writes the general registers (not RSP, RIP or CR2: those are in the back end's
    /// control structure) as four lines of a vCPU dump.
    pub fn dump(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        writeln!(
            out,
            "RAX={:#018x} RBX={:#018x} RCX={:#018x} RDX={:#018x}",
            self.rax, self.rbx, self.rcx, self.rdx
        )?;
        writeln!(
            out,
            "RSI={:#018x} RDI={:#018x} RBP={:#018x}",
            self.rsi, self.rdi, self.rbp
        )?;
        writeln!(
            out,
            "R8 ={:#018x} R9 ={:#018x} R10={:#018x} R11={:#018x}",
            self.r8, self.r9, self.r10, self.r11
        )?;
        writeln!(
            out,
            "R12={:#018x} R13={:#018x} R14={:#018x} R15={:#018x}",
            self.r12, self.r13, self.r14, self.r15
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmm::devices::lapic::MsrFault;
    use crate::vmm::msr::PAT;
    use crate::vmm::vcpu::NoInterrupts;
    use std::string::String;

    #[test]
    fn registers_by_number_write_what_they_read_except_rsp() {
        let mut regs = GuestRegs::default();
        for n in (0..16).filter(|&n| n != 4) {
            *regs.by_number_mut(n).expect("not RSP") = 0x100 + u64::from(n);
        }
        for n in (0..16).filter(|&n| n != 4) {
            assert_eq!(regs.by_number(n, 0), 0x100 + u64::from(n), "register {n}");
        }
        assert!(regs.by_number_mut(4).is_none(), "RSP is the back end's");
        assert_eq!(regs.by_number(4, 0x1234), 0x1234);
    }

    #[test]
    fn the_local_apics_msrs_go_to_the_interrupt_controller() {
        use crate::vmm::devices::interrupts::Interrupts;
        use crate::vmm::devices::lapic::{DEFAULT_BASE, LapicConfig};
        use crate::vmm::msr::{APIC_BASE, TSC_DEADLINE};

        /// The fabric at guest time 0 with a 1 GHz TSC.
        struct Fabric(Interrupts);
        impl InterruptSource for Fabric {
            fn pending(&mut self) -> Option<u8> {
                self.0.pending(0)
            }
            fn acknowledge(&mut self) -> Option<u8> {
                self.0.acknowledge(0)
            }
            fn read_msr(&mut self, index: u32) -> Option<u64> {
                match index {
                    APIC_BASE => Some(self.0.lapic.apic_base_msr()),
                    TSC_DEADLINE => Some(self.0.lapic.tsc_deadline()),
                    _ => None,
                }
            }
            fn write_msr(&mut self, index: u32, v: u64, _: u64) -> Option<Result<(), MsrFault>> {
                (index == APIC_BASE).then(|| self.0.lapic.write_apic_base_msr(v, 0))
            }
            fn cr8(&self) -> u64 {
                self.0.lapic.cr8()
            }
            fn set_cr8(&mut self, value: u64) {
                self.0.lapic.set_cr8(value);
            }
        }
        let mut irq = Fabric(Interrupts::new(LapicConfig {
            apic_id: 0,
            timer_hz: 1,
            tsc_hz: 1,
        }));
        let mut msrs = VirtualMsrs::new(0);
        let mut regs = GuestRegs {
            rcx: u64::from(APIC_BASE),
            ..GuestRegs::default()
        };
        assert_eq!(
            msr(&mut regs, &mut msrs, &mut irq, false, 0),
            Emulated::Done
        );
        assert_eq!((regs.rdx, regs.rax), (0, DEFAULT_BASE | 0x900));
        // Global disable, which the virtual MSR file alone would refuse.
        regs.rax = DEFAULT_BASE | 0x100;
        assert_eq!(msr(&mut regs, &mut msrs, &mut irq, true, 0), Emulated::Done);
        assert_eq!(irq.0.lapic.mmio_base(), None);
        regs.rax = 0xFEC0_0900;
        assert_eq!(
            msr(&mut regs, &mut msrs, &mut irq, true, 0),
            Emulated::Fault(Exception::GP0),
            "the local APIC's refusal is a #GP"
        );
        regs.rcx = u64::from(TSC_DEADLINE);
        assert_eq!(
            msr(&mut regs, &mut msrs, &mut irq, false, 0),
            Emulated::Done
        );
        assert_eq!(
            msr(&mut regs, &mut msrs, &mut NoInterrupts, false, 0),
            Emulated::Fault(Exception::GP0),
            "the MSR file has no TSC deadline"
        );
    }

    #[test]
    fn rdmsr_splits_into_edx_eax_and_wrmsr_joins_them() {
        let mut msrs = VirtualMsrs::new(0);
        let mut regs = GuestRegs {
            rax: 0xFFFF_FFFF_0000_0006,
            rcx: u64::from(PAT) | 0xAAAA_0000_0000_0000,
            rdx: 0x0000_0006,
            ..GuestRegs::default()
        };
        // WRMSR takes EAX and EDX only (the upper half of RAX is ignored).
        assert_eq!(
            msr(&mut regs, &mut msrs, &mut NoInterrupts, true, 0),
            Emulated::Done
        );
        assert_eq!(msrs.read(PAT, 0), Some(0x0000_0006_0000_0006));
        regs.rax = u64::MAX;
        regs.rdx = u64::MAX;
        assert_eq!(
            msr(&mut regs, &mut msrs, &mut NoInterrupts, false, 0),
            Emulated::Done
        );
        assert_eq!((regs.rax, regs.rdx), (6, 6), "upper halves zeroed");
    }

    #[test]
    fn unknown_msr_faults_and_leaves_registers() {
        let mut msrs = VirtualMsrs::new(0);
        let mut regs = GuestRegs {
            rax: 1,
            rcx: 0xDEAD,
            rdx: 2,
            ..GuestRegs::default()
        };
        let before = regs;
        for write in [false, true] {
            assert_eq!(
                msr(&mut regs, &mut msrs, &mut NoInterrupts, write, 0),
                Emulated::Fault(Exception::GP0)
            );
            assert_eq!(regs, before);
        }
        // The TSC reads the caller's value.
        regs.rcx = u64::from(crate::vmm::msr::TSC);
        assert_eq!(
            msr(
                &mut regs,
                &mut msrs,
                &mut NoInterrupts,
                false,
                0x1_2345_6789
            ),
            Emulated::Done
        );
        assert_eq!((regs.rdx, regs.rax), (1, 0x2345_6789));
    }

    #[test]
    fn cpuid_answers_the_hypervisor_leaf() {
        let mut regs = GuestRegs {
            rax: 0xFFFF_FFFF_4000_0000,
            rcx: 0,
            ..GuestRegs::default()
        };
        assert_eq!(cpuid(&mut regs, 0, 0), Emulated::Done);
        let mut signature = [0u8; 12];
        for (i, r) in [regs.rbx, regs.rcx, regs.rdx].into_iter().enumerate() {
            signature[4 * i..4 * i + 4].copy_from_slice(&(r as u32).to_le_bytes());
            assert_eq!(r >> 32, 0);
        }
        assert_eq!(&signature, cpuid::SIGNATURE);
        assert_eq!(regs.rax, u64::from(cpuid::MAX_HYPERVISOR_LEAF));
    }

    #[test]
    fn out_masks_to_the_width() {
        let regs = GuestRegs {
            rax: 0x1234_5678_9ABC_DEF0,
            ..GuestRegs::default()
        };
        let mut pending = PendingIn::default();
        for (width, value) in [(1, 0xF0), (2, 0xDEF0), (4, 0x9ABC_DEF0)] {
            assert_eq!(
                port_io(&regs, &mut pending, 0x3F8, width, false),
                Exit::IoOut {
                    port: 0x3F8,
                    width,
                    value
                }
            );
        }
        assert_eq!(pending, PendingIn::default(), "OUT leaves nothing pending");
    }

    #[test]
    fn in_merges_by_width_once() {
        for (width, rax) in [
            (1, 0x1234_5678_9ABC_DE55),
            (2, 0x1234_5678_9ABC_5555),
            (4, 0x0000_0000_5555_5555),
        ] {
            let mut regs = GuestRegs {
                rax: 0x1234_5678_9ABC_DEF0,
                ..GuestRegs::default()
            };
            let mut pending = PendingIn::default();
            assert_eq!(
                port_io(&regs, &mut pending, 0x60, width, true),
                Exit::IoIn { port: 0x60, width }
            );
            pending.complete(&mut regs, 0x5555_5555);
            assert_eq!(regs.rax, rax, "width {width}");
            pending.complete(&mut regs, 0);
            assert_eq!(regs.rax, rax, "a second completion does nothing");
        }
    }

    #[test]
    fn registers_by_number_follow_the_encoding() {
        let regs = GuestRegs {
            rax: 0,
            rcx: 1,
            rdx: 2,
            rbx: 3,
            rbp: 5,
            rsi: 6,
            rdi: 7,
            r8: 8,
            r9: 9,
            r10: 10,
            r11: 11,
            r12: 12,
            r13: 13,
            r14: 14,
            r15: 15,
            ..GuestRegs::default()
        };
        for n in 0..16 {
            assert_eq!(regs.by_number(n, 4), u64::from(n));
        }
    }

    #[test]
    fn dump_names_every_register() {
        let mut out = String::new();
        GuestRegs::default().dump(&mut out).unwrap();
        for name in [
            "RAX=", "RBX=", "RCX=", "RDX=", "RSI=", "RDI=", "RBP=", "R8 =", "R9 =", "R10=", "R11=",
            "R12=", "R13=", "R14=", "R15=",
        ] {
            assert!(out.contains(name), "{name} missing from {out}");
        }
    }
}
