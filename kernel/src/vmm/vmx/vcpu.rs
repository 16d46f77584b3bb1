// SPDX-License-Identifier: MIT OR Apache-2.0
//! A VT-x virtual CPU: the [`Vcpu`] back end for Intel processors.
//!
//! Instruction-level exits (CPUID, RDMSR/WRMSR, MOV to CR0/CR4, XSETBV, interrupt windows) are
//! absorbed here; everything the generic monitor must see becomes an [`Exit`]. Exit reasons are
//! listed in Intel SDM Vol. 3D, appendix C; exit qualifications in Vol. 3C, 28.2.1.

use core::fmt;

use super::bitmaps::Bitmaps;
use super::caps::VmxCaps;
use super::ept::{EptFormat, eptp};
use super::exit_info::{self, Cr8};
use super::fields::{Control32, Control64, Guest32, GuestN, ReadOnly32, ReadOnly64, ReadOnlyN};
use super::invalidate;
use super::invept::{self, InveptType};
use super::msr_switch::MsrAreas;
use super::pml::PmlLog;
use super::setup::{self, Controls, PROC_INTERRUPT_WINDOW};
use super::vmcs::{LoadedVmcs, Vmcs};
use crate::arch::x86_64::instr;
use crate::arch::x86_64::instr::vmx::VmFail;
use crate::vmm::cpu_state::{self, CpuState, Unswitched};
use crate::vmm::decode::GuestRead;
use crate::vmm::emulate::{self, Emulated, Exception, PendingIn};
use crate::vmm::guest_mem::GuestMemory;
use crate::vmm::msr::{self, VirtualMsrs};
use crate::vmm::vcpu::{
    BareLoop, Exit, GuestRegs, GuestStart, InstructionContext, InterruptSource, Vcpu, VcpuError,
};

crate::vmm::vcpu::entry_asm!("entry.S");

/// Saving and restoring [`CpuState`]s.
mod checkpoint;
/// Control-register access exits.
mod control_regs;
/// The instruction context and completion of emulated MMIO accesses.
mod instruction;

unsafe extern "C" {
    fn vmx_enter(regs: *mut GuestRegs, launched: u64) -> u64;
    static vmx_exit: u8;
}

/// Basic exit reasons (SDM Vol. 3D, Table C-1).
mod reason {
    pub const EXCEPTION_OR_NMI: u16 = 0;
    pub const EXTERNAL_INTERRUPT: u16 = 1;
    pub const TRIPLE_FAULT: u16 = 2;
    pub const INTERRUPT_WINDOW: u16 = 7;
    pub const CPUID: u16 = 10;
    pub const HLT: u16 = 12;
    pub const VMCALL: u16 = 18;
    pub const CR_ACCESS: u16 = 28;
    pub const IO: u16 = 30;
    pub const RDMSR: u16 = 31;
    pub const WRMSR: u16 = 32;
    pub const EPT_VIOLATION: u16 = 48;
    pub const EPT_MISCONFIG: u16 = 49;
    pub const PREEMPTION_TIMER: u16 = 52;
    pub const XSETBV: u16 = 55;
    pub const PML_FULL: u16 = 62;
    /// VMX instructions in the guest: no nested virtualization, #UD.
    pub const VMX_INSTRUCTIONS: [u16; 9] = [19, 20, 21, 22, 23, 24, 25, 26, 27];

    /// Exits the execution of an instruction causes. They happen once the instruction runs,
    /// never while an event is being delivered through the IDT, so their IDT-vectoring
    /// information is never valid and need not be read (SDM Vol. 3C, 28.2.4).
    pub fn caused_by_instruction(basic: u16) -> bool {
        basic < 64 && BY_INSTRUCTION & (1 << basic) != 0
    }

    /// [`caused_by_instruction`] as a set of reasons, one test on every exit.
    const BY_INSTRUCTION: u64 = set_of(&VMX_INSTRUCTIONS)
        | set_of(&[CPUID, HLT, VMCALL, CR_ACCESS, IO, RDMSR, WRMSR, XSETBV]);

