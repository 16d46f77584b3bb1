// SPDX-License-Identifier: MIT OR Apache-2.0
//! An AMD-V virtual CPU: the [`Vcpu`] back end for AMD processors (AMD64 APM Vol. 2, chapter
//! 15). Exit codes: APM Vol. 2, appendix C.
//!
//! Like the VT-x back end it absorbs CPUID, MSR accesses, XSETBV and interrupt windows (SVM's
//! virtual-interrupt intercept) and returns everything else as an [`Exit`]. External
//! interrupts are delivered as virtual interrupts, not through EVENTINJ (see `svm::virq`).
//! Both hypercall instructions work: VMMCALL, and Intel's VMCALL, which raises #UD on AMD and
//! is recognised by decoding the instruction at the #UD. Unlike VT-x, SVM forces no
//! control-register bits, so CR0/CR4 are not intercepted; EFER is, because the guest's
//! copy must keep SVME set (APM Vol. 2, 15.5.1) while the guest must not see it.

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use super::caps::SvmCaps;
use super::npt::{NptFormat, ncr3};
use super::virq::AfterHlt;
use super::vmcb::{
    EventInfo, ExitCode, IOPM_SIZE, InterceptMisc1, InterceptMisc2, InterruptState, IoioInfo,
    MSR_EXIT_WRITE, MSRPM_SIZE, NestedControl, NpfInfo, Segment, Vmcb, int_ctl, msrpm_position,
};
use super::{invalidate, virq};
use crate::arch::x86_64::{instr, msr};
use crate::mm::OwnedFrames;
use crate::vmm::cpu_state::{self, CpuState, Unswitched};
use crate::vmm::decode::cache::DecodeCache;
use crate::vmm::decode::{Decoded, GuestRead, Instruction};
use crate::vmm::emulate::{self, Emulated, Exception, PendingIn};
use crate::vmm::guest_mem::GuestMemory;
use crate::vmm::msr::{self as vmsr, VirtualMsrs};
use crate::vmm::vcpu::{
    BareLoop, Exit, GuestRegs, GuestStart, InstructionContext, InterruptSource, Vcpu, VcpuError,
};

crate::vmm::vcpu::entry_asm!("entry.S");

/// Saving and restoring [`CpuState`]s.
mod checkpoint;
/// The instruction context and completion of emulated MMIO accesses.
mod instruction;

unsafe extern "C" {
    fn svm_enter(regs: *mut GuestRegs, guest_vmcb: u64, host_vmcb: u64) -> u64;
}

/// The ASID every guest runs under (0 is the host's); see `invalidate`.
const GUEST_ASID: u32 = 1;
/// EFER bits a guest may set: SCE, LME, LMA (the CPU's), NXE.
const EFER_GUEST_BITS: u64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11);
/// MSRs whose guest values VMRUN/VMLOAD/VMSAVE switch (VMCB save area, APM Vol. 2, 15.5.2):
/// FS/GS base, SYSENTER_*, and STAR, LSTAR, CSTAR, SFMASK, KERNEL_GS_BASE, accessed without
/// exits. EFER is intercepted (see the module doc); TSC_AUX, which the VMCB lacks, is emulated.
const PASS_THROUGH_MSRS: [u32; 10] = [
    0xC000_0100,
    0xC000_0101,
    0x174,
    0x175,
    0x176,
    0xC000_0081,
    0xC000_0082,
    0xC000_0083,
    0xC000_0084,
    0xC000_0102,
];

/// Set once a vCPU found that this machine's CPU runs guests past pending virtual interrupts
/// (`svm::virq`): later vCPUs inject external interrupts through EVENTINJ from the start.
static VIRQ_IGNORED: AtomicBool = AtomicBool::new(false);

