// SPDX-License-Identifier: MIT OR Apache-2.0
//! An AMD-V vCPU's state as a vendor-neutral [`CpuState`]
//! ([`crate::vmm::vcpu::Vcpu::save_state`] and `restore_state`): the VMCB state save area (AMD64
//! APM Vol. 2, Table B-2; RAX and CR2 there, the other general registers in software), the
//! event to deliver (an exception or NMI in EVENTINJ, 15.20 "Event Injection", or the external
//! interrupt in flight in V_IRQ, see `svm::virq`; one at a time), the interrupt shadow (Table
//! B-1, offset 0x068), the virtual interrupt this back end requests as its interrupt window
//! (V_IRQ with the VINTR intercept, 15.21.4), and what it keeps in software (emulated MSRs, a
//! pending `IN`).
//!
//! Conversions to the neutral form: access rights in the VMX layout
//! (`vmcb::Segment::access_rights` / `attrib_exact`, lossless both ways); EFER without SVME;
//! the one interrupt-shadow bit as STI blocking when RFLAGS.IF is set (STI sets IF) and MOV-SS
//! blocking otherwise; the CPL as SS.DPL, which is what VT-x keeps (SDM Vol. 3C, 25.4.1) and
//! what VMRUN takes in protected mode (APM Vol. 2, 15.5.1: CPL is forced to 0 in real mode and
//! 3 in virtual-8086 mode).
//!
//! STAR, LSTAR, CSTAR, SFMASK and KERNEL_GS_BASE are in the save area (VMLOAD/VMSAVE state,
//! APM Vol. 2, 15.5.2), as are DR6, DR7 and DBGCTL; the TSC is the host's plus the VMCB's
//! TSC_OFFSET (15.30.5), and a restore sets the offset so the guest's TSC goes on from the
//! saved value; TSC_AUX is emulated (RDTSCP intercepted); x87/SSE and DR0-DR3 are the
//! hardware's (`cpu_state::Unswitched`). AMD-V has no pending-debug-exceptions field: saved
//! as 0, ignored on restore. The halted condition is this back end's own (HLT exits).

use super::SvmVcpu;
use crate::arch::x86_64::{instr, msr};
use crate::vmm::cpu_state::{
    self, CR0_PE, CpuState, DescriptorTable, EmulatedMsrs, Event, EventKind, ExtendedState,
    FpuState, GUEST_XCR0, RFLAGS_IF, RFLAGS_VM, UnswitchedRegisters,
};
use crate::vmm::emulate::PendingIn;
use crate::vmm::msr::TSC_AUX;
use crate::vmm::svm::vmcb::{self, EventInfo, EventType, InterceptMisc1, InterruptState};
use crate::vmm::vcpu::{Segment, VcpuError};

/// Access rights bits 6:5: the descriptor privilege level.
const DPL_SHIFT: u32 = 5;
const DPL_MASK: u32 = 3 << DPL_SHIFT;

fn neutral(s: &vmcb::Segment) -> Segment {
    Segment {
        selector: s.selector,
        base: s.base,
        limit: s.limit,
        rights: s.access_rights(),
    }
}

fn from_neutral(s: &Segment) -> vmcb::Segment {
    vmcb::Segment {
        selector: s.selector,
        attrib: vmcb::Segment::attrib_exact(s.rights),
        limit: s.limit,
        base: s.base,
    }
}

fn table(s: &vmcb::Segment) -> Result<DescriptorTable, VcpuError> {
    Ok(DescriptorTable {
        base: s.base,
        limit: u16::try_from(s.limit).map_err(|_| VcpuError::InvalidState("GDTR/IDTR limit"))?,
    })
}

fn event(info: EventInfo) -> Result<Option<Event>, VcpuError> {
    if !info.valid() {
        return Ok(None);
    }
    let kind = match info.event_type() {
        Some(EventType::External) => EventKind::External,
        Some(EventType::Nmi) => EventKind::Nmi,
        Some(EventType::Exception) => EventKind::HardwareException,
        Some(EventType::SoftwareInterrupt) => EventKind::SoftwareInterrupt,
        None => return Err(VcpuError::InvalidState("EVENTINJ of a reserved type")),
    };
    Ok(Some(Event {
        kind,
        vector: info.vector(),
        error_code: info.error_code(),
        instruction_len: 0,
    }))
}

