// SPDX-License-Identifier: MIT OR Apache-2.0
//! The CPU model: wire form, strict decoding, the baseline and the refusals.

use alloc::string::ToString;
use alloc::vec::Vec;

use super::*;
use crate::testutil::Rng;

const AVX_FEATURE: u32 = 1 << 28;
const AVX2: u32 = 1 << 5;
const AVX512F: u32 = 1 << 16;

/// A host like an AVX-512 server: x87, SSE, AVX, AVX-512 and PKRU state, standard layout.
pub(crate) fn server() -> CpuModel {
    let mut xsave = [XsaveComponent::default(); XSAVE_DESCRIBED];
    for (i, offset, size) in [
        (2, 576, 256),
        (5, 1088, 64),
        (6, 1152, 512),
        (7, 1664, 1024),
    ] {
        xsave[i - 2] = XsaveComponent { offset, size };
    }
    xsave[9 - 2] = XsaveComponent {
        offset: 2688,
        size: 8,
    };
    CpuModel {
        vendor: *b"AuthenticAMD",
        signature: 0x00A0_0F11,
        ext_signature: 0x00A0_0F11,
        max_basic: 0x10,
        max_ext: 0x8000_0021,
        features: [
            0xF6F8_3203 | AVX_FEATURE | (1 << 26) | (1 << 31),
            0x178B_FBFF,
            AVX2 | AVX512F | 1,
            (1 << 3) | 0x0040_0000,
            0x10,
            0xF,
            0x75C2_37FF,
            0x2FD3_FBFF,
            1 << 8,
            0x0100_D219,
        ],
        xcr0: 0b10_1110_0111,
        xsave,
        phys_bits: 48,
        linear_bits: 57,
        tsc_policy: TscPolicy::HostRate,
        tsc_khz: 2_450_000,
        tsc_leaves: [0; 6],
        hypercall_abi: 1,
    }
}

/// An older host of the same vendor: no AVX-512 or PKU, fewer leaves, narrower addresses.
pub(crate) fn older() -> CpuModel {
    let mut m = server();
    m.max_basic = 0xD;
    m.max_ext = 0x8000_001F;
    m.features[2] = AVX2 | 1;
    m.features[3] = 0;
    m.features[8] = 0;
    m.xcr0 = 0b111;
    m.xsave[5 - 2] = XsaveComponent::default();
    m.xsave[6 - 2] = XsaveComponent::default();
    m.xsave[7 - 2] = XsaveComponent::default();
    m.xsave[9 - 2] = XsaveComponent::default();
    m.phys_bits = 43;
    m.linear_bits = 48;
    m.signature = 0x0080_0F12;
    m.tsc_khz = 2_440_000;
    m
}

fn encode(m: &CpuModel) -> [u8; ENCODED_LEN] {
    let mut out = Vec::new();
    m.encode_into(&mut out);
    out.try_into().expect("encoded length")
}

#[test]
fn the_wire_form_round_trips() {
    for m in [server(), older()] {
        assert_eq!(CpuModel::decode(&encode(&m)), Ok(m));
    }
}

#[test]
fn decoding_refuses_what_no_cpu_reports() {
    let good = encode(&server());
    let refused = |at: usize, value: u8, field: &str| {
        let mut b = good;
        b[at] = value;
        assert_eq!(CpuModel::decode(&b), Err(field), "byte {at} = {value}");
    };
    refused(223, 1, "CPU model padding");
    refused(222, 2, "TSC policy");
    refused(220, 31, "address width");
    refused(221, 65, "address width");
    refused(23, 0x40, "highest CPUID leaf");
    refused(27, 0x7F, "highest CPUID leaf");
    refused(68, 0b1110, "XCR0");
    refused(71, 0x80, "XCR0");
    // Component 3 (MPX) described though not offered; component 2 offered with no size.
    refused(76 + 8, 1, "XSAVE component");
    refused(77, 0, "XSAVE component"); // component 2 at offset 0
    let mut b = good;
    b[80..84].fill(0);
    assert_eq!(CpuModel::decode(&b), Err("XSAVE component"), "no size");
    let mut b = good;
    b[224..228].fill(0);
    assert_eq!(CpuModel::decode(&b), Err("TSC rate"));
    let mut rng = Rng::new(11);
    for _ in 0..20_000 {
        let mut b = good;
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(ENCODED_LEN);
            b[at] = rng.byte();
        }
        if let Ok(m) = CpuModel::decode(&b) {
            assert_eq!(encode(&m), b, "what decodes encodes back to the same bytes");
        }
    }
}

