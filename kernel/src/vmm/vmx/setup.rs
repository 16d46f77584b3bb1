// SPDX-License-Identifier: MIT OR Apache-2.0
//! Initial VMCS contents: controls (computed against the capability MSRs), host state (the
//! running kernel's own), and guest state for each way a guest can start.
//!
//! Guest-state rules: Intel SDM Vol. 3C, 28.3.1 "Checks on the Guest State Area"; host-state
//! rules: 28.2.2 and 28.2.3; control rules: 28.2.1.

use super::bitmaps::Bitmaps;
use super::caps::{PROC_SECONDARY_CONTROLS, VmxCaps};
use super::controls::apply_fixed;
use super::fields::{
    Control32, Control64, ControlN, Guest16, Guest32, Guest64, GuestN, Host16, Host32, Host64,
    HostN,
};
use super::msr_switch::{self, MsrAreas};
use super::vmcs::LoadedVmcs;
use crate::arch::x86_64::instr::vmx::VmFail;
use crate::arch::x86_64::{instr, msr, percpu};
use crate::vmm::vcpu::VcpuError;
use crate::vmm::vcpu::{GuestStart, InitialState, Segment};

// Pin-based controls (SDM Vol. 3C, 25.6.1).
const PIN_EXTERNAL_INTERRUPT: u32 = 1 << 0;
const PIN_NMI: u32 = 1 << 3;
/// VMX-preemption timer.
pub const PIN_PREEMPTION_TIMER: u32 = 1 << 6;
// Primary processor-based controls (25.6.2).
/// Interrupt-window exiting.
pub const PROC_INTERRUPT_WINDOW: u32 = 1 << 2;
/// Use TSC offsetting: RDTSC, RDTSCP and RDMSR of the TSC add the TSC_OFFSET field (SDM
/// Vol. 3C, 26.3).
const PROC_TSC_OFFSETTING: u32 = 1 << 3;
const PROC_HLT: u32 = 1 << 7;
/// CR8-load exiting and CR8-store exiting: the guest's CR8 is emulated (`exit_info::Cr8`).
const PROC_CR8_EXITING: u32 = (1 << 19) | (1 << 20);
const PROC_IO_BITMAPS: u32 = 1 << 25;
const PROC_MSR_BITMAPS: u32 = 1 << 28;
// Secondary processor-based controls (25.6.2).
const PROC2_EPT: u32 = 1 << 1;
/// Enable RDTSCP: without it RDTSCP raises #UD, though CPUID offers it (SDM Vol. 3C, 26.3).
const PROC2_RDTSCP: u32 = 1 << 3;
const PROC2_UNRESTRICTED_GUEST: u32 = 1 << 7;
const PROC2_PML: u32 = 1 << 17;
// VM-exit controls (25.7.1).
/// Save debug controls: DR7 and IA32_DEBUGCTL into the guest-state area.
const EXIT_SAVE_DEBUG: u32 = 1 << 2;
const EXIT_HOST_64BIT: u32 = 1 << 9;
const EXIT_ACK_INTERRUPT: u32 = 1 << 15;
const EXIT_SAVE_EFER: u32 = 1 << 20;
const EXIT_LOAD_EFER: u32 = 1 << 21;
const EXIT_SAVE_PREEMPTION_TIMER: u32 = 1 << 22;
// VM-entry controls (25.8.1).
/// IA-32e mode guest.
pub const ENTRY_IA32E_GUEST: u32 = 1 << 9;
/// Load debug controls: DR7 and IA32_DEBUGCTL from the guest-state area.
const ENTRY_LOAD_DEBUG: u32 = 1 << 2;
const ENTRY_LOAD_EFER: u32 = 1 << 15;

/// CR0 bits.
pub const CR0_PE: u64 = 1 << 0;
/// CR0.NE.
pub const CR0_NE: u64 = 1 << 5;
/// CR0.PG.
pub const CR0_PG: u64 = 1 << 31;
/// CR4.VMXE, required while in VMX operation and hidden from the guest.
pub const CR4_VMXE: u64 = 1 << 13;
/// EFER.LMA: long mode active.
const EFER_LMA: u64 = 1 << 10;

