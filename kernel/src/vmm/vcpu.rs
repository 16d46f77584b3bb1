// SPDX-License-Identifier: MIT OR Apache-2.0
//! The vendor-neutral virtual CPU interface.
//!
//! A back end (VT-x in `vmx/`, AMD-V in `svm/`) runs the guest until something needs the
//! generic monitor, absorbing instruction-level exits itself (CPUID, MSR access, CR access,
//! XSETBV, interrupt windows; what those do to the guest's registers is emulated once, for both,
//! in [`super::emulate`]), and returns an [`Exit`]. One generic loop (`vmm::run`) handles every
//! [`Exit`] the same way whatever the vendor.

use core::fmt;

use super::cpu_state::CpuState;
use super::decode::{CodeMode, GuestRead, PagingState};
use super::devices::lapic::MsrFault;

/// Guest general-purpose registers kept by the hypervisor across VM exits (RSP and RIP live in
/// the VMCS/VMCB). The entry assembly of each back end takes its field offsets from here
/// (`entry_asm!`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct GuestRegs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    /// Unused, always 0 (see [`CpuState`]).
    pub reserved: u64,
    pub cr2: u64,
}

/// Assembles a back end's VM entry code: `vmm/entry_regs.S` (the [`GuestRegs`] field offsets,
/// given here as `const` operands so the layout is stated once, and the macros that save and
/// load host and guest registers), then `$entry` (a path relative to the invoking file), then
/// the removal of those macros, so the next back end's block can define them again.
#[cfg(target_os = "none")]
macro_rules! entry_asm {
    ($entry:literal) => {
        core::arch::global_asm!(
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/vmm/entry_regs.S")),
            include_str!($entry),
            ".purgem LOAD_GUEST_GPRS",
            ".purgem STORE_GUEST_GPRS",
            ".purgem PUSH_HOST_CALLEE_SAVED",
            ".purgem POP_HOST_CALLEE_SAVED",
            rax = const core::mem::offset_of!($crate::vmm::vcpu::GuestRegs, rax),
            rbx = const core::mem::offset_of!($crate::vmm::vcpu::GuestRegs, rbx),
            rcx = const core::mem::offset_of!($crate::vmm::vcpu::GuestRegs, rcx),
            rdx = const core::mem::offset_of!($crate::vmm::vcpu::GuestRegs, rdx),
            rsi = const core::mem::offset_of!($crate::vmm::vcpu::GuestRegs, rsi),
            rdi = const core::mem::offset_of!($crate::vmm::vcpu::GuestRegs, rdi),
            rbp = const core::mem::offset_of!($crate::vmm::vcpu::GuestRegs, rbp),
            r8 = const core::mem::offset_of!($crate::vmm::vcpu::GuestRegs, r8),
            r9 = const core::mem::offset_of!($crate::vmm::vcpu::GuestRegs, r9),
            r10 = const core::mem::offset_of!($crate::vmm::vcpu::GuestRegs, r10),
            r11 = const core::mem::offset_of!($crate::vmm::vcpu::GuestRegs, r11),
            r12 = const core::mem::offset_of!($crate::vmm::vcpu::GuestRegs, r12),
            r13 = const core::mem::offset_of!($crate::vmm::vcpu::GuestRegs, r13),
            r14 = const core::mem::offset_of!($crate::vmm::vcpu::GuestRegs, r14),
            r15 = const core::mem::offset_of!($crate::vmm::vcpu::GuestRegs, r15),
            cr2 = const core::mem::offset_of!($crate::vmm::vcpu::GuestRegs, cr2),
        );
    };
}
#[cfg(target_os = "none")]
pub(crate) use entry_asm;

