// SPDX-License-Identifier: MIT OR Apache-2.0
//! The hardware virtualization back end, chosen at run time from CPUID so one image runs on
//! Intel (VT-x with EPT) and AMD (AMD-V with NPT). Code that runs guests is written once,
//! generic over [`Backend`], and [`dispatch`]ed to whichever this CPU offers.

use alloc::string::String;

use super::guest_mem::GuestMemory;
use super::svm::caps::SvmCaps;
use super::svm::npt::NptFormat;
use super::svm::vcpu::SvmVcpu;
use super::vcpu::{BareLoop, GuestStart, Vcpu, VcpuError};
use super::vmx::caps::VmxCaps;
use super::vmx::ept::EptFormat;
use super::vmx::vcpu::VmxVcpu;
use crate::mm::pagetable::Format;

/// A hardware virtualization back end.
pub trait Backend {
    /// Its nested page table format (EPT, NPT).
    type Format: Format;
    /// Its vCPU (with the benchmark's [`BareLoop`], which only `bench` uses).
    type Vcpu: Vcpu + BareLoop;
    /// Name shown to users.
    const NAME: &'static str;
    /// Whether the back end can bound guest run time by itself ([`Vcpu::set_time_slice`]).
    const HAS_PREEMPTION_TIMER: bool;
    /// The exit code with which a guest access through [`Backend::malformed_leaf`] is reported
    /// ([`crate::vmm::vcpu::Exit::Unhandled`], with the guest-physical address as info).
    const MALFORMED_EXIT: u64;
    /// A 2 MiB leaf entry for host address `phys` that the hardware must refuse as malformed.
    fn malformed_leaf(phys: u64) -> u64;
    /// Whether the processor sets dirty flags in the nested table's leaves (what
    /// `GuestMemory::harvest_dirty` and a hardware dirty log depend on).
    fn nested_dirty_flags() -> bool;
    /// A vCPU of the guest whose memory is `mem`, starting as `start`.
    fn new_vcpu(
        index: u32,
        mem: &GuestMemory<Self::Format>,
        start: GuestStart,
    ) -> Result<Self::Vcpu, VcpuError>;
}

/// Intel VT-x with EPT.
pub struct Vmx;

impl Backend for Vmx {
    type Format = EptFormat;
    type Vcpu = VmxVcpu;
    const NAME: &'static str = "VT-x";
    const HAS_PREEMPTION_TIMER: bool = true;
    /// EPT misconfiguration (SDM Vol. 3D, Table C-1).
    const MALFORMED_EXIT: u64 = 49;

    /// Write without read, a misconfiguration (SDM Vol. 3C, 29.3.3.1), as a large page.
    fn malformed_leaf(phys: u64) -> u64 {
        phys | 0b010 | (1 << 7)
    }

    /// Optional: EPT accessed and dirty flags (SDM Vol. 3C, 29.3.5).
    fn nested_dirty_flags() -> bool {
        VmxCaps::read().is_ok_and(|caps| caps.has_ept_ad())
    }

    fn new_vcpu(
        index: u32,
        mem: &GuestMemory<EptFormat>,
        start: GuestStart,
    ) -> Result<VmxVcpu, VcpuError> {
        VmxVcpu::new(index, mem, start)
    }
}

/// AMD-V with nested paging.
pub struct Svm;

impl Backend for Svm {
    type Format = NptFormat;
    type Vcpu = SvmVcpu;
    const NAME: &'static str = "AMD-V";
    const HAS_PREEMPTION_TIMER: bool = false;
    /// Nested page fault; reported as unhandled when the fault is a reserved-bit violation.
    const MALFORMED_EXIT: u64 = 0x400;

    /// A 2 MiB leaf with reserved bit 13 set (APM Vol. 2, 5.3.3: bits 20:13 of a 2 MiB PDE).
    fn malformed_leaf(phys: u64) -> u64 {
        phys | 0b111 | (1 << 7) | (1 << 13)
    }

    /// Architectural with nested paging (APM Vol. 2, 15.25).
    fn nested_dirty_flags() -> bool {
        true
    }

    fn new_vcpu(
        index: u32,
        mem: &GuestMemory<NptFormat>,
        start: GuestStart,
    ) -> Result<SvmVcpu, VcpuError> {
        SvmVcpu::new(index, mem, start)
    }
}

/// Work to do with whichever back end this CPU has.
pub trait WithBackend {
    /// What the work produces.
    type Output;
    /// Does the work with back end `B`.
    fn run<B: Backend>(self) -> Self::Output;
}

/// Runs `work` with this CPU's back end (VT-x, else AMD-V), or says why there is none.
pub fn dispatch<W: WithBackend>(work: W) -> Result<W::Output, String> {
    match (VmxCaps::read(), SvmCaps::read()) {
        (Ok(_), _) => Ok(work.run::<Vmx>()),
        (_, Ok(_)) => Ok(work.run::<Svm>()),
        (Err(vmx), Err(svm)) => Err(alloc::format!("{vmx}; {svm}")),
    }
}
