// SPDX-License-Identifier: MIT OR Apache-2.0
//! The wire form of a [`CpuModel`], fixed length, little-endian:
//!
//! ```text
//!   0 vendor [u8; 12]
//!  12 signature u32, ext_signature u32, max_basic u32, max_ext u32
//!  28 features [u32; 10]                      (FEATURE_WORDS order)
//!  68 xcr0 u64
//!  76 xsave [(offset u32, size u32); 18]      (components 2..20)
//! 220 phys_bits u8, linear_bits u8, tsc_policy u8 (1: host rate), 0 u8
//! 224 tsc_khz u32
//! 228 tsc_leaves [u32; 6]
//! 252 hypercall_abi u32                       (256 bytes)
//! ```
//!
//! Decoding is strict: a field no CPU could report (no extended leaves, XCR0 without x87
//! state, a component described though not offered or offered though undescribed, address
//! widths outside 32..=64, a zero TSC rate, an unknown TSC policy, nonzero padding) is refused.

use super::{CpuModel, FEATURES, TscPolicy, XSAVE_DESCRIBED, XSAVE_END, XSAVE_FIRST};
use super::{XSAVE_LEGACY_AND_HEADER, XsaveComponent};

/// Bytes of an encoded model.
pub const ENCODED_LEN: usize = 256;

impl CpuModel {
    /// Appends the model's wire form to `out`.
    pub fn encode_into(&self, out: &mut alloc::vec::Vec<u8>) {
        out.extend_from_slice(&self.vendor);
        for v in [
            self.signature,
            self.ext_signature,
            self.max_basic,
            self.max_ext,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in self.features {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.xcr0.to_le_bytes());
        for c in self.xsave {
            out.extend_from_slice(&c.offset.to_le_bytes());
            out.extend_from_slice(&c.size.to_le_bytes());
        }
        out.extend_from_slice(&[
            self.phys_bits,
            self.linear_bits,
            match self.tsc_policy {
                TscPolicy::HostRate => 1,
            },
            0,
        ]);
        out.extend_from_slice(&self.tsc_khz.to_le_bytes());
        for v in self.tsc_leaves {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.hypercall_abi.to_le_bytes());
    }

    /// Decodes a model from exactly [`ENCODED_LEN`] bytes.
    ///
    /// # Errors
    /// The name of the first field no CPU could report (see the module documentation).
    pub fn decode(b: &[u8; ENCODED_LEN]) -> Result<Self, &'static str> {
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let mut vendor = [0u8; 12];
        vendor.copy_from_slice(&b[..12]);
        let features: [u32; FEATURES] = core::array::from_fn(|i| u32_at(28 + 4 * i));
        let xcr0 = u64::from(u32_at(68)) | (u64::from(u32_at(72)) << 32);
        let xsave: [XsaveComponent; XSAVE_DESCRIBED] = core::array::from_fn(|i| XsaveComponent {
            offset: u32_at(76 + 8 * i),
            size: u32_at(80 + 8 * i),
        });
        let model = Self {
            vendor,
            signature: u32_at(12),
            ext_signature: u32_at(16),
            max_basic: u32_at(20),
            max_ext: u32_at(24),
            features,
            xcr0,
            xsave,
            phys_bits: b[220],
            linear_bits: b[221],
            tsc_policy: match b[222] {
                1 => TscPolicy::HostRate,
                _ => return Err("TSC policy"),
            },
            tsc_khz: u32_at(224),
            tsc_leaves: core::array::from_fn(|i| u32_at(228 + 4 * i)),
            hypercall_abi: u32_at(252),
        };
        if b[223] != 0 {
            return Err("CPU model padding");
        }
        model.validate()?;
        Ok(model)
    }

    /// Checks the fields [`CpuModel::decode`] refuses.
    fn validate(&self) -> Result<(), &'static str> {
        if self.max_basic >= 0x4000_0000 || !(0x8000_0000..0x9000_0000).contains(&self.max_ext) {
            return Err("highest CPUID leaf");
        }
        if (self.xcr0 != 0 && self.xcr0 & 1 == 0) || self.xcr0 >> XSAVE_END != 0 {
            return Err("XCR0");
        }
        for i in XSAVE_FIRST..XSAVE_END {
            let c = self.component(i).unwrap_or_default();
            let offered = self.xcr0 & (1 << i) != 0;
            let sane = c.size != 0 && c.offset >= XSAVE_LEGACY_AND_HEADER;
            if offered != sane || (!offered && c != XsaveComponent::default()) {
                return Err("XSAVE component");
            }
        }
        if !(32..=64).contains(&self.phys_bits) || !(32..=64).contains(&self.linear_bits) {
            return Err("address width");
        }
        if self.tsc_khz == 0 {
            return Err("TSC rate");
        }
        Ok(())
    }
}
