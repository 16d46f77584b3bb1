// SPDX-License-Identifier: MIT OR Apache-2.0
//! A vCPU's architectural state, vendor neutral, for checkpoints: what a fresh vCPU of either
//! back end needs to resume a single-vCPU guest exactly where another one stopped
//! ([`crate::vmm::vcpu::Vcpu::save_state`] and [`crate::vmm::vcpu::Vcpu::restore_state`]).
//!
//! Values are as the *guest* sees them: CR0/CR4 without the bits VT-x forces (read shadows),
//! EFER without AMD-V's SVME, segment access rights in the VMX layout (Intel SDM Vol. 3C, 25.4.1
//! "Guest Register State", table "Format of Access Rights"; bit 16 "unusable"), which
//! `svm::vmcb::Segment` converts for the VMCB. [`CpuState::check`] holds the rules a state must
//! meet to be entered (SDM Vol. 3C, 27.3.1 "Checks on the Guest State Area"; AMD APM Vol. 2,
//! 15.5.1 "Basic Operation" for VMRUN's consistency checks); `codec` is the wire encoding.
//!
//! x87/SSE state, the TSC, TSC_AUX, the debug registers and the halted condition are in
//! [`ExtendedState`] (encoding version 2). Not captured: NMI blocking (Castor never delivers
//! NMIs to guests).

mod check;
mod codec;
mod extended;
#[cfg(test)]
mod tests;
#[cfg(target_os = "none")]
mod unswitched;

pub use codec::{ENCODED_LEN, MAGIC, VERSION};
pub use extended::{
    ExtendedState, FX_AREA_LEN, FpuState, FxArea, GUEST_XCR0, check_layout, guest_tsc,
    mxcsr_loadable, pending_debug_for_entry, tsc_offset,
};
#[cfg(target_os = "none")]
pub use unswitched::{Registers as UnswitchedRegisters, Unswitched};

use core::fmt;

use super::msr::{self, VirtualMsrs};
use super::vcpu::{GuestRegs, Segment, VcpuError};

/// A descriptor-table register (GDTR, IDTR).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DescriptorTable {
    /// Linear base address.
    pub base: u64,
    /// Limit (bytes - 1).
    pub limit: u16,
}

/// The kind of an event being injected, numbered as VT-x's interruption type (SDM Vol. 3C,
/// 25.8.3 "VM-Entry Controls for Event Injection"); AMD-V's EVENTINJ types 0, 2, 3 and 4 have
/// the same numbers (APM Vol. 2, 15.20 "Event Injection").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum EventKind {
    /// External interrupt.
    External = 0,
    /// Non-maskable interrupt (vector 2).
    Nmi = 2,
    /// Hardware exception (vectors 0-31).
    HardwareException = 3,
    /// Software interrupt (INT n).
    SoftwareInterrupt = 4,
    /// Privileged software exception (INT1 / ICEBP).
    PrivilegedSoftwareException = 5,
    /// Software exception (INT3, INTO).
    SoftwareException = 6,
}

impl EventKind {
    /// The kind numbered `n`, or `None` for a reserved or unsupported number.
    pub const fn from_number(n: u8) -> Option<Self> {
        Some(match n {
            0 => EventKind::External,
            2 => EventKind::Nmi,
            3 => EventKind::HardwareException,
            4 => EventKind::SoftwareInterrupt,
            5 => EventKind::PrivilegedSoftwareException,
            6 => EventKind::SoftwareException,
            _ => return None,
        })
    }

    /// Whether the event comes from an instruction (its length matters for VT-x injection).
    pub const fn is_software(self) -> bool {
        matches!(
            self,
            EventKind::SoftwareInterrupt
                | EventKind::PrivilegedSoftwareException
                | EventKind::SoftwareException
        )
    }
}

/// An event the vCPU will deliver to the guest on its next entry (injected by the monitor, or
/// re-injected because an exit interrupted its delivery).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Kind.
    pub kind: EventKind,
    /// Vector.
    pub vector: u8,
    /// Error code pushed with it, if any.
    pub error_code: Option<u32>,
    /// Length of the instruction that caused a software event (VT-x pushes RIP plus this;
    /// 0 from AMD-V, whose RIP already points past it).
    pub instruction_len: u8,
}

/// The emulated MSRs a vCPU keeps in software ([`VirtualMsrs`]) with guest-visible values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmulatedMsrs {
    /// IA32_PAT.
    pub pat: u64,
    /// IA32_MTRR_DEF_TYPE.
    pub mtrr_def_type: u64,
    /// IA32_APIC_BASE (fixed per vCPU index: a state only loads into a vCPU with the same).
    pub apic_base: u64,
}

impl EmulatedMsrs {
    /// The guest-visible values of `msrs`.
    pub fn of(msrs: &VirtualMsrs) -> Self {
        // Reads of these three never fault (see `VirtualMsrs::read`); 0 cannot come back.
        let read = |m| msrs.read(m, 0).unwrap_or(0);
        Self {
            pat: read(msr::PAT),
            mtrr_def_type: read(msr::MTRR_DEF_TYPE),
            apic_base: read(msr::APIC_BASE),
        }
    }

