// SPDX-License-Identifier: MIT OR Apache-2.0
//! The CPU a paired guest is offered: the CPUID answers that a guest can rely on (vendor,
//! feature flags, XSAVE state, address widths, TSC rate, Castor's hypercall ABI), as each host
//! offers them after Castor's own filter, and the *baseline* two hosts agree on.
//!
//! Both hosts send their own [`CpuModel`] in the pair's `HELLO`; each computes the same
//! baseline with [`CpuModel::intersect`] (primary first, so the result is deterministic), checks
//! that both hosts [can resume](CpuModel::can_resume) a guest that saw it, and the guest is
//! offered only the baseline on either host. A heterogeneous pair therefore runs a guest that
//! can fail over by design; a pair that could not (different vendors, TSC rates, an XSAVE area
//! one host lays out differently) is refused at pairing time, with the reason.
//!
//! Leaves the model does not cover (caches, topology, brand string, power management) are
//! informational and stay each host's own, as after a live migration. Leaves above the
//! baseline's highest basic or extended leaf read as zeros on both hosts.
//!
//! References: Intel SDM Vol. 2A, CPUID; Vol. 1, 13.2 "Enumeration of CPU Support for XSAVE
//! Instructions and XSAVE-Supported Features" and 13.4 "XSAVE Area"; AMD APM Vol. 3, Appendix E
//! "Obtaining Processor Information Via the CPUID Instruction".

mod codec;
mod mismatch;
#[cfg(test)]
pub(crate) mod tests;

pub use codec::ENCODED_LEN;
pub use mismatch::{CpuMismatch, ResumeError};

use crate::link::Role;

/// A CPUID output register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    /// EAX.
    Eax,
    /// EBX.
    Ebx,
    /// ECX.
    Ecx,
    /// EDX.
    Edx,
}

/// One word of feature flags: where CPUID reports it, and which of its bits reflect the
/// guest's own control registers rather than the CPU (never masked, never compared).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureWord {
    /// Leaf (EAX input).
    pub leaf: u32,
    /// Subleaf (ECX input).
    pub subleaf: u32,
    /// Output register.
    pub reg: Reg,
    /// Bits that follow the guest's state: leaf 1 ECX OSXSAVE (CR4.OSXSAVE) and leaf 7 ECX
    /// OSPKE (CR4.PKE).
    pub dynamic: u32,
}

const fn word(leaf: u32, subleaf: u32, reg: Reg, dynamic: u32) -> FeatureWord {
    FeatureWord {
        leaf,
        subleaf,
        reg,
        dynamic,
    }
}

/// The feature words of the model, in [`CpuModel::features`] order.
pub const FEATURE_WORDS: [FeatureWord; FEATURES] = [
    word(0x1, 0, Reg::Ecx, 1 << 27),
    word(0x1, 0, Reg::Edx, 0),
    word(0x7, 0, Reg::Ebx, 0),
    word(0x7, 0, Reg::Ecx, 1 << 4),
    word(0x7, 0, Reg::Edx, 0),
    word(0xD, 1, Reg::Eax, 0),
    word(0x8000_0001, 0, Reg::Ecx, 0),
    word(0x8000_0001, 0, Reg::Edx, 0),
    word(0x8000_0007, 0, Reg::Edx, 0),
    word(0x8000_0008, 0, Reg::Ebx, 0),
];
/// Number of feature words.
pub const FEATURES: usize = 10;
const L1_ECX: usize = 0;
const L7_EBX: usize = 2;
const L7_ECX: usize = 3;
const L7_EDX: usize = 4;
const XSAVE_FLAGS: usize = 5;

/// First XSAVE state component with a CPUID-described place in the XSAVE area (0 and 1, x87
/// and SSE, live in the 512-byte legacy region).
pub const XSAVE_FIRST: u32 = 2;
/// Components `XSAVE_FIRST..XSAVE_END` are described (up to 19, APX); a host with XCR0 bits
/// beyond offers the guest only these.
pub const XSAVE_END: u32 = 20;
/// Size of the legacy region plus the XSAVE header (SDM Vol. 1, 13.4.1 and 13.4.2).
pub const XSAVE_LEGACY_AND_HEADER: u32 = 576;
const XSAVE_DESCRIBED: usize = (XSAVE_END - XSAVE_FIRST) as usize;

/// Where an XSAVE state component lies in the standard-format XSAVE area: CPUID leaf 0xD,
/// subleaf `i`, EBX (offset) and EAX (size).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XsaveComponent {
    /// Offset from the start of the area.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

/// What Castor does with the guest's time stamp counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TscPolicy {
    /// The guest reads the host's TSC, unscaled: both hosts' TSCs must run at the rate the
    /// guest calibrated against.
    HostRate,
}