#[test]
fn the_baseline_is_what_both_hosts_offer() {
    let (p, b) = (server(), older());
    let m = CpuModel::intersect(&p, &b).unwrap();
    assert_eq!(m.signature, p.signature, "the primary's signature");
    assert_eq!(m.tsc_khz, p.tsc_khz);
    assert_eq!((m.max_basic, m.max_ext), (0xD, 0x8000_001F));
    assert_eq!((m.phys_bits, m.linear_bits), (43, 48));
    assert_eq!(m.features[2], AVX2 | 1, "AVX-512 is the server's alone");
    assert_eq!(m.features[8], 0);
    assert_eq!(m.xcr0, 0b111);
    assert_eq!(
        m.xsave_size(m.xcr0),
        832,
        "x87, SSE and AVX: 576 + 256 bytes"
    );
    assert_eq!(p.xsave_size(p.xcr0), 2696, "up to PKRU");
    assert_eq!(m.component(5), Some(XsaveComponent::default()));
    assert_eq!(
        CpuModel::intersect(&p, &p),
        Ok(p),
        "a pair of equals offers everything"
    );
    assert_eq!(m.can_resume(&p), Ok(()));
    assert_eq!(m.can_resume(&b), Ok(()));
    assert_eq!(
        CpuModel::intersect(&b, &p).map(|m| m.signature),
        Ok(b.signature),
        "the primary's signature, whichever it is"
    );
}

#[test]
fn the_baseline_keeps_only_consistent_xsave_state() {
    let (p, mut b) = (server(), server());
    // The backup lays AVX-512's ZMM_Hi256 out elsewhere: all of AVX-512 goes, with its flags.
    b.xsave[6 - 2].offset = 1216;
    let m = CpuModel::intersect(&p, &b).unwrap();
    assert_eq!(m.xcr0, 0b10_0000_0111);
    assert_eq!(m.features[2] & AVX512F, 0);
    assert_ne!(m.features[2] & AVX2, 0);
    assert_eq!(m.xsave_size(m.xcr0), 2696);
    // Without AVX state nothing needing it is offered; without XSAVE state, no XSAVE at all.
    b.xcr0 = 0b11;
    let m = CpuModel::intersect(&p, &b).unwrap();
    assert_eq!(m.xcr0, 0b11);
    assert_eq!(m.features[0] & AVX_FEATURE, 0);
    assert_eq!(m.features[2] & (AVX2 | AVX512F), 0);
    assert_eq!(m.features[3] & (1 << 3), 0, "PKU needs PKRU state");
    b.xcr0 = 0;
    let m = CpuModel::intersect(&p, &b).unwrap();
    assert_eq!(
        (m.xcr0, m.features[5], m.features[0] & (1 << 26)),
        (0, 0, 0)
    );
    assert_eq!(m.xsave_size(m.xcr0), 0);
    // A leaf limit below 7 takes leaf 7's words; below 0x15 the TSC leaves.
    let (mut p, mut b) = (server(), server());
    p.tsc_leaves = [2, 100, 24_000_000, 2400, 3000, 100];
    b.tsc_leaves = p.tsc_leaves;
    let m = CpuModel::intersect(&p, &b).unwrap();
    assert_eq!(
        m.tsc_leaves, [0; 6],
        "leaf 0x15 is above the highest basic leaf 0x10"
    );
    p.max_basic = 0x16;
    b.max_basic = 0x16;
    assert_eq!(
        CpuModel::intersect(&p, &b).unwrap().tsc_leaves,
        p.tsc_leaves
    );
    b.tsc_leaves[1] = 104;
    assert_eq!(CpuModel::intersect(&p, &b).unwrap().tsc_leaves, [0; 6]);
    b.max_basic = 6;
    let m = CpuModel::intersect(&p, &b).unwrap();
    assert_eq!(&m.features[2..5], &[0, 0, 0]);
    assert_eq!(m.xcr0, 0);
}

