// SPDX-License-Identifier: MIT OR Apache-2.0
//! Castor's hypercall ABI, version 1 (VMCALL on Intel, VMMCALL on AMD).
//!
//! | register | meaning |
//! |---|---|
//! | RAX | call number on entry, result on return (`u64::MAX`: unknown call or bad argument) |
//! | RBX, RCX, RDX, RSI | arguments 1-4 |
//!
//! | number | call | arguments | result |
//! |---|---|---|---|
//! | 0 | `VERSION` | — | ABI version (1) |
//! | 1 | `CONSOLE_WRITE` | RBX = guest-physical address, RCX = length (≤ 4096) | bytes written |
//! | 2 | `EXIT` | RBX = status | does not return: the guest ends with that status |
//!
//! Guests find the ABI through CPUID leaf 0x4000_0000 ("CastorCastor") and 0x4000_0001
//! (EAX = version); see `vmm::cpuid`.

use super::vcpu::GuestRegs;

/// `VERSION`.
pub const VERSION: u64 = 0;
/// `CONSOLE_WRITE`.
pub const CONSOLE_WRITE: u64 = 1;
/// `EXIT`.
pub const EXIT: u64 = 2;
/// Result for unknown calls and bad arguments.
pub const ERROR: u64 = u64::MAX;
/// Longest `CONSOLE_WRITE`.
pub const MAX_CONSOLE_WRITE: u64 = 4096;

/// A decoded hypercall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `VERSION`.
    Version,
    /// `CONSOLE_WRITE` of `len` bytes at `gpa`.
    ConsoleWrite {
        /// Guest-physical address.
        gpa: u64,
        /// Length in bytes.
        len: u64,
    },
    /// `EXIT` with a status.
    Exit(u64),
    /// Anything else.
    Unknown(u64),
}

/// Decodes the registers at a hypercall exit.
pub fn decode(regs: &GuestRegs) -> Call {
    match regs.rax {
        VERSION => Call::Version,
        CONSOLE_WRITE => Call::ConsoleWrite {
            gpa: regs.rbx,
            len: regs.rcx,
        },
        EXIT => Call::Exit(regs.rbx),
        n => Call::Unknown(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_abi() {
        let mut r = GuestRegs {
            rax: 1,
            rbx: 0x1000,
            rcx: 5,
            ..GuestRegs::default()
        };
        assert_eq!(
            decode(&r),
            Call::ConsoleWrite {
                gpa: 0x1000,
                len: 5
            }
        );
        r.rax = 2;
        assert_eq!(decode(&r), Call::Exit(0x1000));
        r.rax = 0;
        assert_eq!(decode(&r), Call::Version);
        r.rax = 77;
        assert_eq!(decode(&r), Call::Unknown(77));
    }
}