/// VMX-preemption timer value loaded at start and after each expiry: the monitor gets control
/// back at least every 2^32 timer ticks (TSC >> IA32_VMX_MISC[4:0], SDM Vol. 3C, 27.5.1) even
/// if the guest never exits. The epoch loop will shorten it.
pub const PREEMPTION_SLICE: u32 = u32::MAX;

/// Control words chosen for a guest.
#[derive(Debug, Clone, Copy)]
pub struct Controls {
    /// Pin-based.
    pub pin: u32,
    /// Primary processor-based.
    pub proc: u32,
    /// Secondary processor-based.
    pub proc2: u32,
    /// VM-exit.
    pub exit: u32,
    /// VM-entry (without IA-32e mode guest).
    pub entry: u32,
}

fn missing(what: &'static str) -> impl Fn(u32) -> VcpuError {
    move |bits| VcpuError::MissingControls(what, bits)
}

/// Computes every control word. Required: external-interrupt and NMI exiting, HLT exiting,
/// TSC offsetting, CR8-load and CR8-store exiting (else the guest's MOV to CR8 writes the host's
/// TPR, SDM Vol. 3C, 26.3), I/O and MSR bitmaps, EPT, unrestricted guest, RDTSCP, a 64-bit host,
/// acknowledge-interrupt-on-exit, EFER and debug-control save/load. Used when offered: the
/// VMX-preemption timer.
pub fn controls(caps: &VmxCaps) -> Result<Controls, VcpuError> {
    let pin = caps
        .pin
        .compute(PIN_EXTERNAL_INTERRUPT | PIN_NMI, PIN_PREEMPTION_TIMER)
        .map_err(missing("pin-based"))?;
    let proc = caps
        .proc
        .compute(
            PROC_HLT
                | PROC_CR8_EXITING
                | PROC_TSC_OFFSETTING
                | PROC_IO_BITMAPS
                | PROC_MSR_BITMAPS
                | PROC_SECONDARY_CONTROLS,
            0,
        )
        .map_err(missing("processor-based"))?;
    let proc2 = caps
        .proc2
        .compute(PROC2_EPT | PROC2_UNRESTRICTED_GUEST | PROC2_RDTSCP, 0)
        .map_err(missing("secondary"))?;
    let timer = if pin & PIN_PREEMPTION_TIMER != 0 {
        EXIT_SAVE_PREEMPTION_TIMER
    } else {
        0
    };
    let exit = caps
        .exit
        .compute(
            EXIT_HOST_64BIT
                | EXIT_ACK_INTERRUPT
                | EXIT_SAVE_EFER
                | EXIT_LOAD_EFER
                | EXIT_SAVE_DEBUG,
            timer,
        )
        .map_err(missing("VM-exit"))?;
    let entry = caps
        .entry
        .compute(ENTRY_LOAD_EFER | ENTRY_LOAD_DEBUG, 0)
        .map_err(missing("VM-entry"))?;
    // IA-32e mode guest is switched per guest; make sure the CPU allows it.
    caps.entry
        .compute(ENTRY_IA32E_GUEST, 0)
        .map_err(missing("VM-entry"))?;
    Ok(Controls {
        pin,
        proc,
        proc2,
        exit,
        entry,
    })
}

/// The secondary controls `c.proc2` with "enable PML" added, if this CPU offers
/// page-modification logging and EPT accessed/dirty flags (PML logs dirty-flag updates, so it
/// logs nothing without them: SDM Vol. 3C, 29.3.6). The log itself: `pml`.
pub fn with_pml(caps: &VmxCaps, c: &Controls) -> Option<u32> {
    (caps.has_pml() && caps.has_ept_ad()).then_some(c.proc2 | PROC2_PML)
}

