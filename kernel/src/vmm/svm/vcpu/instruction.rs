// SPDX-License-Identifier: MIT OR Apache-2.0
//! The guest's paging and code mode from the VMCB, for decoding the instruction at its RIP
//! (the length of intercepted instructions without next-RIP, and MMIO accesses behind nested
//! page faults, `vmm::decode::mmio`), and the write-back of an emulated instruction.

use super::SvmVcpu;
use crate::vmm::decode::{CodeMode, PagingState};
use crate::vmm::svm::vmcb::InterruptState;
use crate::vmm::vcpu::InstructionContext;

/// CS attributes: L (64-bit code) and D/B (32-bit default size), the VMCB's packed form of the
/// descriptor bits (APM Vol. 2, 15.5.1).
const CS_L: u16 = 1 << 9;
const CS_DB: u16 = 1 << 10;
/// RFLAGS.VM.
const RFLAGS_VM: u64 = 1 << 17;
/// EFER.LMA.
const EFER_LMA: u64 = 1 << 10;

impl SvmVcpu {
    /// [`crate::vmm::vcpu::Vcpu::instruction_context`] for AMD-V.
    pub(super) fn context(&mut self) -> InstructionContext {
        let s = &self.vmcb().save;
        let mode = CodeMode::from_state(
            s.cr0 & 1 != 0,
            s.rflags & RFLAGS_VM != 0,
            s.efer & EFER_LMA != 0,
            s.cs.attrib & CS_L != 0,
            s.cs.attrib & CS_DB != 0,
        );
        InstructionContext {
            paging: PagingState {
                cr0: s.cr0,
                cr3: s.cr3,
                cr4: s.cr4,
                efer: s.efer,
            },
            mode,
            linear_ip: mode.linear_ip(s.cs.base, s.rip),
            rsp: s.rsp,
            rflags: s.rflags,
        }
    }

    /// [`crate::vmm::vcpu::Vcpu::complete_instruction`] for AMD-V.
    pub(super) fn complete(&mut self, rsp: u64, rflags: u64, advance: usize) {
        let mode = self.context().mode;
        let v = self.vmcb();
        v.save.rsp = rsp;
        v.save.rflags = rflags;
        if advance > 0 {
            v.save.rip = mode.next_ip(v.save.rip, advance);
            v.control.int_state.remove(InterruptState::INTERRUPT_SHADOW);
        }
    }
}
