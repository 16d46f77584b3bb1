// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the generic monitor needs to emulate the instruction behind an EPT violation on an
//! MMIO page (`vmm::decode::mmio`): the guest's paging and code mode from the VMCS, and the
//! write-back of RSP, RFLAGS and RIP once it is done.

use super::{Context, VmxVcpu};
use crate::arch::x86_64::instr::vmx::VmFail;
use crate::vmm::decode::{CodeMode, PagingState};
use crate::vmm::vcpu::InstructionContext;
use crate::vmm::vmx::fields::{Guest32, Guest64, GuestN};

/// CS access rights: L (64-bit code) and D/B (32-bit default size), SDM Vol. 3C, Table 26-2.
const CS_L: u32 = 1 << 13;
const CS_DB: u32 = 1 << 14;
/// RFLAGS.VM.
const RFLAGS_VM: u64 = 1 << 17;

impl VmxVcpu {
    /// [`crate::vmm::vcpu::Vcpu::instruction_context`] for VT-x.
    pub(super) fn try_instruction_context(&mut self) -> Result<InstructionContext, VmFail> {
        let v = self.vmcs.load()?;
        let paging = PagingState {
            cr0: v.read(GuestN::Cr0)?,
            cr3: v.read(GuestN::Cr3)?,
            cr4: v.read(GuestN::Cr4)?,
            efer: v.read(Guest64::Efer)?,
        };
        let rflags = v.read(GuestN::Rflags)?;
        let cs = v.read(Guest32::CsAccessRights)?;
        let mode = CodeMode::from_state(
            paging.cr0 & 1 != 0,
            rflags & RFLAGS_VM != 0,
            paging.efer & (1 << 10) != 0,
            cs & CS_L != 0,
            cs & CS_DB != 0,
        );
        Ok(InstructionContext {
            paging,
            mode,
            linear_ip: mode.linear_ip(v.read(GuestN::CsBase)?, v.read(GuestN::Rip)?),
            rsp: v.read(GuestN::Rsp)?,
            rflags,
        })
    }

    /// [`crate::vmm::vcpu::Vcpu::complete_instruction`] for VT-x.
    pub(super) fn try_complete_instruction(
        &mut self,
        rsp: u64,
        rflags: u64,
        advance: usize,
    ) -> Result<(), VmFail> {
        let ctx = self.try_instruction_context()?;
        let mut v = self.vmcs.load()?;
        v.write(GuestN::Rsp, rsp)?;
        v.write(GuestN::Rflags, rflags)?;
        if advance > 0 {
            let rip = v.read(GuestN::Rip)?;
            v.write(GuestN::Rip, ctx.mode.next_ip(rip, advance))?;
            Context::end_interrupt_shadow(&mut v)?;
        }
        Ok(())
    }
}