/// An AMD-V vCPU: its VMCB, the host save page for VMSAVE/VMLOAD, the permission maps.
pub struct SvmVcpu {
    vmcb: OwnedFrames,
    host_vmcb: OwnedFrames,
    iopm: OwnedFrames,
    msrpm: OwnedFrames,
    regs: GuestRegs,
    caps: SvmCaps,
    msrs: VirtualMsrs,
    /// An `in` waiting for its value.
    pending_in: PendingIn,
    index: u32,
    /// x87/SSE, DR0-DR3: live in the hardware, or staged for the next VMRUN.
    unswitched: Unswitched,
    /// In HLT, waiting for an interrupt (`cpu_state::ExtendedState::halted`).
    halted: bool,
    /// The external interrupt the local APIC model acknowledged and the guest has not taken
    /// yet: it waits in V_IRQ (`svm::virq`), or for the guest to take an EVENTINJ.
    in_flight: Option<u8>,
    /// External interrupts go through EVENTINJ: the CPU ran this or an earlier guest past a
    /// pending virtual interrupt (Bochs 2.7, `svm::virq`).
    eventinj_interrupts: bool,
    /// Recent decodes of intercepted instructions, for CPUs without next-RIP.
    decodes: DecodeCache<Decoded>,
}

fn alloc_filled(frames: usize, byte: u8) -> Result<OwnedFrames, VcpuError> {
    OwnedFrames::filled((frames / 4096) as u64, byte).ok_or(VcpuError::OutOfMemory)
}

fn segment(s: &crate::vmm::vcpu::Segment) -> Segment {
    Segment::from_access_rights(s.selector, s.base, s.limit, s.rights)
}

impl SvmVcpu {
    /// A vCPU of the guest whose memory is `mem`, starting as `start`.
    pub fn new(
        index: u32,
        mem: &GuestMemory<NptFormat>,
        start: GuestStart,
    ) -> Result<Self, VcpuError> {
        let caps = SvmCaps::read().map_err(|_| VcpuError::NotEnabled)?;
        let vmcb = alloc_filled(size_of::<Vmcb>(), 0)?;
        let host_vmcb = alloc_filled(size_of::<Vmcb>(), 0)?;
        let iopm = alloc_filled(IOPM_SIZE, 0xFF)?;
        let msrpm = alloc_filled(MSRPM_SIZE, 0xFF)?;
        for m in PASS_THROUGH_MSRS {
            if let Some((byte, bit)) = msrpm_position(m) {
                let p = msrpm.ptr(byte);
                // SAFETY: inside this vCPU's MSR permission map; clears the read and write bits.
                unsafe { p.write_volatile(p.read_volatile() & !(0b11 << bit)) };
            }
        }
        let mut vcpu = Self {
            vmcb,
            host_vmcb,
            iopm,
            msrpm,
            regs: GuestRegs::default(),
            caps,
            msrs: VirtualMsrs::new(index),
            pending_in: PendingIn::default(),
            index,
            unswitched: Unswitched::new(),
            halted: false,
            in_flight: None,
            eventinj_interrupts: VIRQ_IGNORED.load(Ordering::Relaxed),
            decodes: DecodeCache::default(),
        };
        let root = mem.table_root();
        let (iopm, msrpm) = (vcpu.iopm.phys(), vcpu.msrpm.phys());
        let v = vcpu.vmcb();
        v.control.intercept_misc1 = InterceptMisc1::INTR
            | InterceptMisc1::NMI
            | InterceptMisc1::CPUID
            | InterceptMisc1::HLT
            | InterceptMisc1::IOIO_PROT
            | InterceptMisc1::MSR_PROT
            | InterceptMisc1::SHUTDOWN;
        // VMRUN must be intercepted (APM Vol. 2, 15.5.1); the other SVM instructions and
        // XSETBV are not offered to guests (#UD).
        v.control.intercept_misc2 = InterceptMisc2::VMRUN
            | InterceptMisc2::VMMCALL
            | InterceptMisc2::VMLOAD
            | InterceptMisc2::VMSAVE
            | InterceptMisc2::STGI
            | InterceptMisc2::CLGI
            | InterceptMisc2::SKINIT
            | InterceptMisc2::XSETBV
            // TSC_AUX is not in the VMCB: RDTSCP is emulated with the guest's.
            | InterceptMisc2::RDTSCP;
        // #UD: a guest written for Intel uses VMCALL, which AMD CPUs do not know; Castor
        // accepts it as a hypercall and reflects every other #UD back (see `step`).
        v.control.intercept_exception(Exception::UD.vector);
        v.control.iopm_base_pa = iopm;
        v.control.msrpm_base_pa = msrpm;
        v.control.guest_asid = GUEST_ASID;
        v.control.int_ctl = int_ctl::V_INTR_MASKING;
        v.control.nested_control = NestedControl::NP_ENABLE;
        v.control.n_cr3 = ncr3(root);
        invalidate::new_guest(v, &caps);
        let init = start.initial_state();
        v.save.cs = segment(&init.code);
        for s in [
            &mut v.save.ds,
            &mut v.save.es,
            &mut v.save.fs,
            &mut v.save.gs,
            &mut v.save.ss,
        ] {
            *s = segment(&init.data);
        }
        v.save.tr = Segment::from_access_rights(0, 0, 0xFFFF, 0x8B);
        v.save.ldtr = Segment::from_access_rights(0, 0, 0, 0x82);
        v.save.gdtr = Segment {
            selector: 0,
            attrib: 0,
            limit: 0xFFFF,
            base: 0,
        };
        v.save.idtr = Segment {
            selector: 0,
            attrib: 0,
            limit: 0xFFFF,
            base: 0,
        };
        v.save.cr0 = init.cr0;
        v.save.cr3 = init.cr3;
        v.save.cr4 = init.cr4;
        v.save.efer = init.efer | msr::EFER_SVME;
        v.save.rip = init.rip;
        v.save.rflags = 0x2;
        v.save.dr7 = 0x400;
        v.save.dr6 = 0xFFFF_0FF0;
        v.save.g_pat = 0x0007_0406_0007_0406;
        v.save.cpl = 0;
        Ok(vcpu)
    }

