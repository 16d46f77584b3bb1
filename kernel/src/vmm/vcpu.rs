// SPDX-License-Identifier: MIT OR Apache-2.0
//! The vendor-neutral virtual CPU interface.
//!
//! A back end (VT-x in `vmx/`, AMD-V later in `svm/`) runs the guest until something needs the
//! generic monitor, absorbing instruction-level exits itself (CPUID, MSR access, CR access,
//! XSETBV, interrupt windows), and returns an [`Exit`]. One generic loop (`vmm::run`) handles
//! every [`Exit`] the same way whatever the vendor.

use core::fmt;

/// Guest general-purpose registers kept by the hypervisor across VM exits (RSP and RIP live in
/// the VMCS/VMCB). Layout fixed by the entry assembly of each back end.
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
    /// Unused slot (keeps CR2 at index 16, as the entry code expects).
    pub reserved: u64,
    pub cr2: u64,
}

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
        }
    }
}

/// The guest's interrupt controller as a vCPU sees it: the back end asks before each entry
/// whether an interrupt is pending and acknowledges it when the guest can take it.
pub trait InterruptSource {
    /// The vector that would be delivered now, after bringing timers up to date.
    fn pending(&mut self) -> Option<u8>;
    /// The interrupt-acknowledge cycle: the controller hands over its highest-priority request.
    fn acknowledge(&mut self) -> Option<u8>;
}

/// A virtual CPU of some vendor.
pub trait Vcpu {
    /// Runs the guest until an [`Exit`] the generic monitor must handle, delivering external
    /// interrupts from `irq` whenever the guest can take them (interrupt windows are handled
    /// inside the back end).
    fn run(&mut self, irq: &mut dyn InterruptSource) -> Exit;
    /// General registers.
    fn regs(&mut self) -> &mut GuestRegs;
    /// Guest RIP.
    fn rip(&self) -> u64;
    /// Completes an [`Exit::IoIn`] with the value read.
    fn complete_io_in(&mut self, value: u32);
    /// Skips the instruction that caused the last exit.
    fn skip_instruction(&mut self);
    /// Bounds how long the guest may run without exiting, in the back end's timer ticks (the
    /// VMX-preemption timer); false if the back end has no such timer.
    fn set_time_slice(&mut self, ticks: u32) -> bool;
    /// Benchmark baseline: `n` entries of a guest looping on the hypercall instruction, with
    /// nothing in between but what every monitor must do. TSC ticks taken, or `None` if some
    /// other exit came.
    fn bare_hypercall_loop(&mut self, n: u64) -> Option<u64>;
    /// Writes a human-readable dump of the guest state (for failed or unknown exits).
    fn dump(&mut self, out: &mut dyn fmt::Write) -> fmt::Result;
}