    /// The bit set of `reasons` (each below 64).
    const fn set_of(reasons: &[u16]) -> u64 {
        let mut set = 0u64;
        let mut i = 0;
        while i < reasons.len() {
            set |= 1 << reasons[i];
            i += 1;
        }
        set
    }
}

/// Interruption types for event injection (SDM Vol. 3C, 25.8.3).
const TYPE_EXTERNAL: u32 = 0;
const TYPE_HARDWARE_EXCEPTION: u32 = 3;
const VALID: u32 = 1 << 31;
const DELIVER_ERROR_CODE: u32 = 1 << 11;

/// A VT-x vCPU: its VMCS, and the rest of its state (split so the handlers can use both the
/// loaded VMCS and the context at once).
pub struct VmxVcpu {
    vmcs: Vmcs,
    context: Context,
}

/// Everything of a VT-x vCPU but its VMCS.
struct Context {
    regs: GuestRegs,
    caps: VmxCaps,
    controls: Controls,
    /// The I/O and MSR bitmaps the VMCS points at, held so they live as long as it does.
    _bitmaps: Bitmaps,
    launched: bool,
    msrs: VirtualMsrs,
    /// An `in` waiting for its value.
    pending_in: PendingIn,
    /// The guest's CR8 (its task priority), emulated: CR8 loads and stores exit.
    cr8: Cr8,
    /// Preemption-timer value reloaded after each expiry.
    preemption_slice: u32,
    rip: u64,
    instruction_len: u64,
    index: u32,
    /// The EPT pointer, for invalidations.
    eptp: u64,
    /// The INVEPT type this CPU supports ([`invept::invept_type`]).
    invept: InveptType,
    /// INVEPT before the next VM entry ([`Vcpu::flush_nested_tlb`]).
    flush_pending: bool,
    /// Page-modification log, once enabled ([`Vcpu::enable_dirty_log`]).
    pml: Option<PmlLog>,
    /// STAR, LSTAR, CSTAR, FMASK, KERNEL_GS_BASE, TSC_AUX switched on entry and exit.
    msr_areas: MsrAreas,
    /// x87/SSE, DR0-DR3, DR6: live in the hardware, or staged for the next entry.
    unswitched: Unswitched,
    /// In HLT, waiting for an interrupt (`cpu_state::ExtendedState::halted`).
    halted: bool,
}

fn fail(what: &'static str) -> impl Fn(VmFail) -> VcpuError {
    move |f| VcpuError::Hardware(what, f as u64)
}

impl VmxVcpu {
    /// A vCPU of the guest whose memory is `mem`, starting as `start`.
    pub fn new(
        index: u32,
        mem: &GuestMemory<EptFormat>,
        start: GuestStart,
    ) -> Result<Self, VcpuError> {
        let caps = VmxCaps::read().map_err(|_| VcpuError::NotEnabled)?;
        if !caps.has_ept() {
            return Err(VcpuError::MissingControls("EPT (4-level, write-back)", 0));
        }
        let invept = invept::invept_type(caps.ept_vpid).ok_or(VcpuError::MissingControls(
            "INVEPT single- or all-context (IA32_VMX_EPT_VPID_CAP bits 20, 25, 26)",
            (invept::CAP_INVEPT_BITS & !caps.ept_vpid) as u32,
        ))?;
        let controls = setup::controls(&caps)?;
        let bitmaps = Bitmaps::new().ok_or(VcpuError::OutOfMemory)?;
        let msr_areas = MsrAreas::new().ok_or(VcpuError::OutOfMemory)?;
        let mut vmcs = Vmcs::new(&caps).ok_or(VcpuError::OutOfMemory)?;
        let eptp = eptp(mem.table_root(), caps.has_ept_ad());
        {
            let mut v = vmcs.load().map_err(fail("VMPTRLD"))?;
            invalidate::new_ept(invept, eptp).map_err(fail("INVEPT"))?;
            setup::write_controls(&mut v, &controls, &bitmaps, &msr_areas, eptp)
                .map_err(fail("VMWRITE controls"))?;
            setup::write_host_state(&mut v, &raw const vmx_exit as u64)
                .map_err(fail("VMWRITE host state"))?;
            setup::write_guest_state(&mut v, &caps, start, &controls)
                .map_err(fail("VMWRITE guest state"))?;
        }
        Ok(Self {
            vmcs,
            context: Context {
                regs: GuestRegs::default(),
                caps,
                controls,
                _bitmaps: bitmaps,
                launched: false,
                msrs: VirtualMsrs::new(index),
                pending_in: PendingIn::default(),
                cr8: Cr8::default(),
                preemption_slice: setup::PREEMPTION_SLICE,
                rip: 0,
                instruction_len: 0,
                index,
                eptp,
                invept,
                flush_pending: false,
                pml: None,
                msr_areas,
                unswitched: Unswitched::new(),
                halted: false,
            },
        })
    }

