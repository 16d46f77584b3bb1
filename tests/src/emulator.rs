//! Which emulator a run uses.

use crate::bochs::Bochs;
use crate::qemu::{Qemu, QemuBoot};

/// An emulator and its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emulator {
    /// QEMU (fast; TCG offers SVM, KVM whatever the host has).
    Qemu(Qemu),
    /// Bochs (slow; Intel VMX or AMD SVM depending on the CPU model).
    Bochs(Bochs),
}

impl Emulator {
    /// QEMU booting the kernel ELF with `-kernel`.
    pub fn qemu() -> Self {
        Emulator::Qemu(Qemu::kernel())
    }

    /// QEMU booting the GRUB ISO.
    pub fn qemu_iso() -> Self {
        Emulator::Qemu(Qemu::cdrom())
    }

    /// Bochs with the default Intel model.
    pub fn bochs() -> Self {
        Emulator::Bochs(Bochs::default())
    }

    /// Short name for messages and run directories.
    pub fn name(&self) -> &'static str {
        match self {
            Emulator::Qemu(_) => "qemu",
            Emulator::Bochs(_) => "bochs",
        }
    }

    /// Whether this run boots from a GRUB ISO (which the harness must build first).
    pub fn needs_iso(&self) -> bool {
        match self {
            Emulator::Qemu(q) => q.boot == QemuBoot::Cdrom,
            Emulator::Bochs(_) => true,
        }
    }
}
