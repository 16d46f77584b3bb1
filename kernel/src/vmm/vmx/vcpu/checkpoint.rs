// SPDX-License-Identifier: MIT OR Apache-2.0
//! A VT-x vCPU's state as a vendor-neutral [`CpuState`] ([`crate::vmm::vcpu::Vcpu::save_state`]
//! and `restore_state`): the VMCS guest-state area (Intel SDM Vol. 3C, 25.4), CR0/CR4 through
//! their guest/host masks and read shadows (25.6.6), the event to inject on the next entry
//! (25.8.3), interrupt-window exiting (25.6.2), and what this back end keeps in software (the
//! general registers, emulated MSRs, a pending `IN`).
//!
//! IA32_STAR, LSTAR, CSTAR, FMASK, KERNEL_GS_BASE and TSC_AUX come from the VM-exit MSR-store
//! area (`msr_switch`); the TSC is the host's plus the TSC offset (SDM Vol. 3C, 26.3), and a
//! restore sets the offset so the guest's TSC goes on from the saved value; IA32_DEBUGCTL and
//! the pending debug exceptions are guest-state fields (25.4.1, 25.4.2); x87/SSE, DR0-DR3 and
//! DR6 are the hardware's (`cpu_state::Unswitched`). The halted condition is this back end's
//! own (HLT exits; the activity state stays active).

use super::{Context, DELIVER_ERROR_CODE, VALID, VmxVcpu, fail};
use crate::arch::x86_64::instr::{self, vmx::VmFail};
use crate::vmm::cpu_state::{
    self, CpuState, DescriptorTable, EFER_LMA, EmulatedMsrs, Event, EventKind, ExtendedState,
    FpuState, GUEST_XCR0, UnswitchedRegisters,
};
use crate::vmm::emulate::PendingIn;
use crate::vmm::vcpu::{Segment, VcpuError};
use crate::vmm::vmx::fields::{Control32, Control64, ControlN, Guest16, Guest32, Guest64, GuestN};
use crate::vmm::vmx::setup::{self, PROC_INTERRUPT_WINDOW};
use crate::vmm::vmx::vmcs::LoadedVmcs;

/// Interruptibility state: blocking by STI, by MOV SS (SDM Vol. 3C, 25.4.2).
const BLOCKING_STI: u32 = 1 << 0;
const BLOCKING_MOV_SS: u32 = 1 << 1;

/// A segment register's four guest-state fields.
struct SegmentFields {
    selector: Guest16,
    base: GuestN,
    limit: Guest32,
    rights: Guest32,
}

macro_rules! segment_fields {
    ($($sel:ident, $base:ident, $limit:ident, $rights:ident;)*) => {
        [$(SegmentFields {
            selector: Guest16::$sel,
            base: GuestN::$base,
            limit: Guest32::$limit,
            rights: Guest32::$rights,
        },)*]
    };
}

/// In [`CpuState::segments`] order: CS, DS, ES, FS, GS, SS, TR, LDTR.
const SEGMENTS: [SegmentFields; 8] = segment_fields! {
    CsSelector, CsBase, CsLimit, CsAccessRights;
    DsSelector, DsBase, DsLimit, DsAccessRights;
    EsSelector, EsBase, EsLimit, EsAccessRights;
    FsSelector, FsBase, FsLimit, FsAccessRights;
    GsSelector, GsBase, GsLimit, GsAccessRights;
    SsSelector, SsBase, SsLimit, SsAccessRights;
    TrSelector, TrBase, TrLimit, TrAccessRights;
    LdtrSelector, LdtrBase, LdtrLimit, LdtrAccessRights;
};

const PDPTES: [Guest64; 4] = [
    Guest64::Pdpte0,
    Guest64::Pdpte1,
    Guest64::Pdpte2,
    Guest64::Pdpte3,
];