    /// One VM entry, with a pending interrupt delivered first, and the handling of its exit.
    /// `Ok(None)`: absorbed, enter again. (Inlined, with [`Context::step`], into the one
    /// caller: every exit pays for the calls otherwise.)
    #[inline]
    fn step(&mut self, irq: &mut dyn InterruptSource) -> Result<Option<Exit>, VmFail> {
        if self.context.flush_pending {
            // On the CPU about to enter the guest (INVEPT affects only the executing CPU).
            invalidate::after_ept_change(self.context.invept, self.context.eptp)?;
            self.context.flush_pending = false;
        }
        let mut v = self.vmcs.load()?;
        // The mirror of the local APIC's task priority a checkpoint records (`control_regs`).
        self.context.cr8 = Cr8::of_tpr(irq.cr8());
        self.context.deliver_interrupt(&mut v, irq)?;
        self.context.step(&mut v, irq)
    }
}

impl Context {
    fn inject(
        v: &mut LoadedVmcs<'_>,
        vector: u8,
        kind: u32,
        error: Option<u32>,
    ) -> Result<(), VmFail> {
        let mut info = VALID | (kind << 8) | u32::from(vector);
        if let Some(code) = error {
            info |= DELIVER_ERROR_CODE;
            v.write(Control32::EntryExceptionErrorCode, code)?;
        }
        v.write(Control32::EntryInterruptionInfo, info)
    }

    fn inject_exception(v: &mut LoadedVmcs<'_>, e: Exception) -> Result<(), VmFail> {
        Self::inject(v, e.vector, TYPE_HARDWARE_EXCEPTION, e.error)
    }

    /// Carries out what an emulated instruction asks: RIP past it, or its exception.
    fn finish(&self, v: &mut LoadedVmcs<'_>, emulated: Emulated) -> Result<(), VmFail> {
        match emulated {
            Emulated::Done => self.advance(v),
            Emulated::Fault(e) => Self::inject_exception(v, e),
        }
    }

    /// Injects the controller's pending interrupt if the guest can take it now (RFLAGS.IF, no STI
    /// or MOV SS blocking, no event already being injected), acknowledging it only then; else
    /// asks for an interrupt-window exit, after which this runs again (SDM Vol. 3C, 25.6.2 and
    /// 27.6).
    fn deliver_interrupt(
        &mut self,
        v: &mut LoadedVmcs<'_>,
        irq: &mut dyn InterruptSource,
    ) -> Result<(), VmFail> {
        if irq.pending().is_none() {
            return Ok(());
        }
        let interrupts_on = v.read(GuestN::Rflags)? & (1 << 9) != 0;
        let blocked = v.read(Guest32::InterruptibilityState)? & 0b11 != 0;
        let busy = v.read(Control32::EntryInterruptionInfo)? & VALID != 0;
        if interrupts_on && !blocked && !busy {
            if let Some(vector) = irq.acknowledge() {
                Self::inject(v, vector, TYPE_EXTERNAL, None)?;
            }
            v.write(Control32::ProcBased, self.controls.proc)
        } else {
            v.write(
                Control32::ProcBased,
                self.controls.proc | PROC_INTERRUPT_WINDOW,
            )
        }
    }