    fn vmcb(&mut self) -> &mut Vmcb {
        // SAFETY: `self.vmcb` is a zeroed-then-initialized, 4 KiB aligned frame owned by this
        // vCPU and identity mapped; `&mut self` makes this the only reference in Rust, and the
        // CPU only touches it inside `svm_enter`, called with `&mut self` too.
        unsafe { &mut *self.vmcb.ptr(0).cast::<Vmcb>() }
    }

    /// Guest RIP after the intercepted instruction: the CPU's next-RIP where it offers one
    /// (NRIPS, APM Vol. 2, 15.7.1), else found by reading the instruction at CS:RIP through the
    /// guest's page tables and decoding its length (prefixes included). `None` if it cannot be
    /// read or is not an instruction SVM intercepts.
    fn next_rip(&mut self, mem: &mut dyn GuestRead) -> Option<u64> {
        let nrips = self.caps.has_nrips();
        let next = self.vmcb().control.next_rip;
        if nrips && next != 0 {
            return Some(next);
        }
        self.decode_at_rip(mem).map(|(_, next)| next)
    }

    /// The instruction at the guest's CS:RIP, read through its page tables, and the RIP after
    /// it.
    fn decode_at_rip(&mut self, mem: &mut dyn GuestRead) -> Option<(Instruction, u64)> {
        let c = self.context();
        let rip = self.vmcb().save.rip;
        let decoded = self
            .decodes
            .fetch_and_decode(&c.paging, mem, c.linear_ip, c.mode)
            .ok()?;
        Some((decoded.instruction, c.mode.next_ip(rip, decoded.len)))
    }