/// Why a state could not be read out of the VMCS.
enum SaveError {
    Vmread(VmFail),
    /// The VMCS holds something the neutral state cannot express.
    State(&'static str),
}

impl From<VmFail> for SaveError {
    fn from(f: VmFail) -> Self {
        SaveError::Vmread(f)
    }
}

/// A control register as the guest reads it: host-owned bits (set in the mask) from the read
/// shadow, the others from the register (SDM Vol. 3C, 26.3 "Changes to Instruction Behavior
/// in VMX Non-Root Operation", MOV from CR0/CR4).
fn guest_visible(
    v: &LoadedVmcs<'_>,
    reg: GuestN,
    mask: ControlN,
    shadow: ControlN,
) -> Result<u64, VmFail> {
    let mask = v.read(mask)?;
    Ok((v.read(reg)? & !mask) | (v.read(shadow)? & mask))
}

fn table(base: u64, limit: u32) -> Result<DescriptorTable, SaveError> {
    let limit = u16::try_from(limit).map_err(|_| SaveError::State("GDTR/IDTR limit"))?;
    Ok(DescriptorTable { base, limit })
}

/// The event VM entry will inject, from the VM-entry interruption-information field and its
/// error-code and instruction-length fields (SDM Vol. 3C, 25.8.3).
fn pending_event(v: &LoadedVmcs<'_>) -> Result<Option<Event>, SaveError> {
    let info = v.read(Control32::EntryInterruptionInfo)?;
    if info & VALID == 0 {
        return Ok(None);
    }
    let kind = EventKind::from_number(((info >> 8) & 7) as u8).ok_or(SaveError::State(
        "event of type 1 or 7 (Castor injects neither)",
    ))?;
    let error_code = if info & DELIVER_ERROR_CODE != 0 {
        Some(v.read(Control32::EntryExceptionErrorCode)?)
    } else {
        None
    };
    let instruction_len = if kind.is_software() {
        u8::try_from(v.read(Control32::EntryInstructionLength)?)
            .map_err(|_| SaveError::State("event instruction length"))?
    } else {
        0
    };
    Ok(Some(Event {
        kind,
        vector: info as u8,
        error_code,
        instruction_len,
    }))
}

fn read_state(v: &LoadedVmcs<'_>, context: &Context) -> Result<CpuState, SaveError> {
    let cr0 = guest_visible(v, GuestN::Cr0, ControlN::Cr0Mask, ControlN::Cr0ReadShadow)?;
    let cr4 = guest_visible(v, GuestN::Cr4, ControlN::Cr4Mask, ControlN::Cr4ReadShadow)?;
    let mut segments = [Segment {
        selector: 0,
        base: 0,
        limit: 0,
        rights: 0,
    }; 8];
    for (seg, f) in segments.iter_mut().zip(&SEGMENTS) {
        *seg = Segment {
            selector: v.read(f.selector)?,
            base: v.read(f.base)?,
            limit: v.read(f.limit)?,
            rights: v.read(f.rights)?,
        };
    }
    let [cs, ds, es, fs, gs, ss, tr, ldtr] = segments;
    let interruptibility = v.read(Guest32::InterruptibilityState)?;
    let mut regs = context.regs;
    regs.reserved = 0;
    let [star, lstar, cstar, sfmask, kernel_gs_base, tsc_aux] = context.msr_areas.read_guest();
    let hw = context.unswitched.read();
    let ext = ExtendedState {
        tsc: cpu_state::guest_tsc(instr::rdtsc(), v.read(Control64::TscOffset)?),
        tsc_aux,
        dr: hw.dr,
        dr6: hw.dr6,
        debugctl: v.read(Guest64::DebugCtl)?,
        pending_debug: v.read(GuestN::PendingDebugExceptions)?,
        halted: context.halted,
        tpr: context.cr8.read() as u8,
        fpu: FpuState {
            xcr0: GUEST_XCR0,
            area: hw.fpu,
        },
    };
    let mut state = CpuState {
        regs,
        rip: v.read(GuestN::Rip)?,
        rsp: v.read(GuestN::Rsp)?,
        rflags: v.read(GuestN::Rflags)?,
        cr0,
        cr3: v.read(GuestN::Cr3)?,
        cr4,
        efer: v.read(Guest64::Efer)?,
        cs,
        ds,
        es,
        fs,
        gs,
        ss,
        tr,
        ldtr,
        gdtr: table(v.read(GuestN::GdtrBase)?, v.read(Guest32::GdtrLimit)?)?,
        idtr: table(v.read(GuestN::IdtrBase)?, v.read(Guest32::IdtrLimit)?)?,
        sysenter_cs: u64::from(v.read(Guest32::SysenterCs)?),
        sysenter_esp: v.read(GuestN::SysenterEsp)?,
        sysenter_eip: v.read(GuestN::SysenterEip)?,
        star,
        lstar,
        cstar,
        sfmask,
        kernel_gs_base,
        msrs: EmulatedMsrs::of(&context.msrs),
        dr7: v.read(GuestN::Dr7)?,
        pdpte: [0; 4],
        sti_blocking: interruptibility & BLOCKING_STI != 0,
        mov_ss_blocking: interruptibility & BLOCKING_MOV_SS != 0,
        event: pending_event(v)?,
        interrupt_window: v.read(Control32::ProcBased)? & PROC_INTERRUPT_WINDOW != 0,
        pending_io_in: context.pending_in.width(),
        ext,
    };
    // Stored by every VM exit while the guest uses PAE paging (SDM Vol. 3C, 28.3.4).
    if state.pae_paging() {
        for (e, f) in state.pdpte.iter_mut().zip(PDPTES) {
            *e = v.read(f)?;
        }
    }
    Ok(state)
}

fn write_state(v: &mut LoadedVmcs<'_>, context: &Context, state: &CpuState) -> Result<(), VmFail> {
    let ((hw_cr0, shadow_cr0), (hw_cr4, shadow_cr4)) =
        setup::guest_control_registers(&context.caps, state.cr0, state.cr4);
    v.write(GuestN::Cr0, hw_cr0)?;
    v.write(ControlN::Cr0ReadShadow, shadow_cr0)?;
    v.write(GuestN::Cr4, hw_cr4 | setup::CR4_VMXE)?;
    v.write(ControlN::Cr4ReadShadow, shadow_cr4)?;
    v.write(GuestN::Cr3, state.cr3)?;
    v.write(Guest64::Efer, state.efer)?;
    // "IA-32e mode guest" must equal EFER.LMA (SDM Vol. 3C, 27.3.1.1).
    let ia32e = if state.efer & EFER_LMA != 0 {
        setup::ENTRY_IA32E_GUEST
    } else {
        0
    };
    v.write(Control32::EntryControls, context.controls.entry | ia32e)?;
    for (seg, f) in state.segments().into_iter().zip(&SEGMENTS) {
        v.write(f.selector, seg.selector)?;
        v.write(f.base, seg.base)?;
        v.write(f.limit, seg.limit)?;
        v.write(f.rights, seg.rights)?;
    }
    v.write(GuestN::GdtrBase, state.gdtr.base)?;
    v.write(Guest32::GdtrLimit, u32::from(state.gdtr.limit))?;
    v.write(GuestN::IdtrBase, state.idtr.base)?;
    v.write(Guest32::IdtrLimit, u32::from(state.idtr.limit))?;
    // `CpuState::check` keeps SYSENTER_CS within 32 bits.
    v.write(Guest32::SysenterCs, state.sysenter_cs as u32)?;
    v.write(GuestN::SysenterEsp, state.sysenter_esp)?;
    v.write(GuestN::SysenterEip, state.sysenter_eip)?;
    v.write(GuestN::Dr7, state.dr7)?;
    v.write(Guest64::DebugCtl, state.ext.debugctl)?;
    let pending_debug = cpu_state::pending_debug_for_entry(
        state.ext.pending_debug,
        state.rflags,
        state.ext.debugctl,
        state.sti_blocking || state.mov_ss_blocking,
    );
    v.write(GuestN::PendingDebugExceptions, pending_debug)?;
    // The guest's TSC goes on from the saved value (SDM Vol. 3C, 26.3).
    v.write(
        Control64::TscOffset,
        cpu_state::tsc_offset(state.ext.tsc, instr::rdtsc()),
    )?;
    for (e, f) in state.pdpte.into_iter().zip(PDPTES) {
        v.write(f, e)?;
    }
    let mut blocking = v.read(Guest32::InterruptibilityState)? & !(BLOCKING_STI | BLOCKING_MOV_SS);
    if state.sti_blocking {
        blocking |= BLOCKING_STI;
    }
    if state.mov_ss_blocking {
        blocking |= BLOCKING_MOV_SS;
    }
    v.write(Guest32::InterruptibilityState, blocking)?;
    let info = match state.event {
        None => 0,
        Some(e) => {
            let mut info = VALID | (u32::from(e.kind as u8) << 8) | u32::from(e.vector);
            if let Some(code) = e.error_code {
                info |= DELIVER_ERROR_CODE;
                v.write(Control32::EntryExceptionErrorCode, code)?;
            }
            if e.kind.is_software() {
                v.write(
                    Control32::EntryInstructionLength,
                    u32::from(e.instruction_len),
                )?;
            }
            info
        }
    };
    v.write(Control32::EntryInterruptionInfo, info)?;
    let window = if state.interrupt_window {
        PROC_INTERRUPT_WINDOW
    } else {
        0
    };
    v.write(Control32::ProcBased, context.controls.proc | window)?;
    v.write(GuestN::Rip, state.rip)?;
    v.write(GuestN::Rsp, state.rsp)?;
    v.write(GuestN::Rflags, state.rflags)
}

impl VmxVcpu {
    /// [`crate::vmm::vcpu::Vcpu::save_state`] for VT-x.
    pub(super) fn try_save_state(&mut self) -> Result<CpuState, VcpuError> {
        let v = self.vmcs.load().map_err(fail("VMPTRLD"))?;
        let state = read_state(&v, &self.context).map_err(|e| match e {
            SaveError::Vmread(f) => VcpuError::Hardware("VMREAD", f as u64),
            SaveError::State(what) => VcpuError::InvalidState(what),
        })?;
        state.check()?;
        Ok(state)
    }