#[test]
fn pairs_that_cannot_share_a_guest_are_refused_with_the_reason() {
    let p = server();
    let mut intel = server();
    intel.vendor = *b"GenuineIntel";
    assert_eq!(
        CpuModel::intersect(&p, &intel).unwrap_err().to_string(),
        "the CPU vendors differ: AuthenticAMD on the primary, GenuineIntel on the backup \
         (a guest cannot fail over to another vendor's CPU)"
    );
    let mut slow = server();
    slow.tsc_khz = p.tsc_khz - p.tsc_khz / 100;
    assert!(
        CpuModel::intersect(&p, &slow).is_ok(),
        "1% is calibration error"
    );
    slow.tsc_khz -= 1;
    assert_eq!(
        CpuModel::intersect(&p, &slow).unwrap_err(),
        CpuMismatch::TscRate {
            primary_khz: 2_450_000,
            backup_khz: 2_425_499
        }
    );
    let mut abi = server();
    abi.hypercall_abi = 2;
    assert!(matches!(
        CpuModel::intersect(&p, &abi),
        Err(CpuMismatch::HypercallAbi {
            primary: 1,
            backup: 2
        })
    ));
    let m = CpuModel::intersect(&p, &older()).unwrap();
    assert_eq!(m.check_guest_span(1 << 43), Ok(()));
    assert_eq!(
        m.check_guest_span((1 << 43) + 1).unwrap_err().to_string(),
        "the guest needs 44-bit physical addresses, the pair's CPUs share 43"
    );
    assert_eq!(
        CpuModel::baseline(&p, &older(), 1 << 32).map(|m| m.xcr0),
        Ok(0b111)
    );
}

#[test]
fn a_host_resumes_only_a_guest_it_can_run() {
    let model = server();
    let mut host = older();
    host.max_basic = 0x10;
    host.max_ext = 0x8000_0021;
    assert_eq!(
        model.can_resume(&host).unwrap_err().to_string(),
        "it lacks CPUID leaf 0x7.0 EBX bits 0x00010000"
    );
    host.max_basic = 0xD;
    assert!(matches!(
        model.can_resume(&host),
        Err(ResumeError::MaxLeaf { .. })
    ));
    let mut host = server();
    host.features[0] &= !(1 << 27);
    host.features[3] &= !(1 << 4);
    let mut model = server();
    model.features[0] |= 1 << 27;
    model.features[3] |= 1 << 4;
    assert_eq!(
        model.can_resume(&host),
        Ok(()),
        "OSXSAVE and OSPKE are the guest's"
    );
    let model = server();
    host.xcr0 &= !(1 << 9);
    assert_eq!(
        model.can_resume(&host),
        Err(ResumeError::Xcr0 { missing: 1 << 9 })
    );
    let mut host = server();
    host.xsave[9 - 2].offset = 2752;
    assert_eq!(
        model.can_resume(&host).unwrap_err().to_string(),
        "its XSAVE area for the guest's features is 2760 bytes, the guest's 2696"
    );
    host.xsave[9 - 2].offset = 2600;
    assert_eq!(
        model.can_resume(&host).unwrap_err().to_string(),
        "it puts XSAVE component 9 at 2600+8, the guest's at 2688+8"
    );
    let mut host = server();
    host.phys_bits = 40;
    assert!(matches!(
        model.can_resume(&host),
        Err(ResumeError::AddressBits { .. })
    ));
    host.vendor = *b"HygonGenuine";
    let why = CpuMismatch::Resume {
        host: Role::Backup,
        why: model.can_resume(&host).unwrap_err(),
    };
    assert_eq!(
        why.to_string(),
        "the backup cannot resume the guest: its CPU is HygonGenuine, the guest's AuthenticAMD"
    );
}
