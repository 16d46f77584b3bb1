// SPDX-License-Identifier: MIT OR Apache-2.0
//! Why two hosts cannot share a guest's CPU model, worded for the console.

use core::fmt;

use super::{FeatureWord, Reg, XsaveComponent};
use crate::link::Role;

/// Why a pair's hosts cannot run the same guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuMismatch {
    /// Different CPU vendors.
    Vendor {
        /// The primary's vendor string.
        primary: [u8; 12],
        /// The backup's.
        backup: [u8; 12],
    },
    /// Different TSC policies.
    TscPolicy,
    /// TSC rates further apart than [`super::TSC_TOLERANCE_PPM`].
    TscRate {
        /// The primary's, in kHz.
        primary_khz: u32,
        /// The backup's.
        backup_khz: u32,
    },
    /// Different hypercall ABI versions.
    HypercallAbi {
        /// The primary's.
        primary: u32,
        /// The backup's.
        backup: u32,
    },
    /// The guest's physical address space does not fit the baseline's address width.
    AddressWidth {
        /// The baseline's physical address bits.
        bits: u8,
        /// What the guest needs.
        needed: u8,
    },
    /// A host cannot resume a guest offered the baseline.
    Resume {
        /// Which host.
        host: Role,
        /// What it lacks.
        why: ResumeError,
    },
}

/// What a host lacks to resume a guest offered a model ([`super::CpuModel::can_resume`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeError {
    /// Another vendor.
    Vendor {
        /// The model's vendor string.
        model: [u8; 12],
        /// The host's.
        host: [u8; 12],
    },
    /// Lower highest basic or extended leaf.
    MaxLeaf {
        /// The model's (basic, extended).
        model: (u32, u32),
        /// The host's.
        host: (u32, u32),
    },
    /// Feature flags the model offers and the host does not have.
    Features {
        /// Where CPUID reports them.
        word: FeatureWord,
        /// The bits.
        missing: u32,
    },
    /// XCR0 components the model offers and the host does not have.
    Xcr0 {
        /// The bits.
        missing: u64,
    },
    /// The host's XSAVE area for the model's components is larger than the one the guest was
    /// told to allocate.
    XsaveArea {
        /// The model's size in bytes.
        model_bytes: u32,
        /// The host's.
        host_bytes: u32,
    },
    /// The host lays out an XSAVE component elsewhere.
    XsaveLayout {
        /// The component.
        component: u32,
        /// Its place in the model.
        model: XsaveComponent,
        /// Its place on the host.
        host: XsaveComponent,
    },
    /// Narrower physical or linear addresses.
    AddressBits {
        /// The model's (physical, linear) widths.
        model: (u8, u8),
        /// The host's.
        host: (u8, u8),
    },
}

/// A vendor string as text, with anything unprintable shown as `?`.
fn vendor(v: &[u8; 12], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    v.iter().try_for_each(|&b| {
        let c = if b.is_ascii_graphic() { b as char } else { '?' };
        write!(f, "{c}")
    })
}

fn reg_name(reg: Reg) -> &'static str {
    match reg {
        Reg::Eax => "EAX",
        Reg::Ebx => "EBX",
        Reg::Ecx => "ECX",
        Reg::Edx => "EDX",
    }
}

impl fmt::Display for CpuMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vendor { primary, backup } => {
                f.write_str("the CPU vendors differ: ")?;
                vendor(primary, f)?;
                f.write_str(" on the primary, ")?;
                vendor(backup, f)?;
                f.write_str(" on the backup (a guest cannot fail over to another vendor's CPU)")
            }
            Self::TscPolicy => f.write_str("the hosts treat the guest's TSC differently"),
            Self::TscRate {
                primary_khz,
                backup_khz,
            } => write!(
                f,
                "the TSC runs at {primary_khz} kHz on the primary and {backup_khz} kHz on the \
                 backup (the guest reads it unscaled)"
            ),
            Self::HypercallAbi { primary, backup } => write!(
                f,
                "hypercall ABI version {primary} on the primary, {backup} on the backup"
            ),
            Self::AddressWidth { bits, needed } => write!(
                f,
                "the guest needs {needed}-bit physical addresses, the pair's CPUs share {bits}"
            ),
            Self::Resume { host, why } => write!(f, "the {host} cannot resume the guest: {why}"),
        }
    }
}

impl fmt::Display for ResumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vendor { model, host } => {
                f.write_str("its CPU is ")?;
                vendor(host, f)?;
                f.write_str(", the guest's ")?;
                vendor(model, f)
            }
            Self::MaxLeaf { model, host } => write!(
                f,
                "its highest CPUID leaves are {:#x}/{:#x}, the guest's {:#x}/{:#x}",
                host.0, host.1, model.0, model.1
            ),
            Self::Features { word, missing } => write!(
                f,
                "it lacks CPUID leaf {:#x}.{} {} bits {missing:#010x}",
                word.leaf,
                word.subleaf,
                reg_name(word.reg)
            ),
            Self::Xcr0 { missing } => write!(f, "it lacks XSAVE components {missing:#x}"),
            Self::XsaveArea {
                model_bytes,
                host_bytes,
            } => write!(
                f,
                "its XSAVE area for the guest's features is {host_bytes} bytes, the guest's \
                 {model_bytes}"
            ),
            Self::XsaveLayout {
                component,
                model,
                host,
            } => write!(
                f,
                "it puts XSAVE component {component} at {}+{}, the guest's at {}+{}",
                host.offset, host.size, model.offset, model.size
            ),
            Self::AddressBits { model, host } => write!(
                f,
                "its address widths are {}/{} bits (physical/linear), the guest's {}/{}",
                host.0, host.1, model.0, model.1
            ),
        }
    }
}