/// Writes controls, bitmaps, the MSR areas and the EPT pointer.
pub fn write_controls(
    v: &mut LoadedVmcs<'_>,
    c: &Controls,
    bitmaps: &Bitmaps,
    msr_areas: &MsrAreas,
    eptp: u64,
) -> Result<(), VmFail> {
    v.write(Control32::PinBased, c.pin)?;
    v.write(Control32::ProcBased, c.proc)?;
    v.write(Control32::ProcBased2, c.proc2)?;
    v.write(Control32::ExitControls, c.exit)?;
    v.write(Control32::EntryControls, c.entry)?;
    v.write(Control32::ExceptionBitmap, 0)?;
    v.write(Control32::PfErrorMask, 0)?;
    v.write(Control32::PfErrorMatch, 0)?;
    v.write(Control32::Cr3TargetCount, 0)?;
    v.write(Control32::ExitMsrStoreCount, msr_switch::COUNT)?;
    v.write(Control32::ExitMsrLoadCount, msr_switch::COUNT)?;
    v.write(Control32::EntryMsrLoadCount, msr_switch::COUNT)?;
    v.write(Control64::ExitMsrStore, msr_areas.guest())?;
    v.write(Control64::EntryMsrLoad, msr_areas.guest())?;
    v.write(Control64::ExitMsrLoad, msr_areas.host())?;
    v.write(Control32::EntryInterruptionInfo, 0)?;
    v.write(Control64::IoBitmapA, bitmaps.io_a())?;
    v.write(Control64::IoBitmapB, bitmaps.io_b())?;
    v.write(Control64::MsrBitmaps, bitmaps.msr())?;
    v.write(Control64::Eptp, eptp)?;
    v.write(Control64::TscOffset, 0)?;
    Ok(())
}

/// Writes the host-state area from the running CPU: a VM exit returns to `host_rip` with this
/// CPU's own CR0/CR3/CR4, segments, descriptor tables, TSS and GS base (per-CPU data).
pub fn write_host_state(v: &mut LoadedVmcs<'_>, host_rip: u64) -> Result<(), VmFail> {
    let cpu = percpu::current();
    let tables = cpu.tables.get().ok_or(VmFail::Invalid)?;
    v.write(HostN::Cr0, instr::read_cr0())?;
    v.write(HostN::Cr3, instr::read_cr3())?;
    v.write(HostN::Cr4, instr::read_cr4())?;
    v.write(Host16::CsSelector, tables.code.0)?;
    for sel in [Host16::SsSelector, Host16::DsSelector, Host16::EsSelector] {
        v.write(sel, tables.data.0)?;
    }
    v.write(Host16::FsSelector, 0)?;
    v.write(Host16::GsSelector, 0)?;
    v.write(Host16::TrSelector, tables.tss_sel.0)?;
    // SAFETY: FS/GS base and EFER exist on every x86-64 CPU.
    let (fs, gs, efer) = unsafe {
        (
            instr::rdmsr(msr::IA32_FS_BASE),
            instr::rdmsr(msr::IA32_GS_BASE),
            instr::rdmsr(msr::IA32_EFER),
        )
    };
    v.write(HostN::FsBase, fs)?;
    v.write(HostN::GsBase, gs)?;
    v.write(HostN::TrBase, tables.tss_addr)?;
    v.write(HostN::GdtrBase, instr::sgdt().0)?;
    v.write(HostN::IdtrBase, instr::sidt().0)?;
    v.write(Host32::SysenterCs, 0)?;
    v.write(HostN::SysenterEsp, 0)?;
    v.write(HostN::SysenterEip, 0)?;
    v.write(Host64::Efer, efer)?;
    v.write(HostN::Rip, host_rip)?;
    Ok(())
}

const UNUSABLE: u32 = 1 << 16;

fn write_segments(v: &mut LoadedVmcs<'_>, code: &Segment, data: &Segment) -> Result<(), VmFail> {
    use Guest16 as S;
    use Guest32 as L;
    use GuestN as B;
    v.write(S::CsSelector, code.selector)?;
    v.write(B::CsBase, code.base)?;
    v.write(L::CsLimit, code.limit)?;
    v.write(L::CsAccessRights, code.rights)?;
    for (sel, base, limit, rights) in [
        (S::SsSelector, B::SsBase, L::SsLimit, L::SsAccessRights),
        (S::DsSelector, B::DsBase, L::DsLimit, L::DsAccessRights),
        (S::EsSelector, B::EsBase, L::EsLimit, L::EsAccessRights),
        (S::FsSelector, B::FsBase, L::FsLimit, L::FsAccessRights),
        (S::GsSelector, B::GsBase, L::GsLimit, L::GsAccessRights),
    ] {
        v.write(sel, data.selector)?;
        v.write(base, data.base)?;
        v.write(limit, data.limit)?;
        v.write(rights, data.rights)?;
    }
    // TR must be usable: a busy TSS (type 11), present (SDM 28.3.1.2). LDTR unusable.
    v.write(S::TrSelector, 0)?;
    v.write(B::TrBase, 0)?;
    v.write(L::TrLimit, 0xFFFF)?;
    v.write(L::TrAccessRights, 0x8B)?;
    v.write(S::LdtrSelector, 0)?;
    v.write(B::LdtrBase, 0)?;
    v.write(L::LdtrLimit, 0)?;
    v.write(L::LdtrAccessRights, UNUSABLE)?;
    Ok(())
}