    /// Moves the guest past the intercepted instruction (ending any interrupt shadow); false if
    /// its length could not be found.
    fn skip(&mut self, mem: &mut dyn GuestRead) -> bool {
        let Some(next) = self.next_rip(mem) else {
            return false;
        };
        let v = self.vmcb();
        v.save.rip = next;
        v.control.int_state.remove(InterruptState::INTERRUPT_SHADOW);
        true
    }

    fn inject_exception(&mut self, e: Exception) {
        self.vmcb().control.event_inj = EventInfo::exception(e.vector, e.error);
    }

    /// Carries out what an emulated instruction asks: RIP past it, or its exception. False if
    /// the instruction's length could not be found.
    fn finish(&mut self, emulated: Emulated, mem: &mut dyn GuestRead) -> bool {
        match emulated {
            Emulated::Done => self.skip(mem),
            Emulated::Fault(e) => {
                self.inject_exception(e);
                true
            }
        }
    }

    /// Hands the controller's pending interrupt to the guest if it can take it now: as a
    /// virtual interrupt (`svm::virq`), or through EVENTINJ on a CPU that ignores those at
    /// VMRUN. Otherwise requests a virtual interrupt with the VINTR intercept, so the CPU
    /// exits as soon as the guest can (APM Vol. 2, 15.21). An interrupt in flight goes first:
    /// it waits in V_IRQ, or for the guest to be able to take an injected one.
    fn deliver_interrupt(&mut self, irq: &mut dyn InterruptSource) {
        let eventinj = self.eventinj_interrupts;
        let vector = match self.in_flight {
            Some(_) if !eventinj => return,
            Some(vector) => Some(vector),
            None if irq.pending().is_none() => return,
            None => None,
        };
        let v = self.vmcb();
        let can = v.save.rflags & (1 << 9) != 0
            && !v
                .control
                .int_state
                .contains(InterruptState::INTERRUPT_SHADOW)
            && !v.control.event_inj.valid();
        if !can {
            v.control.request_interrupt_window();
            return;
        }
        v.control.clear_interrupt_window();
        self.in_flight = match vector.or_else(|| irq.acknowledge()) {
            Some(vector) if eventinj => {
                self.vmcb().control.event_inj = EventInfo::external(vector);
                None
            }
            Some(vector) => {
                self.vmcb().control.hand_over_interrupt(vector);
                Some(vector)
            }
            None => None,
        };
    }

    fn enter(&mut self) {
        let (vmcb, host) = (self.vmcb.phys(), self.host_vmcb.phys());
        let rax = self.regs.rax;
        self.vmcb().save.rax = rax;
        self.unswitched.load_staged();
        // SAFETY: the VMCB is fully initialized with VMRUN intercepted, guest EFER.SVME set and
        // nested paging over this guest's own RAM; EFER.SVME and VM_HSAVE_PA are set on this
        // CPU (vCPUs do not migrate); `host` is this vCPU's page for the host's VMSAVE state;
        // `regs` outlives the call.
        unsafe { svm_enter(&mut self.regs, vmcb, host) };
        let rax = self.vmcb().save.rax;
        self.regs.rax = rax;
        let (in_flight, eventinj) = (self.in_flight, self.eventinj_interrupts);
        let v = self.vmcb();
        invalidate::done(v);
        // An event whose delivery the exit interrupted is delivered again: an external
        // interrupt through V_IRQ, an exception or NMI injected, INTn, INT3 and INTO raised
        // again by executing the instruction once more (APM Vol. 2, 15.7.2;
        // `EventInfo::reinjection`). With EVENTINJ, an interrupt in flight waits for
        // `deliver_interrupt` to inject it whatever V_IRQ (then only a window request) says,
        // and there is nothing left to detect.
        let (v_irq, host_interrupt) = match eventinj {
            true => (true, true),
            false => (
                v.control.v_irq(),
                matches!(v.control.exit_code, ExitCode::INTR | ExitCode::NMI),
            ),
        };
        let after = virq::after_exit(in_flight, v.control.exit_int_info, v_irq, host_interrupt);
        v.control.event_inj = after.reinject;
        if after.ignored && !self.eventinj_interrupts {
            log::info!(
                "vcpu {}: the CPU ran the guest past a pending virtual interrupt; external \
                 interrupts go through EVENTINJ",
                self.index
            );
            self.eventinj_interrupts = true;
            VIRQ_IGNORED.store(true, Ordering::Relaxed);
        }
        let eventinj = self.eventinj_interrupts;
        let v = self.vmcb();
        self.in_flight = match after.in_flight {
            // Its delivery began: injected again at once, as any interrupted event.
            Some(vector) if eventinj && after.redeliver => {
                v.control.event_inj = EventInfo::external(vector);
                None
            }
            // Injected at the next VMRUN the guest can take it (`deliver_interrupt`).
            Some(vector) if eventinj => {
                v.control.clear_virtual_interrupt();
                Some(vector)
            }
            Some(vector) => {
                v.control.hand_over_interrupt(vector);
                Some(vector)
            }
            None => None,
        };
    }