/// Largest difference between the hosts' TSC rates that [`CpuModel::intersect`] accepts, in
/// parts per million of the faster one: beyond calibration error (50 ms windows of
/// the ACPI PM timer or the PIT).
pub const TSC_TOLERANCE_PPM: u64 = 10_000;

/// The CPU a guest is offered (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuModel {
    /// Vendor string (leaf 0 EBX, EDX, ECX), e.g. `AuthenticAMD`.
    pub vendor: [u8; 12],
    /// Family, model and stepping (leaf 1 EAX); a baseline shows the primary's.
    pub signature: u32,
    /// Extended signature (leaf 0x8000_0001 EAX; AMD repeats leaf 1 EAX there, Intel reports 0).
    pub ext_signature: u32,
    /// Highest basic leaf (leaf 0 EAX).
    pub max_basic: u32,
    /// Highest extended leaf (leaf 0x8000_0000 EAX).
    pub max_ext: u32,
    /// Feature flags, one word per [`FEATURE_WORDS`] entry, without the dynamic bits.
    pub features: [u32; FEATURES],
    /// XCR0 bits the guest may enable (leaf 0xD subleaf 0 EDX:EAX); 0 without XSAVE.
    pub xcr0: u64,
    /// Layout of components `XSAVE_FIRST..XSAVE_END`; zero for those not in `xcr0`.
    pub xsave: [XsaveComponent; XSAVE_DESCRIBED],
    /// Physical address width (leaf 0x8000_0008 EAX\[7:0\]).
    pub phys_bits: u8,
    /// Linear address width (leaf 0x8000_0008 EAX\[15:8\]).
    pub linear_bits: u8,
    /// What the guest's TSC is.
    pub tsc_policy: TscPolicy,
    /// The TSC rate in kHz (of the primary, in a baseline).
    pub tsc_khz: u32,
    /// The TSC and core crystal frequency leaves: 0x15 EAX, EBX, ECX and 0x16 EAX, EBX, ECX;
    /// a baseline keeps them only where both hosts report the same, zeros otherwise.
    pub tsc_leaves: [u32; 6],
    /// Castor's hypercall ABI version (leaf 0x4000_0001 EAX).
    pub hypercall_abi: u32,
}

/// XCR0 bits that depend on each other (SDM Vol. 1, 13.3 "Enabling the XSAVE Feature Set and
/// XSAVE-Enabled Features"): AVX needs SSE; the three AVX-512 components go together and need
/// AVX; the two AMX components go together.
const XCR0_SSE: u64 = 1 << 1;
const XCR0_AVX: u64 = 1 << 2;
const XCR0_AVX512: u64 = 0b111 << 5;
/// Leaf 7.0 EBX: the AVX-512 family (AVX512F, DQ, IFMA, PF, ER, CD, BW, VL), whose state is
/// XCR0's opmask and upper ZMM components.
pub const LEAF7_EBX_AVX512: u32 =
    (1 << 16) | (1 << 17) | (1 << 21) | (1 << 26) | (1 << 27) | (1 << 28) | (1 << 30) | (1 << 31);
const XCR0_PKRU: u64 = 1 << 9;
const XCR0_AMX: u64 = 0b11 << 17;

/// Feature bits that need XCR0 components: (word, bits, components all of which must be in
/// XCR0). Leaf 1 ECX FMA, AVX, F16C; leaf 7 EBX AVX2 and the AVX-512 family; leaf 7 ECX PKU
/// and the AVX-512 extensions; leaf 7 EDX AVX-512 extensions and AMX.
const NEEDS_XCR0: [(usize, u32, u64); 8] = [
    (
        L1_ECX,
        (1 << 12) | (1 << 28) | (1 << 29),
        XCR0_SSE | XCR0_AVX,
    ),
    (L7_EBX, 1 << 5, XCR0_SSE | XCR0_AVX),
    (L7_EBX, LEAF7_EBX_AVX512, XCR0_AVX512),
    (L7_ECX, 1 << 3, XCR0_PKRU),
    (
        L7_ECX,
        (1 << 1) | (1 << 6) | (1 << 11) | (1 << 12) | (1 << 14),
        XCR0_AVX512,
    ),
    (
        L7_EDX,
        (1 << 2) | (1 << 3) | (1 << 8) | (1 << 23),
        XCR0_AVX512,
    ),
    (L7_EDX, (1 << 22) | (1 << 24) | (1 << 25), XCR0_AMX),
    // Leaf 1 ECX XSAVE itself, and leaf 0xD subleaf 1's instructions, need x87 state.
    (L1_ECX, 1 << 26, 1),
];