fn event_info(e: &Event) -> Result<EventInfo, VcpuError> {
    Ok(match e.kind {
        EventKind::External => EventInfo::external(e.vector),
        EventKind::Nmi => EventInfo::nmi(),
        EventKind::HardwareException => EventInfo::exception(e.vector, e.error_code),
        EventKind::SoftwareInterrupt if e.instruction_len == 0 => {
            EventInfo::software_interrupt(e.vector)
        }
        _ => {
            return Err(VcpuError::InvalidState(
                "software event saved by VT-x (RIP still at the instruction)",
            ));
        }
    })
}

/// The CPL VMRUN must be given for `state` (APM Vol. 2, 15.5.1).
fn cpl(state: &CpuState) -> u8 {
    if state.cr0 & CR0_PE == 0 {
        0
    } else if state.rflags & RFLAGS_VM != 0 {
        3
    } else {
        ((state.ss.rights & DPL_MASK) >> DPL_SHIFT) as u8
    }
}

impl SvmVcpu {
    /// [`crate::vmm::vcpu::Vcpu::save_state`] for AMD-V.
    pub(super) fn try_save_state(&mut self) -> Result<CpuState, VcpuError> {
        let mut regs = self.regs;
        let pending_io_in = self.pending_in.width();
        let msrs = EmulatedMsrs::of(&self.msrs);
        // Reads of TSC_AUX never fault (`VirtualMsrs::read`).
        let tsc_aux = self.msrs.read(TSC_AUX, 0).unwrap_or(0);
        let hw = self.unswitched.read();
        let halted = self.halted;
        let in_flight = self.in_flight;
        let v = self.vmcb();
        let (s, c) = (&v.save, &v.control);
        regs.cr2 = s.cr2;
        regs.reserved = 0;
        let shadow = c.int_state.contains(InterruptState::INTERRUPT_SHADOW);
        let interrupts_on = s.rflags & RFLAGS_IF != 0;
        let mut ss = neutral(&s.ss);
        if s.cr0 & CR0_PE != 0 && s.rflags & RFLAGS_VM == 0 {
            ss.rights = (ss.rights & !DPL_MASK) | (u32::from(s.cpl & 3) << DPL_SHIFT);
        }
        let state = CpuState {
            regs,
            rip: s.rip,
            rsp: s.rsp,
            rflags: s.rflags,
            cr0: s.cr0,
            cr3: s.cr3,
            cr4: s.cr4,
            efer: s.efer & !msr::EFER_SVME,
            cs: neutral(&s.cs),
            ds: neutral(&s.ds),
            es: neutral(&s.es),
            fs: neutral(&s.fs),
            gs: neutral(&s.gs),
            ss,
            // QEMU's SVM keeps TR's cached type as it was before LTR set the busy bit.
            tr: neutral(&s.tr).as_loaded_tr(),
            ldtr: neutral(&s.ldtr),
            gdtr: table(&s.gdtr)?,
            idtr: table(&s.idtr)?,
            sysenter_cs: s.sysenter_cs,
            sysenter_esp: s.sysenter_esp,
            sysenter_eip: s.sysenter_eip,
            star: s.star,
            lstar: s.lstar,
            cstar: s.cstar,
            sfmask: s.sfmask,
            kernel_gs_base: s.kernel_gs_base,
            msrs,
            dr7: s.dr7,
            pdpte: [0; 4],
            sti_blocking: shadow && interrupts_on,
            mov_ss_blocking: shadow && !interrupts_on,
            event: match (event(c.event_inj)?, in_flight) {
                (event, None) => event,
                (None, Some(vector)) => Some(Event {
                    kind: EventKind::External,
                    vector,
                    error_code: None,
                    instruction_len: 0,
                }),
                (Some(_), Some(_)) => {
                    return Err(VcpuError::InvalidState(
                        "an event to inject while an interrupt is in flight",
                    ));
                }
            },
            interrupt_window: c.v_irq() && c.intercept_misc1.contains(InterceptMisc1::VINTR),
            pending_io_in,
            ext: ExtendedState {
                tsc: cpu_state::guest_tsc(instr::rdtsc(), c.tsc_offset),
                tsc_aux,
                dr: hw.dr,
                dr6: s.dr6,
                debugctl: s.dbgctl,
                pending_debug: 0,
                halted,
                tpr: c.v_tpr(),
                fpu: FpuState {
                    xcr0: GUEST_XCR0,
                    area: hw.fpu,
                },
            },
        };
        state.check()?;
        Ok(state)
    }