/// How the guest starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestStart {
    /// Real mode at `segment:offset` (VT-x needs unrestricted guest).
    Real {
        /// Code segment.
        segment: u16,
        /// Instruction pointer.
        ip: u16,
    },
    /// 32-bit protected mode, flat segments, paging off (VT-x needs unrestricted guest), as a
    /// Multiboot loader hands over.
    Protected32 {
        /// Entry point.
        eip: u32,
    },
    /// 64-bit mode with the guest's own page tables at `cr3` (identity map built by the loader).
    Long64 {
        /// Entry point.
        rip: u64,
        /// Guest CR3.
        cr3: u64,
    },
}

/// A segment register's initial state, with access rights in the VMX layout (Intel SDM Vol. 3C,
/// Table 26-2; SVM's attribute field is the same bits packed, see `svm::vmcb::Segment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Selector.
    pub selector: u16,
    /// Base address.
    pub base: u64,
    /// Limit.
    pub limit: u32,
    /// Access rights: type, S, DPL, P in bits 7:0; AVL, L, D/B, G in bits 15:12.
    pub rights: u32,
}

impl Segment {
    /// This segment as TR after LTR loaded it: LTR marks the TSS busy (SDM Vol. 2A, LTR; APM
    /// Vol. 3, LTR), so a present TR holds a busy TSS (type 11, or 3 for a 16-bit TSS), as a
    /// VT-x entry requires (SDM Vol. 3C, 27.3.1.2). AMD-V does not check the type VMRUN
    /// loads, and QEMU's SVM stores TR's cached type from before LTR set the busy bit (9 for a
    /// Linux guest): the checkpoint records the architectural value.
    pub fn as_loaded_tr(mut self) -> Self {
        const TSS_AVAILABLE_32_64: u32 = 9;
        const TSS_AVAILABLE_16: u32 = 1;
        const BUSY: u32 = 2;
        if matches!(self.rights & 0x1F, TSS_AVAILABLE_32_64 | TSS_AVAILABLE_16) {
            self.rights |= BUSY;
        }
        self
    }
}

/// The register state a guest starts with (both back ends load it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialState {
    /// CR0 as the guest should see it.
    pub cr0: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4 as the guest should see it.
    pub cr4: u64,
    /// EFER as the guest should see it.
    pub efer: u64,
    /// CS.
    pub code: Segment,
    /// DS, ES, FS, GS, SS.
    pub data: Segment,
    /// Entry point.
    pub rip: u64,
}

const CR0_PE: u64 = 1 << 0;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

impl GuestStart {
    /// Control registers, segments and entry point for this way of starting (real mode: CS at
    /// `segment << 4`; protected mode: flat 4 GiB code and data, as Multiboot requires; long
    /// mode: flat 64-bit code, PAE paging, EFER.LME/LMA).
    pub fn initial_state(self) -> InitialState {
        let flat = |selector, rights| Segment {
            selector,
            base: 0,
            limit: 0xFFFF_FFFF,
            rights,
        };
        match self {
            GuestStart::Real { segment, ip } => InitialState {
                cr0: CR0_ET | CR0_NE,
                cr3: 0,
                cr4: 0,
                efer: 0,
                code: Segment {
                    selector: segment,
                    base: u64::from(segment) << 4,
                    limit: 0xFFFF,
                    rights: 0x9B,
                },
                data: Segment {
                    selector: 0,
                    base: 0,
                    limit: 0xFFFF,
                    rights: 0x93,
                },
                rip: u64::from(ip),
            },
            GuestStart::Protected32 { eip } => InitialState {
                cr0: CR0_PE | CR0_ET | CR0_NE,
                cr3: 0,
                cr4: 0,
                efer: 0,
                code: flat(0x10, 0xC09B),
                data: flat(0x18, 0xC093),
                rip: u64::from(eip),
            },
            GuestStart::Long64 { rip, cr3 } => InitialState {
                cr0: CR0_PE | CR0_ET | CR0_NE | CR0_PG,
                cr3,
                cr4: CR4_PAE,
                efer: EFER_LME | EFER_LMA,
                code: flat(0x08, 0xA09B),
                data: flat(0x10, 0xC093),
                rip,
            },
        }
    }
}