impl CpuModel {
    /// The layout of XSAVE component `i`, if it is a described one.
    #[must_use]
    pub fn component(&self, i: u32) -> Option<XsaveComponent> {
        (XSAVE_FIRST..XSAVE_END)
            .contains(&i)
            .then(|| self.xsave[(i - XSAVE_FIRST) as usize])
    }

    /// Bytes of the standard-format XSAVE area for the components in `mask` as this CPU lays
    /// them out (leaf 0xD subleaf 0 ECX for `mask` = all supported): the legacy region and
    /// header, and every component up to its end; 0 for an empty mask.
    #[must_use]
    pub fn xsave_size(&self, mask: u64) -> u32 {
        if mask == 0 {
            return 0;
        }
        (XSAVE_FIRST..XSAVE_END)
            .filter(|i| mask & (1 << i) != 0)
            .filter_map(|i| self.component(i))
            .map(|c| c.offset.saturating_add(c.size))
            .fold(XSAVE_LEGACY_AND_HEADER, u32::max)
    }

    /// The feature word at `leaf`/`subleaf`/`reg`, as an index into [`CpuModel::features`].
    #[must_use]
    pub fn feature_index(leaf: u32, subleaf: u32, reg: Reg) -> Option<usize> {
        FEATURE_WORDS
            .iter()
            .position(|w| w.leaf == leaf && w.subleaf == subleaf && w.reg == reg)
    }

    /// Whether `leaf` is within the basic or extended range this model reports.
    #[must_use]
    pub fn has_leaf(&self, leaf: u32) -> bool {
        match leaf {
            0..0x4000_0000 => leaf <= self.max_basic,
            0x8000_0000..0x9000_0000 => leaf <= self.max_ext,
            _ => true,
        }
    }

    /// The baseline of a pair: what a guest may be offered so that it can run on either host.
    /// Feature flags and XCR0 components both hosts offer (components only where both lay
    /// them out alike, and only with what they depend on), the lower leaf limits and address
    /// widths, the primary's signature and TSC rate, and TSC frequency leaves where they agree.
    ///
    /// # Errors
    /// What no baseline can paper over: different vendors (VT-x and AMD-V guests expect their
    /// own vendor's behaviour), TSC policies or rates, or hypercall ABIs.
    pub fn intersect(primary: &Self, backup: &Self) -> Result<Self, CpuMismatch> {
        if primary.vendor != backup.vendor {
            return Err(CpuMismatch::Vendor {
                primary: primary.vendor,
                backup: backup.vendor,
            });
        }
        if primary.tsc_policy != backup.tsc_policy {
            return Err(CpuMismatch::TscPolicy);
        }
        let (p, b) = (u64::from(primary.tsc_khz), u64::from(backup.tsc_khz));
        if p.abs_diff(b) * 1_000_000 > p.max(b) * TSC_TOLERANCE_PPM {
            return Err(CpuMismatch::TscRate {
                primary_khz: primary.tsc_khz,
                backup_khz: backup.tsc_khz,
            });
        }
        if primary.hypercall_abi != backup.hypercall_abi {
            return Err(CpuMismatch::HypercallAbi {
                primary: primary.hypercall_abi,
                backup: backup.hypercall_abi,
            });
        }
        let mut model = Self {
            max_basic: primary.max_basic.min(backup.max_basic),
            max_ext: primary.max_ext.min(backup.max_ext),
            phys_bits: primary.phys_bits.min(backup.phys_bits),
            linear_bits: primary.linear_bits.min(backup.linear_bits),
            tsc_leaves: if primary.tsc_leaves == backup.tsc_leaves {
                primary.tsc_leaves
            } else {
                [0; 6]
            },
            ..*primary
        };
        for (i, f) in model.features.iter_mut().enumerate() {
            *f &= backup.features[i];
        }
        let alike = (XSAVE_FIRST..XSAVE_END)
            .filter(|&i| primary.component(i) == backup.component(i))
            .fold(0b11, |mask, i| mask | (1 << i));
        model.xcr0 = consistent_xcr0(primary.xcr0 & backup.xcr0 & alike);
        model.restrict_to_leaves_and_xcr0();
        Ok(model)
    }

    /// Clears what the model's own limits rule out: feature words of leaves above its highest
    /// leaves, feature bits whose XCR0 components it lacks, and the layout of components it
    /// does not offer.
    fn restrict_to_leaves_and_xcr0(&mut self) {
        if !self.has_leaf(0xD) {
            self.xcr0 = 0;
        }
        for (i, w) in FEATURE_WORDS.iter().enumerate() {
            if !self.has_leaf(w.leaf) {
                self.features[i] = 0;
            }
        }
        for &(i, bits, needs) in &NEEDS_XCR0 {
            if self.xcr0 & needs != needs {
                self.features[i] &= !bits;
            }
        }
        if self.xcr0 == 0 {
            self.features[XSAVE_FLAGS] = 0;
        }
        for i in XSAVE_FIRST..XSAVE_END {
            if self.xcr0 & (1 << i) == 0 {
                self.xsave[(i - XSAVE_FIRST) as usize] = XsaveComponent::default();
            }
        }
        if !self.has_leaf(0x15) {
            self.tsc_leaves[..3].fill(0);
        }
        if !self.has_leaf(0x16) {
            self.tsc_leaves[3..].fill(0);
        }
    }

