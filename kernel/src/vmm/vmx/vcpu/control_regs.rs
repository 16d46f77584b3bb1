// SPDX-License-Identifier: MIT OR Apache-2.0
//! Control-register access exits of a VT-x vCPU (SDM Vol. 3C, Table 28-3): MOV to CR0/CR4
//! that touched the bits VMX owns, and MOV to and from CR8, emulated against the task priority
//! of the guest's own local APIC (CR8[3:0] = TPR[7:4], SDM Vol. 3A, 11.8.6) so that it never
//! reaches the host's. The vCPU keeps a mirror ([`crate::vmm::vmx::exit_info::Cr8`]) for its
//! checkpoints, refreshed before each entry.

use super::{Context, reason};
use crate::arch::x86_64::instr::vmx::VmFail;
use crate::vmm::vcpu::{Exit, InterruptSource};
use crate::vmm::vmx::caps::VmxCaps;
use crate::vmm::vmx::exit_info::CrAccess;
use crate::vmm::vmx::fields::{ControlN, GuestN};
use crate::vmm::vmx::setup;
use crate::vmm::vmx::vmcs::LoadedVmcs;

impl Context {
    /// Control-register access exits: MOV to CR0/CR4 that touched host-owned bits (SDM Vol.
    /// 3C, Table 28-3), and MOV to and from CR8, which always exit. Anything else stops the
    /// guest.
    pub(super) fn handle_cr(
        &mut self,
        v: &mut LoadedVmcs<'_>,
        qualification: u64,
        irq: &mut dyn InterruptSource,
    ) -> Result<Option<Exit>, VmFail> {
        match CrAccess::decode(qualification) {
            CrAccess::MovTo {
                cr: cr @ (0 | 4),
                reg,
            } => {
                let value = self.regs.by_number(reg, v.read(GuestN::Rsp)?);
                Self::write_cr0_cr4(v, &self.caps, cr, value)?;
                self.advance(v)?;
            }
            CrAccess::MovTo { cr: 8, reg } => {
                let value = self.regs.by_number(reg, v.read(GuestN::Rsp)?);
                match self.cr8.write(value) {
                    Ok(()) => {
                        irq.set_cr8(value);
                        self.advance(v)?;
                    }
                    Err(e) => Self::inject_exception(v, e)?,
                }
            }
            CrAccess::MovFrom { cr: 8, reg } => {
                let value = irq.cr8();
                match self.regs.by_number_mut(reg) {
                    Some(r) => *r = value,
                    None => v.write(GuestN::Rsp, value)?,
                }
                self.advance(v)?;
            }
            _ => {
                return Ok(Some(Exit::Unhandled {
                    code: u64::from(reason::CR_ACCESS),
                    info: qualification,
                }));
            }
        }
        Ok(None)
    }

    /// MOV of `value` to CR0 or CR4 (`cr`): the bits VMX forces are applied in the register and
    /// hidden in its read shadow (the caller moves RIP past the MOV).
    fn write_cr0_cr4(
        v: &mut LoadedVmcs<'_>,
        caps: &VmxCaps,
        cr: u8,
        value: u64,
    ) -> Result<(), VmFail> {
        let (cr0, cr4) = if cr == 0 {
            (value, v.read(ControlN::Cr4ReadShadow)?)
        } else {
            (v.read(ControlN::Cr0ReadShadow)?, value)
        };
        let ((hw0, shadow0), (hw4, shadow4)) = setup::guest_control_registers(caps, cr0, cr4);
        if cr == 0 {
            v.write(GuestN::Cr0, hw0)?;
            v.write(ControlN::Cr0ReadShadow, shadow0)?;
        } else {
            v.write(GuestN::Cr4, hw4 | setup::CR4_VMXE)?;
            v.write(ControlN::Cr4ReadShadow, shadow4)?;
        }
        Ok(())
    }
}