    /// `msrs` with these values written as the guest would write them; `Err` names the MSR
    /// the vCPU refuses (an APIC base of another vCPU index, an invalid PAT or MTRR type).
    pub fn apply(&self, msrs: &VirtualMsrs) -> Result<VirtualMsrs, &'static str> {
        let mut out = msrs.clone();
        out.write(msr::PAT, self.pat).map_err(|()| "IA32_PAT")?;
        out.write(msr::MTRR_DEF_TYPE, self.mtrr_def_type)
            .map_err(|()| "IA32_MTRR_DEF_TYPE")?;
        out.write(msr::APIC_BASE, self.apic_base)
            .map_err(|()| "IA32_APIC_BASE (another vCPU's)")?;
        Ok(out)
    }
}

/// Everything needed to resume a single-vCPU guest exactly (see the module documentation for
/// what is left out and why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuState {
    /// General registers; `regs.cr2` is the guest's CR2 and `regs.reserved` is always 0.
    pub regs: GuestRegs,
    /// RIP.
    pub rip: u64,
    /// RSP.
    pub rsp: u64,
    /// RFLAGS.
    pub rflags: u64,
    /// CR0 as the guest reads it.
    pub cr0: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4 as the guest reads it.
    pub cr4: u64,
    /// IA32_EFER as the guest reads it.
    pub efer: u64,
    /// CS.
    pub cs: Segment,
    /// DS.
    pub ds: Segment,
    /// ES.
    pub es: Segment,
    /// FS (its base is IA32_FS_BASE).
    pub fs: Segment,
    /// GS (its base is IA32_GS_BASE).
    pub gs: Segment,
    /// SS.
    pub ss: Segment,
    /// TR.
    pub tr: Segment,
    /// LDTR.
    pub ldtr: Segment,
    /// GDTR.
    pub gdtr: DescriptorTable,
    /// IDTR.
    pub idtr: DescriptorTable,
    /// IA32_SYSENTER_CS.
    pub sysenter_cs: u64,
    /// IA32_SYSENTER_ESP.
    pub sysenter_esp: u64,
    /// IA32_SYSENTER_EIP.
    pub sysenter_eip: u64,
    /// IA32_STAR.
    pub star: u64,
    /// IA32_LSTAR.
    pub lstar: u64,
    /// IA32_CSTAR.
    pub cstar: u64,
    /// IA32_FMASK.
    pub sfmask: u64,
    /// IA32_KERNEL_GS_BASE.
    pub kernel_gs_base: u64,
    /// Emulated MSRs.
    pub msrs: EmulatedMsrs,
    /// DR7.
    pub dr7: u64,
    /// The four PDPTE registers while PAE paging is active (CR0.PG, CR4.PAE, not EFER.LMA),
    /// else 0. VT-x with EPT keeps them in the VMCS, loads them on entry and stores them on
    /// exit (SDM Vol. 3C, 27.3.2.4 "Loading Page-Directory-Pointer-Table Entries", 28.3.4
    /// "Saving Non-Register State"); AMD-V's VMCB has none (APM Vol. 2, Table B-2), so a state
    /// saved there holds zeros, which VT-x refuses to load for a guest using PAE paging.
    pub pdpte: [u64; 4],
    /// Blocking by STI (interrupt shadow after STI; needs RFLAGS.IF).
    pub sti_blocking: bool,
    /// Blocking by MOV SS / POP SS.
    pub mov_ss_blocking: bool,
    /// The event delivered on the next entry, if any.
    pub event: Option<Event>,
    /// The monitor asked to regain control as soon as the guest can take an interrupt
    /// (VT-x interrupt-window exiting, AMD-V V_IRQ with the VINTR intercept).
    pub interrupt_window: bool,
    /// Width of an `IN` whose value the monitor has not supplied yet
    /// ([`crate::vmm::vcpu::Vcpu::complete_io_in`]).
    pub pending_io_in: Option<u8>,
    /// FPU, TSC, debug registers, halted (encoding version 2).
    pub ext: ExtendedState,
}

/// Why bytes are not a valid [`CpuState`], or a state cannot be entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuStateError {
    /// Not [`ENCODED_LEN`] bytes.
    Length(usize),
    /// Does not start with [`MAGIC`].
    Magic,
    /// An encoding version this build does not read.
    Version(u16),
    /// Reserved bits or bytes are not zero, or a field's encoding is not the canonical one.
    Reserved(&'static str),
    /// A value the hardware would refuse at VM entry, or that no CPU can be in.
    Invalid(&'static str),
    /// An x87/SSE/AVX image this host cannot load: the XCR0 components it holds and its size.
    XsaveLayout {
        /// XCR0 of the image.
        xcr0: u64,
        /// Its size in bytes.
        size: u32,
    },
}

impl fmt::Display for CpuStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuStateError::Length(n) => {
                write!(f, "vCPU state is {n} bytes, expected {ENCODED_LEN}")
            }
            CpuStateError::Magic => write!(f, "not a vCPU state (bad magic)"),
            CpuStateError::Version(v) => {
                write!(f, "vCPU state version {v}, this build reads {VERSION}")
            }
            CpuStateError::Reserved(what) => write!(f, "vCPU state: reserved bits set in {what}"),
            CpuStateError::Invalid(what) => write!(f, "vCPU state: invalid {what}"),
            CpuStateError::XsaveLayout { xcr0, size } => write!(
                f,
                "vCPU state: x87/SSE/AVX image with XCR0 {xcr0:#x} in {size} bytes; this host \
                 loads XCR0 {GUEST_XCR0:#x} (x87, SSE) in {FX_AREA_LEN} bytes"
            ),
        }
    }
}