    /// RDMSR/WRMSR: EFER is this back end's (the guest's copy keeps SVME hidden and set, see
    /// the module doc); every other MSR goes to the shared emulation (the local APIC's to
    /// `irq`).
    fn emulate_msr(&mut self, write: bool, irq: &mut dyn InterruptSource) -> Emulated {
        let host_tsc = instr::rdtsc();
        if write && self.regs.msr_index() == vmsr::TSC {
            // The guest sets its TSC: from now on it reads on from this value.
            let offset = cpu_state::tsc_offset(self.regs.msr_value(), host_tsc);
            self.vmcb().control.tsc_offset = offset;
            return Emulated::Done;
        }
        let tsc = cpu_state::guest_tsc(host_tsc, self.vmcb().control.tsc_offset);
        let regs = &mut self.regs;
        if regs.msr_index() != msr::IA32_EFER {
            return emulate::msr(regs, &mut self.msrs, irq, write, tsc);
        }
        let value = regs.msr_value();
        if !write {
            let efer = self.vmcb().save.efer & !msr::EFER_SVME;
            self.regs.set_msr_value(efer);
        } else if value & !EFER_GUEST_BITS == 0 {
            self.vmcb().save.efer = value | msr::EFER_SVME;
        } else {
            return emulate::msr_fault(msr::IA32_EFER, write);
        }
        Emulated::Done
    }