    /// An event whose delivery the exit interrupted (IDT-vectoring information valid) must be
    /// injected again on the next entry (SDM Vol. 3C, 28.2.4 and 27.2.4), with its error code
    /// and, for software events, its instruction length.
    fn reinject_interrupted_event(v: &mut LoadedVmcs<'_>) -> Result<(), VmFail> {
        let info = v.read(ReadOnly32::IdtVectoringInfo)?;
        if info & VALID == 0 {
            return Ok(());
        }
        if info & DELIVER_ERROR_CODE != 0 {
            let code = v.read(ReadOnly32::IdtVectoringErrorCode)?;
            v.write(Control32::EntryExceptionErrorCode, code)?;
        }
        let kind = (info >> 8) & 7;
        if matches!(kind, 4..=6) {
            let len = v.read(ReadOnly32::ExitInstructionLength)?;
            v.write(Control32::EntryInstructionLength, len)?;
        }
        // Bit 12 is undefined in IDT-vectoring information and reserved on entry.
        v.write(Control32::EntryInterruptionInfo, info & !(1 << 12))
    }

    /// RIP past the instruction that exited, from the RIP and length read at the exit.
    fn advance(&self, v: &mut LoadedVmcs<'_>) -> Result<(), VmFail> {
        v.write(GuestN::Rip, self.rip + self.instruction_len)?;
        Self::end_interrupt_shadow(v)
    }

    /// Skipping an instruction ends STI / MOV SS blocking (SDM Vol. 3C, 25.4.2).
    fn end_interrupt_shadow(v: &mut LoadedVmcs<'_>) -> Result<(), VmFail> {
        let state = v.read(Guest32::InterruptibilityState)?;
        if state & 0b11 == 0 {
            return Ok(());
        }
        v.write(Guest32::InterruptibilityState, state & !0b11)
    }

