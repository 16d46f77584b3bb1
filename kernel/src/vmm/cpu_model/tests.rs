// SPDX-License-Identifier: MIT OR Apache-2.0
//! The guest's CPUID answers honour a negotiated model; this host's model is a valid one.

use alloc::vec::Vec;

use castor_ft::pair::cpu_model::ENCODED_LEN;

use super::*;

const AVX2: u32 = 1 << 5;
const BMI2: u32 = 1 << 8;
const OSXSAVE: u32 = 1 << 27;

/// A host offering SSE-class features, AVX state and leaf 0x15.
fn host() -> CpuModel {
    let mut xsave: [XsaveComponent; 18] = Default::default();
    xsave[0] = XsaveComponent {
        offset: 576,
        size: 256,
    };
    CpuModel {
        vendor: *b"GenuineIntel",
        signature: 0x000A_06A4,
        ext_signature: 0,
        max_basic: 0x16,
        max_ext: 0x8000_0008,
        features: [
            0x1EDA_3203,
            0x0789_FBFF,
            AVX2 | BMI2 | 1,
            0,
            0,
            1,
            0x121,
            0x2C10_0800,
            0x100,
            0,
        ],
        xcr0: 0b111,
        xsave,
        phys_bits: 46,
        linear_bits: 57,
        tsc_policy: TscPolicy::HostRate,
        tsc_khz: 2_000_000,
        tsc_leaves: [2, 166, 38_400_000, 3000, 4000, 100],
        hypercall_abi: cpuid::HYPERCALL_ABI_VERSION,
    }
}

/// An older backup: no BMI2, no leaf 0x16, 39-bit addresses, another crystal.
fn backup() -> CpuModel {
    let mut m = host();
    m.signature = 0x0003_06C3;
    m.max_basic = 0x15;
    m.features[2] &= !BMI2;
    m.phys_bits = 39;
    m.linear_bits = 48;
    m.tsc_leaves = [2, 200, 24_000_000, 0, 0, 0];
    m
}

const ALL: Regs = Regs {
    eax: u32::MAX,
    ebx: u32::MAX,
    ecx: u32::MAX,
    edx: u32::MAX,
};

#[test]
fn a_feature_the_backup_lacks_is_not_offered() {
    let model = CpuModel::intersect(&host(), &backup()).unwrap();
    let leaf7 = cpuid::filter_with(Some(&model), 7, 0, ALL, 0);
    assert_eq!(leaf7.ebx & BMI2, 0, "the backup has no BMI2");
    assert_eq!(
        cpuid::filter(7, 0, ALL, 0).ebx & BMI2,
        BMI2,
        "Castor's filter alone offers it"
    );
    assert_eq!(
        cpuid::filter_with(None, 7, 0, ALL, 0),
        cpuid::filter(7, 0, ALL, 0),
        "without a model the filter is unchanged"
    );
    assert_eq!(offer(&model, 7, 0, ALL).ebx, model.features[2]);
    let leaf1 = offer(&model, 1, 0, ALL);
    assert_eq!(
        leaf1.eax,
        host().signature,
        "the primary's signature on both hosts"
    );
    assert_eq!(
        leaf1.ecx,
        model.features[0] | OSXSAVE,
        "OSXSAVE is the guest's CR4"
    );
    assert_eq!(
        leaf1.ebx,
        u32::MAX,
        "APIC id and CLFLUSH size are not the model's"
    );
    assert_eq!(offer(&model, 0, 0, ALL).eax, 0x15);
    assert_eq!(
        offer(&model, 0x16, 0, ALL),
        Regs::default(),
        "above the basic limit"
    );
    assert_eq!(
        offer(&model, 0x15, 0, ALL),
        Regs::default(),
        "crystals disagree"
    );
    assert_eq!(offer(&model, 0x8000_0009, 0, ALL), Regs::default());
    assert_eq!(offer(&model, 0x8000_0008, 0, ALL).eax, 0xFF00_3027);
    assert_eq!(
        offer(&model, 0x4000_0001, 0, ALL),
        ALL,
        "Castor's own leaves pass"
    );
    assert_eq!(withheld(&model, &host()), 1);
    assert_eq!(withheld(&model, &backup()), 0);
}

#[test]
fn xsave_enumeration_is_the_models() {
    let model = host();
    let d0 = offer(&model, 0xD, 0, ALL);
    assert_eq!((d0.eax, d0.edx, d0.ecx), (0b111, 0, 832));
    assert_eq!(offer(&model, 0xD, 2, ALL), ALL, "AVX state is offered");
    let user = Regs { ecx: 0, ..ALL };
    assert_eq!(offer(&model, 0xD, 9, user), Regs::default(), "PKRU is not");
    assert_eq!(
        offer(&model, 0xD, 8, ALL),
        ALL,
        "supervisor (XSS) components are left alone"
    );
    let mut plain = model;
    plain.xcr0 = 0;
    plain.xsave = Default::default();
    assert_eq!(offer(&plain, 0xD, 0, ALL), Regs::default());
    assert_eq!(offer(&plain, 0xD, 1, ALL), Regs::default());
}

#[test]
fn this_hosts_model_is_valid_and_pairs_with_itself() {
    let here = this_host(2_100_000_000);
    assert_eq!(here.tsc_khz, 2_100_000);
    let mut bytes = Vec::new();
    here.encode_into(&mut bytes);
    let bytes: [u8; ENCODED_LEN] = bytes.try_into().unwrap();
    assert_eq!(CpuModel::decode(&bytes), Ok(here));
    let model = CpuModel::baseline(&here, &here, 1 << 32).unwrap();
    assert_eq!(model.can_resume(&here), Ok(()));
    assert_eq!(model.hypercall_abi, cpuid::HYPERCALL_ABI_VERSION);
}
