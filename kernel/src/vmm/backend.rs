// SPDX-License-Identifier: MIT OR Apache-2.0
//! The hardware virtualization back end, chosen at run time from CPUID so one image runs on
//! Intel (VT-x with EPT) and AMD (AMD-V with NPT). Code that runs guests is written once,
//! generic over [`Backend`], and [`dispatch`]ed to whichever this CPU offers.

use alloc::string::String;

use super::guest_mem::GuestMemory;
use super::vcpu::{GuestStart, Vcpu, VcpuError};
use super::vmx::caps::VmxCaps;
use super::vmx::ept::EptFormat;
use super::vmx::vcpu::VmxVcpu;
use crate::mm::pagetable::Format;

/// A hardware virtualization back end.
pub trait Backend {
    /// Its nested page table format (EPT, NPT).
    type Format: Format;
    /// Its vCPU.
    type Vcpu: Vcpu;
    /// Name shown to users.
    const NAME: &'static str;
    /// Whether the back end can bound guest run time by itself ([`Vcpu::set_time_slice`]).
    const HAS_PREEMPTION_TIMER: bool;
    /// The exit code with which a guest access through [`Backend::malformed_leaf`] is reported
    /// ([`crate::vmm::vcpu::Exit::Unhandled`], with the guest-physical address as info).
    const MALFORMED_EXIT: u64;
    /// A 2 MiB leaf entry for host address `phys` that the hardware must refuse as malformed.
    fn malformed_leaf(phys: u64) -> u64;
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

    fn new_vcpu(
        index: u32,
        mem: &GuestMemory<EptFormat>,
        start: GuestStart,
    ) -> Result<VmxVcpu, VcpuError> {
        VmxVcpu::new(index, mem, start)
    }
}

/// Work to do with whichever back end this CPU has.
pub trait WithBackend {
    /// What the work produces.
    type Output;
    /// Does the work with back end `B`.
    fn run<B: Backend>(self) -> Self::Output;
}

/// Runs `work` with this CPU's back end, or says why there is none.
pub fn dispatch<W: WithBackend>(work: W) -> Result<W::Output, String> {
    match VmxCaps::read() {
        Ok(_) => Ok(work.run::<Vmx>()),
        Err(vmx) => Err(alloc::format!("{vmx}")),
    }
}