    /// Enters the guest through the loaded VMCS and handles the exit; the local APIC's MSRs
    /// and CR8 go to `irq`.
    #[inline]
    fn step(
        &mut self,
        v: &mut LoadedVmcs<'_>,
        irq: &mut dyn InterruptSource,
    ) -> Result<Option<Exit>, VmFail> {
        let v = &mut *v;
        self.unswitched.load_staged();
        // SAFETY: the VMCS is current (`v`), fully initialized by `new`, its host state is this
        // CPU's (vCPUs do not migrate), and `regs` lives as long as the call.
        let code = unsafe { vmx_enter(&mut self.regs, u64::from(self.launched)) };
        if code != 0 {
            let error = v.read(ReadOnly32::VmInstructionError).unwrap_or(u32::MAX);
            return Ok(Some(Exit::EntryFailed {
                code: u64::from(error),
            }));
        }
        self.launched = true;
        let exit_reason = v.read(ReadOnly32::ExitReason)?;
        self.rip = v.read(GuestN::Rip)?;
        self.instruction_len = u64::from(v.read(ReadOnly32::ExitInstructionLength)?);
        if exit_reason & (1 << 31) != 0 {
            // VM-entry failure while loading guest state (SDM Vol. 3C, 28.8).
            return Ok(Some(Exit::EntryFailed {
                code: u64::from(exit_reason),
            }));
        }
        let basic = exit_reason as u16;
        if !reason::caused_by_instruction(basic) {
            Self::reinject_interrupted_event(v)?;
        }
        // Read only by the exits that use it (one VMREAD fewer for the common ones).
        let qualification = |v: &mut LoadedVmcs<'_>| v.read(ReadOnlyN::ExitQualification);
        Ok(match basic {
            // No exception is intercepted (the exception bitmap is 0): with NMI exiting, this
            // exit is an NMI for the host, which hands it to the host's handler.
            reason::EXCEPTION_OR_NMI => {
                let info = v.read(ReadOnly32::ExitInterruptionInfo)?;
                if exit_info::is_host_nmi(info) {
                    // SAFETY: the host IDT is loaded and its NMI handler returns (`trap`).
                    unsafe { instr::raise_nmi() };
                    Some(Exit::HostInterrupt)
                } else {
                    Some(Exit::Unhandled {
                        code: u64::from(basic),
                        info: u64::from(info),
                    })
                }
            }
            reason::EXTERNAL_INTERRUPT => {
                let info = v.read(ReadOnly32::ExitInterruptionInfo)?;
                crate::arch::x86_64::trap::dispatch_host_vector(info as u8);
                Some(Exit::HostInterrupt)
            }
            reason::TRIPLE_FAULT => Some(Exit::Shutdown),
            reason::INTERRUPT_WINDOW => {
                v.write(Control32::ProcBased, self.controls.proc)?;
                None
            }
            reason::CPUID => {
                let emulated = emulate::cpuid(
                    &mut self.regs,
                    self.index,
                    crate::arch::x86_64::time::tsc_hz(),
                );
                self.finish(v, emulated)?;
                None
            }
            reason::HLT => {
                self.advance(v)?;
                let interrupts_on = v.read(GuestN::Rflags)? & (1 << 9) != 0;
                self.halted = interrupts_on;
                Some(if interrupts_on {
                    Exit::Halt
                } else {
                    Exit::Shutdown
                })
            }
            reason::VMCALL => {
                self.advance(v)?;
                Some(Exit::Hypercall)
            }
            reason::CR_ACCESS => {
                let q = qualification(v)?;
                self.handle_cr(v, q, irq)?
            }
            reason::IO => {
                let q = qualification(v)?;
                let width = ((q & 7) + 1) as u8;
                let input = q & (1 << 3) != 0;
                let string = q & (1 << 4) != 0;
                let port = (q >> 16) as u16;
                if string {
                    Some(Exit::Unhandled {
                        code: u64::from(basic),
                        info: q,
                    })
                } else {
                    self.advance(v)?;
                    let (regs, pending) = (&self.regs, &mut self.pending_in);
                    Some(emulate::port_io(regs, pending, port, width, input))
                }
            }
            reason::RDMSR | reason::WRMSR => {
                let write = basic == reason::WRMSR;
                let offset = v.read(Control64::TscOffset)?;
                let host_tsc = instr::rdtsc();
                if write && self.regs.msr_index() == msr::TSC {
                    // The guest sets its TSC: from now on it reads on from this value.
                    let offset = cpu_state::tsc_offset(self.regs.msr_value(), host_tsc);
                    v.write(Control64::TscOffset, offset)?;
                    self.advance(v)?;
                } else {
                    let tsc = cpu_state::guest_tsc(host_tsc, offset);
                    let emulated = emulate::msr(&mut self.regs, &mut self.msrs, irq, write, tsc);
                    self.finish(v, emulated)?;
                }
                None
            }
            reason::EPT_VIOLATION => {
                let q = qualification(v)?;
                Some(Exit::NestedPageFault {
                    gpa: v.read(ReadOnly64::GuestPhysicalAddress)?,
                    write: q & (1 << 1) != 0,
                    exec: q & (1 << 2) != 0,
                    // Bit 7: a linear address is known; bit 8: the access was to its translation
                    // rather than to a paging-structure entry (SDM Vol. 3C, Table 28-7).
                    paging_structure: q & (1 << 7) == 0 || q & (1 << 8) == 0,
                })
            }
            reason::EPT_MISCONFIG => Some(Exit::Unhandled {
                code: u64::from(basic),
                info: v.read(ReadOnly64::GuestPhysicalAddress)?,
            }),
            reason::PREEMPTION_TIMER => {
                v.write(Guest32::PreemptionTimerValue, self.preemption_slice)?;
                Some(Exit::Preempted)
            }
            reason::PML_FULL => match self.pml.as_mut() {
                // Set the logged frames aside and resume: the access is performed again.
                // (Qualification bit 12, NMI unblocking by IRET, matters only with virtual
                // NMIs, which Castor does not use.)
                Some(pml) => {
                    pml.on_full(v)?;
                    None
                }
                None => Some(Exit::Unhandled {
                    code: u64::from(basic),
                    info: qualification(v)?,
                }),
            },
            // CPUID hides XSAVE and VMX, so XSETBV and the VMX instructions are invalid opcodes
            // for this guest.
            r if r == reason::XSETBV || reason::VMX_INSTRUCTIONS.contains(&r) => {
                Self::inject_exception(v, Exception::UD)?;
                None
            }
            _ => Some(Exit::Unhandled {
                code: u64::from(basic),
                info: qualification(v)?,
            }),
        })
    }
}

