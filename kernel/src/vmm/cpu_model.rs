// SPDX-License-Identifier: MIT OR Apache-2.0
//! This host's side of a pair's CPU model ([`castor_ft::pair::cpu_model`]): the model it
//! offers guests, read from CPUID through Castor's own filter ([`this_host`]), and the
//! baseline the pair agreed on ([`set_negotiated`]), to which a paired guest's CPUID answers are
//! narrowed ([`offer`], through [`super::cpuid::filter_with`]) so that it sees the same CPU on
//! either host. Vendor neutral.

use castor_ft::pair::cpu_model::{
    CpuModel, FEATURE_WORDS, Reg, TscPolicy, XSAVE_END, XSAVE_FIRST, XSAVE_LEGACY_AND_HEADER,
    XsaveComponent,
};
use spin::Once;

use super::cpuid::{self, Regs};

/// The pair's baseline, once agreed.
static NEGOTIATED: Once<CpuModel> = Once::new();

/// Makes `model` the CPU every guest of this host is offered from now on (a pair agrees on it
/// before its guest starts, once per boot). Returns whether it is in force: `false` if another
/// model was set before.
pub fn set_negotiated(model: CpuModel) -> bool {
    *NEGOTIATED.call_once(|| model) == model
}

/// The pair's baseline, if this host is one of a pair that agreed on one.
pub fn negotiated() -> Option<&'static CpuModel> {
    NEGOTIATED.get()
}

fn reg(r: &Regs, which: Reg) -> u32 {
    match which {
        Reg::Eax => r.eax,
        Reg::Ebx => r.ebx,
        Reg::Ecx => r.ecx,
        Reg::Edx => r.edx,
    }
}

fn reg_mut(r: &mut Regs, which: Reg) -> &mut u32 {
    match which {
        Reg::Eax => &mut r.eax,
        Reg::Ebx => &mut r.ebx,
        Reg::Ecx => &mut r.ecx,
        Reg::Edx => &mut r.edx,
    }
}

/// What a guest of this host sees for `leaf`/`subleaf` without a model: [`cpuid::filter`] of
/// the host's answer.
fn guest_view(leaf: u32, subleaf: u32) -> Regs {
    let host = core::arch::x86_64::__cpuid_count(leaf, subleaf).into();
    cpuid::filter(leaf, subleaf, host, 0)
}

/// The model this host offers guests: every field read through [`cpuid::filter`], so it is
/// what Castor lets a guest see here (Intel SDM Vol. 2A, CPUID; AMD APM Vol. 3, Appendix E).
/// Leaves above the host's limits read as zeros (Intel CPUs would repeat their highest leaf);
/// without leaf 0x8000_0008 the address widths are the architectural minimum, 36/48 bits.
/// `tsc_hz` is this host's calibrated TSC rate.
pub fn this_host(tsc_hz: u64) -> CpuModel {
    let l0 = guest_view(0, 0);
    let mut vendor = [0u8; 12];
    for (i, word) in [l0.ebx, l0.edx, l0.ecx].into_iter().enumerate() {
        vendor[4 * i..4 * i + 4].copy_from_slice(&word.to_le_bytes());
    }
    let max_basic = l0.eax.min(0x3FFF_FFFF);
    let max_ext = guest_view(0x8000_0000, 0)
        .eax
        .clamp(0x8000_0000, 0x8FFF_FFFF);
    let mut model = CpuModel {
        vendor,
        signature: 0,
        ext_signature: 0,
        max_basic,
        max_ext,
        features: [0; FEATURE_WORDS.len()],
        xcr0: 0,
        xsave: Default::default(),
        phys_bits: 36,
        linear_bits: 48,
        tsc_policy: TscPolicy::HostRate,
        tsc_khz: u32::try_from(tsc_hz / 1000).unwrap_or(u32::MAX).max(1),
        tsc_leaves: [0; 6],
        hypercall_abi: guest_view(0x4000_0001, 0).eax,
    };
    let limits = model;
    let read = |leaf, subleaf| {
        if limits.has_leaf(leaf) {
            guest_view(leaf, subleaf)
        } else {
            Regs::default()
        }
    };
    model.signature = read(1, 0).eax;
    model.ext_signature = read(0x8000_0001, 0).eax;
    for (i, w) in FEATURE_WORDS.iter().enumerate() {
        model.features[i] = reg(&read(w.leaf, w.subleaf), w.reg) & !w.dynamic;
    }
    let d0 = read(0xD, 0);
    let mut xcr0 = (u64::from(d0.edx) << 32 | u64::from(d0.eax)) & ((1 << XSAVE_END) - 1);
    for i in XSAVE_FIRST..XSAVE_END {
        if xcr0 & (1 << i) != 0 {
            let c = read(0xD, i);
            if c.eax == 0 || c.ebx < XSAVE_LEGACY_AND_HEADER {
                xcr0 &= !(1 << i);
            } else {
                model.xsave[(i - XSAVE_FIRST) as usize] = XsaveComponent {
                    offset: c.ebx,
                    size: c.eax,
                };
            }
        }
    }
    model.xcr0 = if xcr0 & 1 != 0 { xcr0 } else { 0 };
    if model.xcr0 == 0 {
        model.xsave = Default::default();
    }
    if model.has_leaf(0x8000_0008) {
        let widths = read(0x8000_0008, 0).eax;
        model.phys_bits = (widths as u8).clamp(32, 64);
        model.linear_bits = ((widths >> 8) as u8).clamp(32, 64);
    }
    let (t15, t16) = (read(0x15, 0), read(0x16, 0));
    model.tsc_leaves = [t15.eax, t15.ebx, t15.ecx, t16.eax, t16.ebx, t16.ecx];
    model
}