    /// Whether `host` can resume a guest that was offered `self`: same vendor, every feature
    /// bit, leaf and XCR0 component the model offers, the same XSAVE layout for them (so an
    /// XSAVE area the guest sized and filled on the other host fits and means the same here),
    /// and address widths at least the model's.
    ///
    /// # Errors
    /// The first thing `host` lacks.
    pub fn can_resume(&self, host: &Self) -> Result<(), ResumeError> {
        if self.vendor != host.vendor {
            return Err(ResumeError::Vendor {
                model: self.vendor,
                host: host.vendor,
            });
        }
        if self.max_basic > host.max_basic || self.max_ext > host.max_ext {
            return Err(ResumeError::MaxLeaf {
                model: (self.max_basic, self.max_ext),
                host: (host.max_basic, host.max_ext),
            });
        }
        for (i, w) in FEATURE_WORDS.iter().enumerate() {
            let missing = self.features[i] & !host.features[i] & !w.dynamic;
            if missing != 0 {
                return Err(ResumeError::Features { word: *w, missing });
            }
        }
        let missing = self.xcr0 & !host.xcr0;
        if missing != 0 {
            return Err(ResumeError::Xcr0 { missing });
        }
        let (model_bytes, host_bytes) = (self.xsave_size(self.xcr0), host.xsave_size(self.xcr0));
        if host_bytes > model_bytes {
            return Err(ResumeError::XsaveArea {
                model_bytes,
                host_bytes,
            });
        }
        if let Some(i) = (XSAVE_FIRST..XSAVE_END)
            .filter(|i| self.xcr0 & (1 << i) != 0)
            .find(|&i| self.component(i) != host.component(i))
        {
            return Err(ResumeError::XsaveLayout {
                component: i,
                model: self.component(i).unwrap_or_default(),
                host: host.component(i).unwrap_or_default(),
            });
        }
        if self.phys_bits > host.phys_bits || self.linear_bits > host.linear_bits {
            return Err(ResumeError::AddressBits {
                model: (self.phys_bits, self.linear_bits),
                host: (host.phys_bits, host.linear_bits),
            });
        }
        Ok(())
    }

    /// Whether a guest whose physical address space ends at `top` (exclusive) fits the
    /// model's physical address width.
    ///
    /// # Errors
    /// [`CpuMismatch::AddressWidth`] when it does not.
    pub fn check_guest_span(&self, top: u64) -> Result<(), CpuMismatch> {
        let needed = (u64::BITS - top.saturating_sub(1).leading_zeros()) as u8;
        if needed > self.phys_bits {
            return Err(CpuMismatch::AddressWidth {
                bits: self.phys_bits,
                needed,
            });
        }
        Ok(())
    }

    /// The baseline of a pair whose hosts sent `primary` and `backup`, for a guest whose
    /// physical address space ends at `top`: [`CpuModel::intersect`], checked with
    /// [`CpuModel::can_resume`] on both hosts and [`CpuModel::check_guest_span`].
    ///
    /// # Errors
    /// The first reason the pair cannot run the guest.
    pub fn baseline(primary: &Self, backup: &Self, top: u64) -> Result<Self, CpuMismatch> {
        let model = Self::intersect(primary, backup)?;
        for (host, role) in [(primary, Role::Primary), (backup, Role::Backup)] {
            model
                .can_resume(host)
                .map_err(|why| CpuMismatch::Resume { host: role, why })?;
        }
        model.check_guest_span(top)?;
        Ok(model)
    }
}

/// `xcr0` with each component whose prerequisites are missing taken out; x87 state is the
/// root of them all (an XCR0 without bit 0 is invalid, SDM Vol. 2B, XSETBV).
fn consistent_xcr0(mut xcr0: u64) -> u64 {
    if xcr0 & 1 == 0 {
        return 0;
    }
    if xcr0 & XCR0_SSE == 0 {
        xcr0 &= !XCR0_AVX;
    }
    if xcr0 & XCR0_AVX == 0 || xcr0 & XCR0_AVX512 != XCR0_AVX512 {
        xcr0 &= !XCR0_AVX512;
    }
    if xcr0 & XCR0_AMX != XCR0_AMX {
        xcr0 &= !XCR0_AMX;
    }
    xcr0 & ((1 << XSAVE_END) - 1)
}