/// Access width of a port or MMIO access, in bytes.
pub type Width = u8;

/// Why the guest stopped running, in vendor-neutral terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exit {
    /// `in` from a port: the monitor supplies the value with [`Vcpu::complete_io_in`].
    IoIn {
        /// Port number.
        port: u16,
        /// Access width.
        width: Width,
    },
    /// `out` to a port.
    IoOut {
        /// Port number.
        port: u16,
        /// Access width.
        width: Width,
        /// Value written (low `width` bytes).
        value: u32,
    },
    /// VMCALL/VMMCALL: hypercall number in RAX, arguments in RBX, RCX, RDX, RSI (see `hypercall`).
    Hypercall,
    /// A guest-physical access the nested page tables do not allow.
    NestedPageFault {
        /// Guest-physical address.
        gpa: u64,
        /// The access was a write.
        write: bool,
        /// The access was an instruction fetch.
        exec: bool,
        /// The processor's own access to a guest paging-structure entry during a page walk
        /// (VT-x: exit qualification bit 7 or 8 clear, SDM Vol. 3C, Table 28-7; AMD-V:
        /// EXITINFO1 bit 33, APM Vol. 2, 15.25.6), not the access of the instruction: never a
        /// device access.
        paging_structure: bool,
    },
    /// HLT with interrupts enabled: sleep until an interrupt is due.
    Halt,
    /// The guest cannot continue (triple fault / shutdown, or HLT with interrupts disabled).
    Shutdown,
    /// The hardware refused to enter the guest (invalid guest state etc.).
    EntryFailed {
        /// Vendor-specific reason code.
        code: u64,
    },
    /// A host interrupt arrived while the guest ran (already acknowledged and handled).
    HostInterrupt,
    /// The preemption timer expired: the monitor's turn (time slices, epochs).
    Preempted,
    /// An exit this back end does not handle.
    Unhandled {
        /// Vendor exit code.
        code: u64,
        /// Vendor qualification / info.
        info: u64,
    },
}

/// Why a vCPU could not be created or run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcpuError {
    /// Out of host memory.
    OutOfMemory,
    /// A control the back end requires is not offered by this CPU (bits named by value).
    MissingControls(&'static str, u32),
    /// Virtualization is not enabled on this CPU.
    NotEnabled,
    /// A hardware instruction failed (vendor code).
    Hardware(&'static str, u64),
    /// A saved state this vCPU cannot enter (what is wrong with it).
    InvalidState(&'static str),
}

impl fmt::Display for VcpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VcpuError::OutOfMemory => write!(f, "out of memory"),
            VcpuError::MissingControls(what, bits) => {
                write!(f, "the CPU cannot set {what} controls {bits:#x}")
            }
            VcpuError::NotEnabled => {
                write!(f, "hardware virtualization is not enabled on this CPU")
            }
            VcpuError::Hardware(what, code) => write!(f, "{what} failed ({code:#x})"),
            VcpuError::InvalidState(what) => write!(f, "cannot load the vCPU state: {what}"),
        }
    }
}

/// The guest's interrupt controller as a vCPU sees it: the back end asks before each entry
/// whether an interrupt is pending and acknowledges it when the guest can take it. The
/// controller includes the vCPU's local APIC, whose MSRs and task priority (CR8) the back end
/// reaches through it.
pub trait InterruptSource {
    /// The vector that would be delivered now, after bringing timers up to date.
    fn pending(&mut self) -> Option<u8>;
    /// The interrupt-acknowledge cycle: the controller hands over its highest-priority request.
    fn acknowledge(&mut self) -> Option<u8>;
    /// RDMSR of an MSR the controller implements (IA32_APIC_BASE, IA32_TSC_DEADLINE); `None`
    /// if `index` is not one of them.
    fn read_msr(&mut self, index: u32) -> Option<u64>;
    /// WRMSR of `value` to an MSR the controller implements, the guest's TSC reading
    /// `guest_tsc`; `None` if `index` is not one of them, `Some(Err)` for #GP(0).
    fn write_msr(&mut self, index: u32, value: u64, guest_tsc: u64)
    -> Option<Result<(), MsrFault>>;
    /// CR8 as the guest reads it: the local APIC's TPR bits 7:4 (SDM Vol. 3A, 11.8.6).
    fn cr8(&self) -> u64;
    /// MOV to CR8 of `value` (bits 3:0, already checked for reserved bits): sets TPR bits 7:4.
    fn set_cr8(&mut self, value: u64);
}