impl From<CpuStateError> for VcpuError {
    fn from(e: CpuStateError) -> Self {
        match e {
            CpuStateError::Reserved(what) | CpuStateError::Invalid(what) => {
                VcpuError::InvalidState(what)
            }
            CpuStateError::Length(_) | CpuStateError::Magic | CpuStateError::Version(_) => {
                VcpuError::InvalidState("not a vCPU state encoding")
            }
            CpuStateError::XsaveLayout { .. } => {
                VcpuError::InvalidState("x87/SSE/AVX layout this host cannot load")
            }
        }
    }
}

/// A segment's access rights mark it unusable (VMX layout, bit 16).
pub const UNUSABLE: u32 = 1 << 16;

/// RFLAGS.IF.
pub const RFLAGS_IF: u64 = 1 << 9;
/// RFLAGS.VM.
pub const RFLAGS_VM: u64 = 1 << 17;
/// CR0.PE.
pub const CR0_PE: u64 = 1 << 0;
/// CR0.PG.
pub const CR0_PG: u64 = 1 << 31;
/// CR4.PAE.
pub const CR4_PAE: u64 = 1 << 5;
/// EFER.LMA.
pub const EFER_LMA: u64 = 1 << 10;

const NO_SEGMENT: Segment = Segment {
    selector: 0,
    base: 0,
    limit: 0,
    rights: 0,
};

impl CpuState {
    /// What [`crate::vmm::vcpu::Vcpu::save_state`] returns if the hardware would not give the
    /// state up: all zeros, which [`CpuState::check`] refuses (RFLAGS bit 1 is always set,
    /// CS and TR must be usable), so it can be neither decoded nor loaded.
    pub const UNREADABLE: CpuState = CpuState {
        regs: GuestRegs {
            rax: 0,
            rbx: 0,
            rcx: 0,
            rdx: 0,
            rsi: 0,
            rdi: 0,
            rbp: 0,
            r8: 0,
            r9: 0,
            r10: 0,
            r11: 0,
            r12: 0,
            r13: 0,
            r14: 0,
            r15: 0,
            reserved: 0,
            cr2: 0,
        },
        rip: 0,
        rsp: 0,
        rflags: 0,
        cr0: 0,
        cr3: 0,
        cr4: 0,
        efer: 0,
        cs: NO_SEGMENT,
        ds: NO_SEGMENT,
        es: NO_SEGMENT,
        fs: NO_SEGMENT,
        gs: NO_SEGMENT,
        ss: NO_SEGMENT,
        tr: NO_SEGMENT,
        ldtr: NO_SEGMENT,
        gdtr: DescriptorTable { base: 0, limit: 0 },
        idtr: DescriptorTable { base: 0, limit: 0 },
        sysenter_cs: 0,
        sysenter_esp: 0,
        sysenter_eip: 0,
        star: 0,
        lstar: 0,
        cstar: 0,
        sfmask: 0,
        kernel_gs_base: 0,
        msrs: EmulatedMsrs {
            pat: 0,
            mtrr_def_type: 0,
            apic_base: 0,
        },
        dr7: 0,
        pdpte: [0; 4],
        sti_blocking: false,
        mov_ss_blocking: false,
        event: None,
        interrupt_window: false,
        pending_io_in: None,
        ext: ExtendedState::RESET,
    };

    /// The eight segment registers, in encoding order: CS, DS, ES, FS, GS, SS, TR, LDTR.
    pub fn segments(&self) -> [&Segment; 8] {
        [
            &self.cs, &self.ds, &self.es, &self.fs, &self.gs, &self.ss, &self.tr, &self.ldtr,
        ]
    }

    /// The segment registers, mutably, in [`CpuState::segments`] order.
    pub fn segments_mut(&mut self) -> [&mut Segment; 8] {
        [
            &mut self.cs,
            &mut self.ds,
            &mut self.es,
            &mut self.fs,
            &mut self.gs,
            &mut self.ss,
            &mut self.tr,
            &mut self.ldtr,
        ]
    }

    /// Whether the guest uses PAE paging (the PDPTEs are live): CR0.PG, CR4.PAE, EFER.LMA
    /// clear (SDM Vol. 3A, 4.1.1).
    pub fn pae_paging(&self) -> bool {
        self.cr0 & CR0_PG != 0 && self.cr4 & CR4_PAE != 0 && self.efer & EFER_LMA == 0
    }

    /// Checks every rule a state must meet to be entered (see the module documentation).
    pub fn check(&self) -> Result<(), CpuStateError> {
        check::check(self)
    }
}