    /// [`crate::vmm::vcpu::Vcpu::restore_state`] for VT-x: checks everything before the first
    /// VMWRITE.
    pub(super) fn try_restore_state(&mut self, state: &CpuState) -> Result<(), VcpuError> {
        state.check()?;
        if state
            .event
            .is_some_and(|e| e.kind.is_software() && e.instruction_len == 0)
        {
            return Err(VcpuError::InvalidState(
                "software event without its instruction length (saved by AMD-V)",
            ));
        }
        if state.pae_paging() && state.pdpte == [0; 4] {
            return Err(VcpuError::InvalidState(
                "PAE paging without PDPTEs (saved by AMD-V)",
            ));
        }
        let msrs = state
            .msrs
            .apply(&self.context.msrs)
            .map_err(VcpuError::InvalidState)?;
        self.context
            .unswitched
            .stage(UnswitchedRegisters {
                fpu: state.ext.fpu.area,
                dr: state.ext.dr,
                dr6: state.ext.dr6,
            })
            .map_err(VcpuError::InvalidState)?;
        let mut v = self.vmcs.load().map_err(fail("VMPTRLD"))?;
        write_state(&mut v, &self.context, state).map_err(fail("VMWRITE guest state"))?;
        self.context.msr_areas.write_guest([
            state.star,
            state.lstar,
            state.cstar,
            state.sfmask,
            state.kernel_gs_base,
            state.ext.tsc_aux,
        ]);
        self.context.halted = state.ext.halted;
        // Checked above (`CpuState::check`: bits 7:4 reserved), so the write cannot fault.
        let _ = self.context.cr8.write(u64::from(state.ext.tpr));
        self.context.regs = state.regs;
        self.context.rip = state.rip;
        self.context.pending_in = PendingIn::with_width(state.pending_io_in);
        self.context.msrs = msrs;
        Ok(())
    }
}