    /// One VMRUN, with a pending interrupt delivered first, and the handling of its exit.
    /// `None`: absorbed, run again.
    ///
    /// The guest's CR8 is V_TPR (with V_INTR_MASKING, APM Vol. 2, 15.21.1): loaded from the
    /// local APIC's TPR before the VMRUN and, if the guest changed it, written back after.
    fn step(&mut self, irq: &mut dyn InterruptSource, mem: &mut dyn GuestRead) -> Option<Exit> {
        let cr8 = irq.cr8() as u8;
        self.vmcb().control.set_v_tpr(cr8);
        self.deliver_interrupt(irq);
        self.enter();
        let tpr = self.vmcb().control.v_tpr();
        if tpr != cr8 {
            irq.set_cr8(u64::from(tpr));
        }
        let v = self.vmcb();
        let (code, info1, info2) = (
            v.control.exit_code,
            v.control.exit_info1,
            v.control.exit_info2,
        );
        // An intercepted instruction whose length cannot be found stops the guest.
        let undecodable = Exit::Unhandled {
            code: code.0,
            info: info1,
        };
        match code {
            ExitCode::INTR | ExitCode::NMI => {
                // SVM leaves the interrupt pending in the local APIC: take it through the IDT.
                // SAFETY: the host IDT is loaded and handles every vector.
                unsafe { instr::take_pending_interrupts() };
                Some(Exit::HostInterrupt)
            }
            ExitCode::VINTR => {
                v.control.clear_interrupt_window();
                None
            }
            ExitCode::CPUID => {
                let emulated = emulate::cpuid(
                    &mut self.regs,
                    self.index,
                    crate::arch::x86_64::time::tsc_hz(),
                );
                (!self.finish(emulated, mem)).then_some(undecodable)
            }
            ExitCode::HLT => {
                if !self.skip(mem) {
                    return Some(undecodable);
                }
                let interrupts_on = self.vmcb().save.rflags & (1 << 9) != 0;
                match virq::after_hlt(interrupts_on, self.in_flight) {
                    AfterHlt::Wake => None,
                    AfterHlt::Halt => {
                        self.halted = true;
                        Some(Exit::Halt)
                    }
                    AfterHlt::Shutdown => Some(Exit::Shutdown),
                }
            }
            ExitCode::IOIO => {
                let io = IoioInfo::decode(info1);
                if io.string || io.size == 0 {
                    return Some(Exit::Unhandled {
                        code: code.0,
                        info: info1,
                    });
                }
                // EXITINFO2 is the RIP of the next instruction (APM Vol. 2, 15.10.2).
                v.save.rip = info2;
                v.control.int_state.remove(InterruptState::INTERRUPT_SHADOW);
                let (regs, pending) = (&self.regs, &mut self.pending_in);
                Some(emulate::port_io(regs, pending, io.port, io.size, io.input))
            }
            ExitCode::MSR => {
                let emulated = self.emulate_msr(info1 & MSR_EXIT_WRITE != 0, irq);
                (!self.finish(emulated, mem)).then_some(undecodable)
            }
            ExitCode::RDTSCP => {
                // EDX:EAX the guest's TSC, ECX its TSC_AUX (APM Vol. 3, RDTSCP).
                let tsc = cpu_state::guest_tsc(instr::rdtsc(), v.control.tsc_offset);
                let aux = self.msrs.read(vmsr::TSC_AUX, tsc).unwrap_or(0);
                self.regs.set_msr_value(tsc);
                self.regs.rcx = aux;
                (!self.skip(mem)).then_some(undecodable)
            }
            ExitCode::SHUTDOWN => Some(Exit::Shutdown),
            ExitCode::VMMCALL => Some(if self.skip(mem) {
                Exit::Hypercall
            } else {
                undecodable
            }),
            ExitCode::VMRUN
            | ExitCode::VMLOAD
            | ExitCode::VMSAVE
            | ExitCode::STGI
            | ExitCode::CLGI
            | ExitCode::SKINIT
            | ExitCode::XSETBV => {
                self.inject_exception(Exception::UD);
                None
            }
            ExitCode::NPF => {
                let fault = NpfInfo::decode(info1);
                if fault.contains(NpfInfo::RESERVED) {
                    Some(Exit::Unhandled {
                        code: code.0,
                        info: info2,
                    })
                } else {
                    Some(Exit::NestedPageFault {
                        gpa: info2,
                        write: fault.contains(NpfInfo::WRITE),
                        exec: fault.contains(NpfInfo::FETCH),
                        paging_structure: fault.contains(NpfInfo::GUEST_PAGE_TABLE),
                    })
                }
            }
            c if c == ExitCode::exception(Exception::UD.vector) => match self.decode_at_rip(mem) {
                Some((Instruction::Vmcall, next)) => {
                    let v = self.vmcb();
                    v.save.rip = next;
                    v.control.int_state.remove(InterruptState::INTERRUPT_SHADOW);
                    Some(Exit::Hypercall)
                }
                _ => {
                    self.inject_exception(Exception::UD);
                    None
                }
            },
            ExitCode::INVALID => Some(Exit::EntryFailed { code: code.0 }),
            _ => Some(Exit::Unhandled {
                code: code.0,
                info: info1,
            }),
        }
    }
}