/// No interrupt controller at all: nothing is ever pending, no MSR is the controller's (the
/// virtual MSR file answers them), CR8 reads 0 and writes are dropped. For guests that take no
/// interrupts (self tests, unit tests of the emulation layer).
pub struct NoInterrupts;

impl InterruptSource for NoInterrupts {
    fn pending(&mut self) -> Option<u8> {
        None
    }
    fn acknowledge(&mut self) -> Option<u8> {
        None
    }
    fn read_msr(&mut self, _index: u32) -> Option<u64> {
        None
    }
    fn write_msr(
        &mut self,
        _index: u32,
        _value: u64,
        _guest_tsc: u64,
    ) -> Option<Result<(), MsrFault>> {
        None
    }
    fn cr8(&self) -> u64 {
        0
    }
    fn set_cr8(&mut self, _value: u64) {}
}

/// What the monitor needs to emulate the instruction at the guest's RIP
/// ([`crate::vmm::decode::mmio::fetch`]) and its effect on RSP and RFLAGS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstructionContext {
    /// The registers that select the guest's paging mode.
    pub paging: PagingState,
    /// The code size CS selects.
    pub mode: CodeMode,
    /// Linear address of the instruction (CS base + RIP, [`CodeMode::linear_ip`]).
    pub linear_ip: u64,
    /// RSP.
    pub rsp: u64,
    /// RFLAGS.
    pub rflags: u64,
}