/// The guest's CR0/CR4 as the hardware needs them (fixed bits applied; with unrestricted guest
/// PE and PG may be 0, SDM Vol. 3C, 28.3.1.1) and as the guest should read them.
pub fn guest_control_registers(caps: &VmxCaps, cr0: u64, cr4: u64) -> ((u64, u64), (u64, u64)) {
    let cr0_fixed0 = caps.cr0_fixed.0 & !(CR0_PE | CR0_PG);
    let hw_cr0 = apply_fixed(cr0, cr0_fixed0, caps.cr0_fixed.1);
    let hw_cr4 = apply_fixed(cr4, caps.cr4_fixed.0, caps.cr4_fixed.1);
    ((hw_cr0, cr0), (hw_cr4, cr4))
}

/// Writes the guest-state area for `start`, and the CR0/CR4 masks and read shadows hiding the
/// bits VMX forces (the guest reads what it wrote).
pub fn write_guest_state(
    v: &mut LoadedVmcs<'_>,
    caps: &VmxCaps,
    start: GuestStart,
    c: &Controls,
) -> Result<(), VmFail> {
    let InitialState {
        cr0,
        cr3,
        cr4,
        efer,
        code,
        data,
        rip,
    } = start.initial_state();
    let ((hw_cr0, shadow_cr0), (hw_cr4, shadow_cr4)) = guest_control_registers(caps, cr0, cr4);
    v.write(GuestN::Cr0, hw_cr0)?;
    v.write(GuestN::Cr3, cr3)?;
    v.write(GuestN::Cr4, hw_cr4)?;
    // Bits owned by the host: reading them returns the shadow, writing them exits.
    v.write(
        ControlN::Cr0Mask,
        caps.cr0_fixed.0 & !(CR0_PE | CR0_PG) | !caps.cr0_fixed.1,
    )?;
    v.write(ControlN::Cr0ReadShadow, shadow_cr0)?;
    v.write(ControlN::Cr4Mask, caps.cr4_fixed.0 | !caps.cr4_fixed.1)?;
    v.write(ControlN::Cr4ReadShadow, shadow_cr4)?;
    v.write(Guest64::Efer, efer)?;
    let long = efer & EFER_LMA != 0;
    v.write(
        Control32::EntryControls,
        c.entry | if long { ENTRY_IA32E_GUEST } else { 0 },
    )?;
    write_segments(v, &code, &data)?;
    v.write(GuestN::GdtrBase, 0)?;
    v.write(Guest32::GdtrLimit, 0xFFFF)?;
    v.write(GuestN::IdtrBase, 0)?;
    v.write(Guest32::IdtrLimit, 0xFFFF)?;
    v.write(GuestN::Rip, rip)?;
    v.write(GuestN::Rsp, 0)?;
    v.write(GuestN::Rflags, 0x2)?;
    v.write(GuestN::Dr7, 0x400)?;
    v.write(GuestN::PendingDebugExceptions, 0)?;
    v.write(Guest32::InterruptibilityState, 0)?;
    v.write(Guest32::ActivityState, 0)?;
    v.write(Guest32::SysenterCs, 0)?;
    v.write(GuestN::SysenterEsp, 0)?;
    v.write(GuestN::SysenterEip, 0)?;
    v.write(Guest64::DebugCtl, 0)?;
    v.write(Guest64::Pat, 0x0007_0406_0007_0406)?;
    v.write(Guest64::VmcsLinkPointer, u64::MAX)?;
    if c.pin & PIN_PREEMPTION_TIMER != 0 {
        v.write(Guest32::PreemptionTimerValue, PREEMPTION_SLICE)?;
    }
    Ok(())
}