impl Vcpu for SvmVcpu {
    fn run(&mut self, irq: &mut dyn InterruptSource, mem: &mut dyn GuestRead) -> Exit {
        if self.halted {
            // Still in HLT until an interrupt is pending (restored halted, or called again
            // without one).
            if irq.pending().is_none() && self.in_flight.is_none() {
                return Exit::Halt;
            }
            self.halted = false;
        }
        loop {
            if let Some(exit) = self.step(irq, mem) {
                return exit;
            }
        }
    }

    fn regs(&mut self) -> &mut GuestRegs {
        &mut self.regs
    }

    fn rip(&self) -> u64 {
        // SAFETY: as in `vmcb`; a shared read of the RIP field.
        unsafe { (*self.vmcb.ptr(0).cast::<Vmcb>()).save.rip }
    }

    fn complete_io_in(&mut self, value: u32) {
        self.pending_in.complete(&mut self.regs, value);
    }

    fn instruction_context(&mut self) -> Result<InstructionContext, VcpuError> {
        Ok(self.context())
    }

    fn complete_instruction(
        &mut self,
        rsp: u64,
        rflags: u64,
        advance: usize,
    ) -> Result<(), VcpuError> {
        self.complete(rsp, rflags, advance);
        Ok(())
    }

    fn set_time_slice(&mut self, _ticks: u32) -> bool {
        false
    }

    /// Requests a flush of this guest's translations with the next VMRUN
    /// (`invalidate::after_npt_change`).
    fn flush_nested_tlb(&mut self) {
        let caps = self.caps;
        invalidate::after_npt_change(self.vmcb(), &caps);
    }

    /// AMD-V has no hardware log of dirtied pages: the nested table's dirty flags are walked.
    fn enable_dirty_log(&mut self) -> bool {
        false
    }

    fn drain_dirty_log(&mut self, _out: &mut alloc::vec::Vec<u64>) -> bool {
        false
    }

    fn dump(&mut self, out: &mut dyn fmt::Write) -> fmt::Result {
        let r = self.regs;
        let index = self.index;
        let v = self.vmcb();
        writeln!(
            out,
            "vcpu {index} (AMD-V) RIP={:#x} exit code {} ({:#x}) info1={:#x} info2={:#x}",
            v.save.rip,
            v.control.exit_code.name(),
            v.control.exit_code.0,
            v.control.exit_info1,
            v.control.exit_info2
        )?;
        writeln!(
            out,
            "RSP={:#018x} RFLAGS={:#x} CR0={:#x} CR3={:#x} CR4={:#x} EFER={:#x}",
            v.save.rsp, v.save.rflags, v.save.cr0, v.save.cr3, v.save.cr4, v.save.efer
        )?;
        writeln!(
            out,
            "CS base={:#x} attrib={:#x} CR2={:#x}",
            v.save.cs.base, v.save.cs.attrib, v.save.cr2
        )?;
        r.dump(out)
    }

    fn save_state(&mut self) -> CpuState {
        self.try_save_state().unwrap_or_else(|e| {
            log::error!("vcpu {}: state not saved: {e}", self.index);
            CpuState::UNREADABLE
        })
    }

    fn restore_state(&mut self, state: &CpuState) -> Result<(), VcpuError> {
        self.try_restore_state(state)
    }
}

impl BareLoop for SvmVcpu {
    /// VMMCALL (or VMCALL, as #UD) loop: VMRUN, exit-code check, RIP advance.
    fn bare_hypercall_loop(&mut self, n: u64) -> Option<u64> {
        let start = instr::rdtsc();
        for _ in 0..n {
            self.enter();
            let v = self.vmcb();
            let code = v.control.exit_code;
            if code != ExitCode::VMMCALL && code != ExitCode::exception(Exception::UD.vector) {
                return None;
            }
            // The guest loops on VMMCALL or VMCALL (3 bytes; the latter arrives as #UD): the
            // least any monitor must do.
            v.save.rip = if v.control.next_rip != 0 {
                v.control.next_rip
            } else {
                v.save.rip + 3
            };
        }
        Some(instr::rdtsc() - start)
    }
}