impl Vcpu for VmxVcpu {
    fn run(&mut self, irq: &mut dyn InterruptSource, _mem: &mut dyn GuestRead) -> Exit {
        if self.context.halted {
            // Still in HLT until an interrupt is pending (restored halted, or called again
            // without one).
            if irq.pending().is_none() {
                return Exit::Halt;
            }
            self.context.halted = false;
        }
        loop {
            match self.step(irq) {
                Ok(Some(exit)) => return exit,
                Ok(None) => {}
                Err(fail) => {
                    return Exit::EntryFailed {
                        code: 0x1_0000 | fail as u64,
                    };
                }
            }
        }
    }

    fn regs(&mut self) -> &mut GuestRegs {
        &mut self.context.regs
    }

    fn rip(&self) -> u64 {
        self.context.rip
    }

    fn complete_io_in(&mut self, value: u32) {
        self.context
            .pending_in
            .complete(&mut self.context.regs, value);
    }

    fn instruction_context(&mut self) -> Result<InstructionContext, VcpuError> {
        self.try_instruction_context()
            .map_err(|e| VcpuError::Hardware("VMREAD", e as u64))
    }

    fn complete_instruction(
        &mut self,
        rsp: u64,
        rflags: u64,
        advance: usize,
    ) -> Result<(), VcpuError> {
        self.try_complete_instruction(rsp, rflags, advance)
            .map_err(|e| VcpuError::Hardware("VMWRITE", e as u64))
    }

    /// Ticks of the VMX-preemption timer (TSC >> IA32_VMX_MISC[4:0]), from now and after each
    /// expiry.
    fn set_time_slice(&mut self, ticks: u32) -> bool {
        if self.context.controls.pin & setup::PIN_PREEMPTION_TIMER == 0 {
            return false;
        }
        self.context.preemption_slice = ticks;
        match self.vmcs.load() {
            Ok(mut v) => v.write(Guest32::PreemptionTimerValue, ticks).is_ok(),
            Err(_) => false,
        }
    }

    /// INVEPT for this vCPU's EPTP, done just before the next VM entry, on the CPU that makes
    /// it (`invalidate::after_ept_change`); if it fails, that entry reports
    /// [`Exit::EntryFailed`] rather than run the guest on stale translations.
    fn flush_nested_tlb(&mut self) {
        self.context.flush_pending = true;
    }

    fn enable_dirty_log(&mut self) -> bool {
        if self.context.pml.is_some() {
            return true;
        }
        let Some(proc2) = setup::with_pml(&self.context.caps, &self.context.controls) else {
            return false;
        };
        let Some(log) = PmlLog::new() else {
            return false;
        };
        let installed = self.vmcs.load().and_then(|mut v| {
            log.install(&mut v)?;
            v.write(Control32::ProcBased2, proc2)
        });
        if installed.is_err() {
            return false;
        }
        self.context.controls.proc2 = proc2;
        self.context.pml = Some(log);
        true
    }