/// `r`, the filtered answer for `leaf`/`subleaf`, narrowed to `model`: leaves beyond its limits
/// read as zeros, leaf limits, signatures, XSAVE enumeration (SDM Vol. 1, 13.2), TSC leaves and
/// address widths are the model's, and feature words keep only the model's bits (and those
/// that follow the guest's own CR4).
pub fn offer(model: &CpuModel, leaf: u32, subleaf: u32, mut r: Regs) -> Regs {
    if !model.has_leaf(leaf) {
        return Regs::default();
    }
    let t = &model.tsc_leaves;
    match (leaf, subleaf) {
        (0, _) => r.eax = model.max_basic,
        (1, _) => r.eax = model.signature,
        (0xD, _) if model.xcr0 == 0 => r = Regs::default(),
        (0xD, 0) => {
            r.eax = model.xcr0 as u32;
            r.edx = (model.xcr0 >> 32) as u32;
            r.ecx = model.xsave_size(model.xcr0);
        }
        // A user (XCR0) component the model does not offer (ECX bit 0 clear; set for XSS).
        (0xD, 2..64) if r.ecx & 1 == 0 && model.xcr0 & (1 << subleaf) == 0 => {
            r = Regs::default();
        }
        (0x15, _) => {
            r = Regs {
                eax: t[0],
                ebx: t[1],
                ecx: t[2],
                edx: 0,
            }
        }
        (0x16, _) => {
            r = Regs {
                eax: t[3],
                ebx: t[4],
                ecx: t[5],
                edx: 0,
            }
        }
        (0x8000_0000, _) => r.eax = model.max_ext,
        (0x8000_0001, _) => r.eax = model.ext_signature,
        (0x8000_0008, _) => {
            r.eax = (r.eax & !0x00FF_FFFF)
                | u32::from(model.phys_bits)
                | u32::from(model.linear_bits) << 8;
        }
        _ => {}
    }
    for (i, w) in FEATURE_WORDS.iter().enumerate() {
        if (w.leaf, w.subleaf) == (leaf, subleaf) {
            *reg_mut(&mut r, w.reg) &= model.features[i] | w.dynamic;
        }
    }
    r
}

/// How many feature bits and XSAVE components `host` has that `model` withholds from guests.
pub fn withheld(model: &CpuModel, host: &CpuModel) -> u32 {
    let features: u32 = (model.features.iter().zip(host.features))
        .map(|(m, h)| (h & !m).count_ones())
        .sum();
    features + (host.xcr0 & !model.xcr0).count_ones()
}

#[cfg(test)]
mod tests;