/// A virtual CPU of some vendor.
pub trait Vcpu {
    /// Runs the guest until an [`Exit`] the generic monitor must handle, delivering external
    /// interrupts from `irq` whenever the guest can take them (interrupt windows are handled
    /// inside the back end). `mem` is the guest's memory, for back ends that must read the
    /// instruction that caused an exit (SVM without next-RIP).
    fn run(&mut self, irq: &mut dyn InterruptSource, mem: &mut dyn GuestRead) -> Exit;
    /// General registers.
    fn regs(&mut self) -> &mut GuestRegs;
    /// Guest RIP.
    fn rip(&self) -> u64;
    /// Completes an [`Exit::IoIn`] with the value read.
    fn complete_io_in(&mut self, value: u32);
    /// The paging state, code size, instruction address, RSP and RFLAGS of the guest, for
    /// emulating the instruction that caused an [`Exit::NestedPageFault`].
    ///
    /// # Errors
    /// The back end could not read its control structure.
    fn instruction_context(&mut self) -> Result<InstructionContext, VcpuError>;
    /// Completes an emulated instruction: RSP and RFLAGS take these values (the general
    /// registers were changed through [`Vcpu::regs`]) and RIP moves `advance` bytes (0: it runs
    /// again, as a REP STOS with iterations left), wrapping as [`CodeMode::next_ip`] does; a
    /// move ends any STI or MOV SS interrupt shadow.
    ///
    /// # Errors
    /// The back end could not write its control structure.
    fn complete_instruction(
        &mut self,
        rsp: u64,
        rflags: u64,
        advance: usize,
    ) -> Result<(), VcpuError>;
    /// Bounds how long the guest may run without exiting, in the back end's timer ticks (the
    /// VMX-preemption timer); false if the back end has no such timer.
    fn set_time_slice(&mut self, ticks: u32) -> bool;
    /// Invalidates this vCPU's cached nested (guest-physical) translations of its guest, before
    /// it next runs: required after the nested page table lost rights or dirty flags
    /// ([`crate::vmm::guest_mem::GuestMemory::take_flush_request`]). VT-x: INVEPT for this
    /// EPTP just before the next VM entry; AMD-V: a TLB flush with the next VMRUN.
    fn flush_nested_tlb(&mut self);
    /// Starts logging the guest pages this vCPU dirties in hardware (VT-x page-modification
    /// logging), for [`Vcpu::drain_dirty_log`]. Pages dirtied before are not logged. False if
    /// the back end has no such log (AMD-V, or VT-x without PML or EPT dirty flags).
    fn enable_dirty_log(&mut self) -> bool;
    /// Appends to `out` the frame numbers of the guest pages whose nested dirty flag this vCPU
    /// set since the last drain (in log order; a page appears once per 0→1 transition of its
    /// flag) and empties the log. Returns false, appending nothing, when there is no hardware
    /// log ([`Vcpu::enable_dirty_log`]); the caller then walks the nested table instead. The
    /// log records only flags going from 0 to 1: after draining, the caller clears the dirty
    /// flags of those pages and flushes ([`Vcpu::flush_nested_tlb`]) so their next writes are
    /// logged again.
    fn drain_dirty_log(&mut self, out: &mut alloc::vec::Vec<u64>) -> bool;
    /// Writes a human-readable dump of the guest state (for failed or unknown exits).
    fn dump(&mut self, out: &mut dyn fmt::Write) -> fmt::Result;
    /// Captures the guest's architectural state between runs, for a checkpoint (see
    /// [`CpuState`]). Should the hardware refuse to read the vCPU's control structure (VMREAD
    /// after this vCPU's own VMPTRLD cannot fail), the error is logged and the result is
    /// [`CpuState::UNREADABLE`], which [`CpuState::check`], decoding and loading all refuse:
    /// a wrong state can never be resumed.
    fn save_state(&mut self) -> CpuState;
    /// Replaces the guest's state with `state` (checked first: [`CpuState::check`]), so the
    /// next [`Vcpu::run`] resumes the guest exactly where the vCPU that saved it stopped —
    /// typically on a fresh vCPU of the same guest memory. On an error the vCPU's state is
    /// undefined: do not run it.
    fn restore_state(&mut self, state: &CpuState) -> Result<(), VcpuError>;
}

/// The benchmark baseline of the `bench` module, kept out of [`Vcpu`]: nothing else may run a
/// guest past the generic monitor.
pub trait BareLoop {
    /// `n` entries of a guest looping on the hypercall instruction, with nothing in between but
    /// what every monitor must do. TSC ticks taken, or `None` if some other exit came.
    fn bare_hypercall_loop(&mut self, n: u64) -> Option<u64>;
}

#[cfg(test)]
mod tests {
    use super::Segment;

    /// QEMU's SVM leaves TR's cached type at 9 after LTR; a checkpoint records the busy TSS
    /// the architecture defines, which the state check (and a VT-x entry) requires.
    #[test]
    fn tr_is_recorded_busy() {
        let tr = |rights| Segment {
            selector: 0x40,
            base: 0xFFFF_FE00_0000_3000,
            limit: 0x4087,
            rights,
        };
        assert_eq!(tr(0x89).as_loaded_tr().rights, 0x8B, "available 64-bit TSS");
        assert_eq!(tr(0x8B).as_loaded_tr().rights, 0x8B, "already busy");
        assert_eq!(tr(0x81).as_loaded_tr().rights, 0x83, "16-bit TSS");
        assert_eq!(
            tr(0x93).as_loaded_tr().rights,
            0x93,
            "a data segment is left alone"
        );
    }
}