    fn drain_dirty_log(&mut self, out: &mut alloc::vec::Vec<u64>) -> bool {
        let Some(pml) = self.context.pml.as_mut() else {
            return false;
        };
        let mut logged = alloc::vec::Vec::new();
        match self
            .vmcs
            .load()
            .and_then(|mut v| pml.drain(&mut v, &mut logged))
        {
            Ok(()) => {
                out.append(&mut logged);
                true
            }
            Err(e) => {
                // The dirty flags of everything logged are still set: a table walk finds them.
                log::error!("vcpu {}: PML log unreadable ({e:?})", self.context.index);
                false
            }
        }
    }

    fn dump(&mut self, out: &mut dyn fmt::Write) -> fmt::Result {
        writeln!(
            out,
            "vcpu {} (VT-x) RIP={:#x} last instruction length {}",
            self.context.index, self.context.rip, self.context.instruction_len
        )?;
        if let Ok(v) = self.vmcs.load() {
            let rd = |f: GuestN| v.read(f).unwrap_or(u64::MAX);
            writeln!(
                out,
                "RSP={:#018x} RFLAGS={:#x} CR0={:#x} CR3={:#x} CR4={:#x} EFER={:#x}",
                rd(GuestN::Rsp),
                rd(GuestN::Rflags),
                rd(GuestN::Cr0),
                rd(GuestN::Cr3),
                rd(GuestN::Cr4),
                v.read(super::fields::Guest64::Efer).unwrap_or(u64::MAX)
            )?;
            writeln!(
                out,
                "CS base={:#x} rights={:#x} CR2={:#x} exit reason={:#x} qualification={:#x} interruptibility={:#x}",
                rd(GuestN::CsBase),
                v.read(Guest32::CsAccessRights).unwrap_or(u32::MAX),
                self.context.regs.cr2,
                v.read(ReadOnly32::ExitReason).unwrap_or(u32::MAX),
                v.read(ReadOnlyN::ExitQualification).unwrap_or(u64::MAX),
                v.read(Guest32::InterruptibilityState).unwrap_or(u32::MAX)
            )?;
        }
        self.context.regs.dump(out)
    }

    fn save_state(&mut self) -> CpuState {
        self.try_save_state().unwrap_or_else(|e| {
            log::error!("vcpu {}: state not saved: {e}", self.context.index);
            CpuState::UNREADABLE
        })
    }

    fn restore_state(&mut self, state: &CpuState) -> Result<(), VcpuError> {
        self.try_restore_state(state)
    }
}

impl BareLoop for VmxVcpu {
    /// VMCALL loop: VM entry, exit-reason read, RIP advance.
    fn bare_hypercall_loop(&mut self, n: u64) -> Option<u64> {
        let mut v = self.vmcs.load().ok()?;
        let start = instr::rdtsc();
        for _ in 0..n {
            // SAFETY: as in `Context::step`: the VMCS is current and initialized, its host state is
            // this CPU's, and `regs` outlives the call.
            let code =
                unsafe { vmx_enter(&mut self.context.regs, u64::from(self.context.launched)) };
            if code != 0 {
                return None;
            }
            self.context.launched = true;
            if v.read(ReadOnly32::ExitReason).ok()? as u16 != reason::VMCALL {
                return None;
            }
            let len = v.read(ReadOnly32::ExitInstructionLength).ok()?;
            let rip = v.read(GuestN::Rip).ok()?;
            v.write(GuestN::Rip, rip + u64::from(len)).ok()?;
            Context::end_interrupt_shadow(&mut v).ok()?;
        }
        Some(instr::rdtsc() - start)
    }
}