    /// [`crate::vmm::vcpu::Vcpu::restore_state`] for AMD-V: checks everything before the VMCB is
    /// touched.
    pub(super) fn try_restore_state(&mut self, state: &CpuState) -> Result<(), VcpuError> {
        state.check()?;
        let (event_inj, in_flight) = match &state.event {
            Some(e) if e.kind == EventKind::External => (EventInfo::NONE, Some(e.vector)),
            Some(e) => (event_info(e)?, None),
            None => (EventInfo::NONE, None),
        };
        let mut msrs = state
            .msrs
            .apply(&self.msrs)
            .map_err(VcpuError::InvalidState)?;
        msrs.write(TSC_AUX, state.ext.tsc_aux)
            .map_err(|()| VcpuError::InvalidState("IA32_TSC_AUX"))?;
        self.unswitched
            .stage(UnswitchedRegisters {
                fpu: state.ext.fpu.area,
                dr: state.ext.dr,
                dr6: state.ext.dr6,
            })
            .map_err(VcpuError::InvalidState)?;
        let v = self.vmcb();
        let s = &mut v.save;
        s.rip = state.rip;
        s.rsp = state.rsp;
        s.rflags = state.rflags;
        s.rax = state.regs.rax;
        s.cr2 = state.regs.cr2;
        s.cr0 = state.cr0;
        s.cr3 = state.cr3;
        s.cr4 = state.cr4;
        s.efer = state.efer | msr::EFER_SVME;
        for (dst, src) in [
            &mut s.cs,
            &mut s.ds,
            &mut s.es,
            &mut s.fs,
            &mut s.gs,
            &mut s.ss,
            &mut s.tr,
            &mut s.ldtr,
        ]
        .into_iter()
        .zip(state.segments())
        {
            *dst = from_neutral(src);
        }
        s.cpl = cpl(state);
        for (dst, src) in [(&mut s.gdtr, &state.gdtr), (&mut s.idtr, &state.idtr)] {
            dst.base = src.base;
            dst.limit = u32::from(src.limit);
        }
        s.sysenter_cs = state.sysenter_cs;
        s.sysenter_esp = state.sysenter_esp;
        s.sysenter_eip = state.sysenter_eip;
        s.star = state.star;
        s.lstar = state.lstar;
        s.cstar = state.cstar;
        s.sfmask = state.sfmask;
        s.kernel_gs_base = state.kernel_gs_base;
        s.dr7 = state.dr7;
        s.dr6 = state.ext.dr6;
        s.dbgctl = state.ext.debugctl;
        let c = &mut v.control;
        // The guest's TSC goes on from the saved value (APM Vol. 2, 15.30.5).
        c.tsc_offset = cpu_state::tsc_offset(state.ext.tsc, instr::rdtsc());
        c.int_state.set(
            InterruptState::INTERRUPT_SHADOW,
            state.sti_blocking || state.mov_ss_blocking,
        );
        c.event_inj = event_inj;
        // As `deliver_interrupt` hands over an interrupt, or asks for (and withdraws) the
        // window.
        match in_flight {
            Some(vector) => c.hand_over_interrupt(vector),
            None if state.interrupt_window => c.request_interrupt_window(),
            None => c.clear_interrupt_window(),
        }
        self.regs = state.regs;
        self.pending_in = PendingIn::with_width(state.pending_io_in);
        self.msrs = msrs;
        self.halted = state.ext.halted;
        self.in_flight = in_flight;
        self.vmcb().control.set_v_tpr(state.ext.tpr);
        Ok(())
    }
}
