// SPDX-License-Identifier: MIT OR Apache-2.0
//! Decisions on VM-exit information that the VT-x back end takes without touching the VMCS,
//! kept here so they can be tested on the host with made-up field values:
//! - whether an exception-or-NMI exit is the host's NMI ([`is_host_nmi`]);
//! - what a control-register access exit asks ([`CrAccess`], SDM Vol. 3C, Table 28-3 "Exit
//!   Qualification for Control-Register Accesses");
//! - MOV to and from CR8 against the guest's own task-priority value ([`Cr8`]).

use crate::vmm::emulate::Exception;

/// VM-exit interruption information (SDM Vol. 3C, 25.9.2 "Information for VM Exits Due to
/// Vectored Events"): bits 7:0 vector, 10:8 type, 31 valid.
const INFO_VALID: u32 = 1 << 31;
/// Interruption type NMI (bits 10:8 = 2).
const TYPE_NMI: u32 = 2;
/// The NMI vector.
const NMI_VECTOR: u32 = 2;

/// Whether an exit for an exception or NMI (basic exit reason 0) with interruption information
/// `info` was caused by an NMI. With the "NMI exiting" pin-based control set, which Castor always
/// sets, every NMI that arrives while the guest runs causes such an exit and is not delivered
/// to the guest (SDM Vol. 3C, 26.2 "Other Causes of VM Exits"): it is the host's NMI, and it
/// must be handed to the host's NMI handler (as KVM does), not end the guest. NMIs stay blocked
/// after the exit until the next IRET (SDM Vol. 3C, 28.1 "Architectural State Before a VM
/// Exit"), which the host handler's IRET provides.
pub const fn is_host_nmi(info: u32) -> bool {
    info & INFO_VALID != 0 && (info >> 8) & 7 == TYPE_NMI && info & 0xFF == NMI_VECTOR
}

/// A control-register access exit, decoded from its exit qualification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrAccess {
    /// MOV to CR`cr` from general register `reg` (SDM Vol. 2A, Table 2-2 numbering; 4 is RSP).
    MovTo {
        /// Control register number.
        cr: u8,
        /// Source register.
        reg: u8,
    },
    /// MOV from CR`cr` into general register `reg`.
    MovFrom {
        /// Control register number.
        cr: u8,
        /// Destination register.
        reg: u8,
    },
    /// CLTS.
    Clts,
    /// LMSW.
    Lmsw,
}

impl CrAccess {
    /// Decodes the exit qualification: bits 3:0 the register, 5:4 the access type (0 MOV to
    /// CR, 1 MOV from CR, 2 CLTS, 3 LMSW), 11:8 the general register.
    pub const fn decode(qualification: u64) -> Self {
        let cr = (qualification & 0xF) as u8;
        let reg = ((qualification >> 8) & 0xF) as u8;
        match (qualification >> 4) & 3 {
            0 => CrAccess::MovTo { cr, reg },
            1 => CrAccess::MovFrom { cr, reg },
            2 => CrAccess::Clts,
            _ => CrAccess::Lmsw,
        }
    }
}

/// The guest's CR8, its task-priority class (SDM Vol. 3A, 11.8.6 "Task Priority in IA-32e
/// Mode"), kept by the vCPU and never written to the host's local APIC.
///
/// Without "CR8-load exiting" and "CR8-store exiting" (and without "use TPR shadow") a guest's
/// MOV to and from CR8 reaches the host's own TPR (SDM Vol. 3C, 26.3 "Changes to Instruction
/// Behavior in VMX Non-Root Operation"): a guest could mask the host's interrupts. Castor
/// sets both controls (25.6.2) and emulates CR8 against the guest's local APIC (`vmx::vcpu::
/// control_regs`); this type checks the written value and mirrors the APIC's TPR for
/// checkpoints. AMD-V does the same with V_INTR_MASKING and V_TPR (AMD64 APM Vol. 2, 15.21.1),
/// synchronised with the local APIC around each VMRUN.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cr8(u8);

impl Cr8 {
    /// MOV to CR8 of `value`: bits 3:0 are the priority class, bits 63:4 are reserved and
    /// must be 0, else the instruction raises #GP(0) and changes nothing (SDM Vol. 2B, MOV —
    /// Move to/from Control Registers).
    pub fn write(&mut self, value: u64) -> Result<(), Exception> {
        if value & !0xF != 0 {
            return Err(Exception::GP0);
        }
        self.0 = value as u8;
        Ok(())
    }

    /// MOV from CR8: the priority class in bits 3:0, the rest 0.
    pub const fn read(self) -> u64 {
        self.0 as u64
    }

    /// The value of a CR8 that reads `cr8` (the local APIC's, always below 16; higher bits are
    /// dropped).
    pub const fn of_tpr(cr8: u64) -> Self {
        Self((cr8 & 0xF) as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_nmi_exit_is_the_hosts_nmi_and_exceptions_are_not() {
        // Valid, type NMI (2), vector 2: what the CPU stores for an NMI exit.
        assert!(is_host_nmi(0x8000_0202));
        // Bit 12 (NMI unblocking due to IRET) does not change that.
        assert!(is_host_nmi(0x8000_1202));
        // Hardware exceptions (type 3): #PF with an error code, #DB, #MC.
        assert!(!is_host_nmi(0x8000_0B0E));
        assert!(!is_host_nmi(0x8000_0301));
        assert!(!is_host_nmi(0x8000_0312));
        // Vector 2 as a software interrupt (INT 2, type 4) is not an NMI.
        assert!(!is_host_nmi(0x8000_0402));
        // Not valid.
        assert!(!is_host_nmi(0x0000_0202));
    }

    #[test]
    fn control_register_qualifications() {
        // MOV %rax, %cr8: CR 8, type 0, register 0.
        assert_eq!(CrAccess::decode(0x008), CrAccess::MovTo { cr: 8, reg: 0 });
        // MOV %cr8, %r13: type 1, register 13.
        assert_eq!(
            CrAccess::decode(0xD18),
            CrAccess::MovFrom { cr: 8, reg: 13 }
        );
        // MOV %rsp, %cr4.
        assert_eq!(CrAccess::decode(0x404), CrAccess::MovTo { cr: 4, reg: 4 });
        assert_eq!(CrAccess::decode(0x020), CrAccess::Clts);
        // LMSW: the source data (bits 31:16) is not a register.
        assert_eq!(CrAccess::decode(0x0011_0030), CrAccess::Lmsw);
    }

    #[test]
    fn cr8_reads_back_what_was_written_and_refuses_reserved_bits() {
        let mut cr8 = Cr8::default();
        assert_eq!(cr8.read(), 0);
        assert_eq!(cr8.write(0xF), Ok(()));
        assert_eq!(cr8.read(), 0xF);
        assert_eq!(cr8.write(0x10), Err(Exception::GP0));
        assert_eq!(cr8.write(1 << 63), Err(Exception::GP0));
        assert_eq!(cr8.read(), 0xF, "a refused write changes nothing");
        assert_eq!(cr8.write(1), Ok(()));
        assert_eq!(cr8.read(), 1);
    }
}
