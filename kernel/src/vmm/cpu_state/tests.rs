// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host tests of the vCPU state encoding and its checks.

use alloc::vec::Vec;

use super::*;
use crate::testutil::Rng;
use crate::vmm::msr;

fn seg(selector: u16, base: u64, limit: u32, rights: u32) -> Segment {
    Segment {
        selector,
        base,
        limit,
        rights,
    }
}

/// A 64-bit guest in the middle of its work: every field non-trivial, an exception with an
/// error code pending.
fn long_mode() -> CpuState {
    let mut regs = GuestRegs::default();
    for (i, r) in [
        &mut regs.rax,
        &mut regs.rbx,
        &mut regs.rcx,
        &mut regs.rdx,
        &mut regs.rsi,
        &mut regs.rdi,
        &mut regs.rbp,
        &mut regs.r8,
        &mut regs.r9,
        &mut regs.r10,
        &mut regs.r11,
        &mut regs.r12,
        &mut regs.r13,
        &mut regs.r14,
        &mut regs.r15,
    ]
    .into_iter()
    .enumerate()
    {
        *r = 0x0123_4567_89AB_CDEF_u64.rotate_left(i as u32 * 4);
    }
    regs.cr2 = 0x20_0000;
    let flat = |sel| seg(sel, 0, 0xFFFF_FFFF, 0xC093);
    CpuState {
        regs,
        rip: 0xFFFF_8000_0010_1234,
        rsp: 0x7FF00,
        rflags: 0x246 | RFLAGS_IF,
        cr0: 0x8001_0033,
        cr3: 0x1000,
        cr4: 0x220,
        efer: 0xD00,
        cs: seg(0x08, 0, 0xFFFF_FFFF, 0xA09B),
        ds: flat(0x10),
        es: flat(0x10),
        fs: seg(0, 0x6000, 0xFFFF_FFFF, 0xC093),
        gs: seg(0, 0xFFFF_8880_0000_0000, 0xFFFF_FFFF, 0xC093),
        ss: flat(0x10),
        tr: seg(0x28, 0x7000, 0x67, 0x8B),
        ldtr: seg(0, 0, 0, UNUSABLE),
        gdtr: DescriptorTable {
            base: 0x10_0800,
            limit: 0x27,
        },
        idtr: DescriptorTable {
            base: 0x10_1000,
            limit: 0x2FF,
        },
        sysenter_cs: 0x10,
        sysenter_esp: 0x7_0000,
        sysenter_eip: 0x10_0123,
        star: 0x0023_0010_0000_0000,
        lstar: 0xFFFF_FFFF_8100_0000,
        cstar: 0,
        sfmask: 0x4_7700,
        kernel_gs_base: 0xFFFF_8880_0001_0000,
        msrs: EmulatedMsrs {
            pat: 0x0007_0406_0007_0106,
            mtrr_def_type: 0x806,
            apic_base: 0xFEE0_0900,
        },
        dr7: 0x400,
        pdpte: [0; 4],
        sti_blocking: false,
        mov_ss_blocking: false,
        event: Some(Event {
            kind: EventKind::HardwareException,
            vector: 13,
            error_code: Some(0x1234),
            instruction_len: 0,
        }),
        interrupt_window: true,
        pending_io_in: Some(2),
        ext: ExtendedState::RESET,
    }
}

/// 32-bit protected mode with PAE paging: the PDPTEs are live.
fn pae() -> CpuState {
    let mut s = long_mode();
    s.efer = 0x800;
    s.cr0 = 0x8000_0011;
    s.cs = seg(0x10, 0, 0xFFFF_FFFF, 0xC09B);
    s.rip = 0x10_0040;
    s.fs.base = 0x5000;
    s.gs.base = 0;
    s.lstar = 0;
    s.kernel_gs_base = 0;
    s.gdtr.base = 0x10_0800;
    s.pdpte = [0x3001, 0, 0x4001, 0];
    s.event = None;
    s
}

/// Real mode, as `GuestStart::Real` begins.
fn real_mode() -> CpuState {
    let mut s = long_mode();
    s.efer = 0;
    s.cr0 = 0x30;
    s.cr4 = 0;
    s.cs = seg(0, 0, 0xFFFF, 0x9B);
    for d in [&mut s.ds, &mut s.es, &mut s.fs, &mut s.gs, &mut s.ss] {
        *d = seg(0, 0, 0xFFFF, 0x93);
    }
    s.tr = seg(0, 0, 0xFFFF, 0x8B);
    s.rip = 0x7C00;
    s.rflags = 0x2;
    s.event = None;
    s.pending_io_in = None;
    s
}

fn reencode(s: &CpuState) -> Result<CpuState, CpuStateError> {
    CpuState::from_bytes(&s.to_bytes())
}

#[test]
fn round_trip() {
    for s in [long_mode(), pae(), real_mode()] {
        let bytes = s.to_bytes();
        assert_eq!(bytes.len(), ENCODED_LEN);
        assert_eq!(CpuState::from_bytes(&bytes), Ok(s));
    }
    let mut s = long_mode();
    for (kind, vector, error_code, len) in [
        (EventKind::External, 0x21, None, 0),
        (EventKind::Nmi, 2, None, 0),
        (EventKind::HardwareException, 6, None, 0),
        (EventKind::HardwareException, 14, Some(0x2), 0),
        (EventKind::SoftwareInterrupt, 0x80, None, 2),
        (EventKind::PrivilegedSoftwareException, 1, None, 1),
        (EventKind::SoftwareException, 3, None, 1),
        (EventKind::SoftwareInterrupt, 0x80, None, 0),
    ] {
        s.event = Some(Event {
            kind,
            vector,
            error_code,
            instruction_len: len,
        });
        assert_eq!(reencode(&s), Ok(s), "{kind:?}");
    }
    s.event = None;
    s.sti_blocking = true;
    assert_eq!(reencode(&s), Ok(s));
    s.sti_blocking = false;
    s.mov_ss_blocking = true;
    assert_eq!(reencode(&s), Ok(s));
}

#[test]
fn the_encoding_fits_the_stream_and_starts_with_its_header() {
    let bytes = long_mode().to_bytes();
    assert!(bytes.len() <= 2048);
    assert_eq!(&bytes[..4], b"CVCP");
    assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), VERSION);
    assert_eq!(
        usize::from(u16::from_le_bytes([bytes[6], bytes[7]])),
        ENCODED_LEN
    );
    // Spot-check the documented offsets.
    let at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
    let s = long_mode();
    assert_eq!(at(8), s.regs.rax);
    assert_eq!(at(120), s.regs.r15);
    assert_eq!(at(128), s.regs.cr2);
    assert_eq!(at(136), s.rip);
    assert_eq!(at(184), s.efer);
    assert_eq!(at(192 + 3 * 24 + 8), s.fs.base);
    assert_eq!(at(384), s.gdtr.base);
    assert_eq!(at(416), s.sysenter_cs);
    assert_eq!(at(472), s.kernel_gs_base);
    assert_eq!(at(480), s.msrs.pat);
    assert_eq!(at(504), s.dr7);
    assert_eq!(bytes[552], 2, "pending IN width");
}

#[test]
fn every_truncation_and_extension_is_rejected() {
    let bytes = long_mode().to_bytes();
    for n in 0..ENCODED_LEN {
        assert_eq!(
            CpuState::from_bytes(&bytes[..n]),
            Err(CpuStateError::Length(n))
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        CpuState::from_bytes(&longer),
        Err(CpuStateError::Length(ENCODED_LEN + 1))
    );
}

#[test]
fn wrong_magic_version_or_length_field_is_rejected() {
    let good = long_mode().to_bytes();
    let mut b = good.clone();
    b[0] ^= 0x20;
    assert_eq!(CpuState::from_bytes(&b), Err(CpuStateError::Magic));
    for version in [0u16, VERSION + 1, u16::MAX] {
        let mut b = good.clone();
        b[4..6].copy_from_slice(&version.to_le_bytes());
        assert_eq!(
            CpuState::from_bytes(&b),
            Err(CpuStateError::Version(version))
        );
    }
    let mut b = good;
    b[6] ^= 1;
    assert!(matches!(
        CpuState::from_bytes(&b),
        Err(CpuStateError::Invalid(_))
    ));
}

#[test]
fn every_padding_byte_and_reserved_flag_is_rejected() {
    let mut s = long_mode();
    s.event = None;
    let good = s.to_bytes();
    let mut padding: Vec<usize> = Vec::new();
    for i in 0..8 {
        let base = 192 + 24 * i;
        padding.extend([
            base + 2,
            base + 3,
            base + 20,
            base + 21,
            base + 22,
            base + 23,
        ]);
    }
    for t in 0..2 {
        padding.extend((384 + 16 * t + 10)..(384 + 16 * t + 16));
    }
    // Event fields without an event, and the trailing bytes.
    padding.extend(545..552);
    padding.extend(553..560);
    for i in padding {
        let mut b = good.clone();
        b[i] = 1;
        assert!(
            matches!(CpuState::from_bytes(&b), Err(CpuStateError::Reserved(_))),
            "byte {i}"
        );
    }
    for bit in 4..8 {
        let mut b = good.clone();
        b[544] |= 1 << bit;
        assert!(
            matches!(CpuState::from_bytes(&b), Err(CpuStateError::Reserved(_))),
            "flag bit {bit}"
        );
    }
    // With an event but no error code, the error-code bytes must be zero.
    s.event = Some(Event {
        kind: EventKind::External,
        vector: 0x30,
        error_code: None,
        instruction_len: 0,
    });
    let mut b = s.to_bytes();
    b[548] = 1;
    assert!(matches!(
        CpuState::from_bytes(&b),
        Err(CpuStateError::Reserved(_))
    ));
}

#[test]
fn states_the_hardware_would_refuse_are_rejected() {
    type Case = (&'static str, fn() -> CpuState, fn(&mut CpuState));
    let cases: [Case; 35] = [
        ("CR0 reserved bit", long_mode, |s| s.cr0 |= 1 << 6),
        ("CR0 above bit 31", long_mode, |s| s.cr0 |= 1 << 32),
        ("PG without PE", real_mode, |s| s.cr0 |= CR0_PG),
        ("NW without CD", long_mode, |s| s.cr0 |= 1 << 29),
        ("CR4 bit 15", long_mode, |s| s.cr4 |= 1 << 15),
        ("CR3 above 52 bits", long_mode, |s| s.cr3 |= 1 << 60),
        ("EFER.SVME is not guest visible", long_mode, |s| {
            s.efer |= 1 << 12
        }),
        ("LMA without paging", real_mode, |s| {
            s.efer |= EFER_LMA | (1 << 8)
        }),
        ("LME with paging but no LMA", pae, |s| s.efer |= 1 << 8),
        ("DR7 high half", long_mode, |s| s.dr7 |= 1 << 40),
        ("RFLAGS bit 1 clear", long_mode, |s| s.rflags &= !2),
        ("RFLAGS bit 15", long_mode, |s| s.rflags |= 1 << 15),
        ("RFLAGS.VM in long mode", long_mode, |s| {
            s.rflags |= RFLAGS_VM
        }),
        ("RIP non-canonical", long_mode, |s| {
            s.rip = 0x0000_8000_0000_0000
        }),
        ("RIP above 4 GiB in 32-bit code", pae, |s| s.rip = 1 << 32),
        ("CS unusable", long_mode, |s| s.cs.rights |= UNUSABLE),
        ("CS L and D", long_mode, |s| s.cs.rights |= 1 << 14),
        ("access rights bit 8", long_mode, |s| s.ds.rights |= 1 << 8),
        ("access rights bit 20", long_mode, |s| {
            s.ldtr.rights |= 1 << 20
        }),
        ("limit vs granularity", long_mode, |s| {
            s.ds.limit = 0xFFFF_F000
        }),
        ("FS base non-canonical", long_mode, |s| s.fs.base = 1 << 47),
        ("GS base non-canonical", long_mode, |s| {
            s.gs.base = 0x00FF_0000_0000_0000
        }),
        ("TR not busy", long_mode, |s| s.tr.rights = 0x89),
        ("LDTR not an LDT", long_mode, |s| s.ldtr.rights = 0x93),
        ("IDTR base non-canonical", long_mode, |s| {
            s.idtr.base = 1 << 50
        }),
        ("LSTAR non-canonical", long_mode, |s| s.lstar = 1 << 48),
        ("SYSENTER_CS high half", long_mode, |s| {
            s.sysenter_cs |= 1 << 32
        }),
        ("PAT type 2", long_mode, |s| {
            s.msrs.pat = 0x0202_0202_0202_0202
        }),
        ("MTRR_DEF_TYPE type 7", long_mode, |s| {
            s.msrs.mtrr_def_type = 0x807
        }),
        ("PDPTE reserved bit", pae, |s| s.pdpte[0] |= 1 << 1),
        ("PDPTE without PAE paging", long_mode, |s| {
            s.pdpte[3] = 0x5001
        }),
        ("STI and MOV SS", long_mode, |s| {
            s.sti_blocking = true;
            s.mov_ss_blocking = true;
        }),
        ("STI blocking with IF clear", long_mode, |s| {
            s.rflags &= !RFLAGS_IF;
            s.sti_blocking = true;
        }),
        ("external interrupt with IF clear", long_mode, |s| {
            s.rflags &= !RFLAGS_IF;
            s.event = Some(Event {
                kind: EventKind::External,
                vector: 0x20,
                error_code: None,
                instruction_len: 0,
            });
        }),
        ("#GP without its error code", long_mode, |s| {
            s.event = Some(Event {
                kind: EventKind::HardwareException,
                vector: 13,
                error_code: None,
                instruction_len: 0,
            });
        }),
    ];
    for (what, base, mutate) in cases {
        let mut s = base();
        assert_eq!(s.check(), Ok(()), "{what}: base state");
        mutate(&mut s);
        assert!(s.check().is_err(), "{what}: accepted");
        assert!(reencode(&s).is_err(), "{what}: decoded");
    }
    // The unused register slot is not encoded, but an in-memory state must keep it zero.
    let mut s = long_mode();
    s.regs.reserved = 1;
    assert!(s.check().is_err());
    let event = |kind, vector, error_code, instruction_len| {
        let mut s = long_mode();
        s.event = Some(Event {
            kind,
            vector,
            error_code,
            instruction_len,
        });
        s.check()
    };
    assert!(
        event(EventKind::HardwareException, 6, Some(0), 0).is_err(),
        "#UD has none"
    );
    assert!(event(EventKind::HardwareException, 32, None, 0).is_err());
    assert!(event(EventKind::Nmi, 3, None, 0).is_err());
    assert!(event(EventKind::External, 0x20, None, 2).is_err());
    assert!(event(EventKind::SoftwareInterrupt, 0x80, None, 16).is_err());
    let mut s = real_mode();
    s.event = Some(Event {
        kind: EventKind::HardwareException,
        vector: 13,
        error_code: Some(0),
        instruction_len: 0,
    });
    assert!(s.check().is_err(), "real mode pushes no error codes");
    s.pending_io_in = Some(3);
    s.event = None;
    assert!(s.check().is_err());
}

#[test]
fn the_unreadable_state_is_refused_everywhere() {
    assert!(CpuState::UNREADABLE.check().is_err());
    assert!(CpuState::from_bytes(&CpuState::UNREADABLE.to_bytes()).is_err());
}

#[test]
fn bad_event_kinds_and_in_widths_do_not_decode() {
    let good = long_mode().to_bytes();
    for kind in [1u8, 7, 8, 0xFF] {
        let mut b = good.clone();
        b[545] = kind;
        assert!(CpuState::from_bytes(&b).is_err(), "kind {kind}");
    }
    for width in [3u8, 5, 8, 0xFF] {
        let mut b = good.clone();
        b[552] = width;
        assert!(CpuState::from_bytes(&b).is_err(), "width {width}");
    }
}

/// Random inputs never panic, and whatever decodes re-encodes to the same bytes: bit flips and
/// byte overwrites of valid encodings (most land on checked values), random lengths, and
/// random bodies behind a valid header.
#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let seeds = [
        long_mode().to_bytes(),
        pae().to_bytes(),
        real_mode().to_bytes(),
    ];
    let (mut accepted, mut rejected) = (0u32, 0u32);
    for i in 0..300_000u32 {
        let mut b = seeds[i as usize % seeds.len()].clone();
        match i % 4 {
            0 => {
                let bit = rng.next() as usize % (ENCODED_LEN * 8);
                b[bit / 8] ^= 1 << (bit % 8);
            }
            1 => {
                for _ in 0..1 + rng.next() % 4 {
                    let at = 8 + rng.next() as usize % (ENCODED_LEN - 8);
                    b[at] = rng.next() as u8;
                }
            }
            2 => {
                for x in &mut b[8..] {
                    *x = rng.next() as u8;
                }
            }
            _ => {
                let len = rng.next() as usize % (2 * ENCODED_LEN);
                b.resize(len, 0);
                for x in &mut b {
                    *x = rng.next() as u8;
                }
            }
        }
        match CpuState::from_bytes(&b) {
            Ok(s) => {
                accepted += 1;
                assert_eq!(s.to_bytes(), b, "accepted input is not canonical");
            }
            Err(_) => rejected += 1,
        }
    }
    // Both outcomes occur, so the mutations reach past the header and the checks.
    assert!(
        accepted > 1000 && rejected > 1000,
        "{accepted} accepted, {rejected} rejected"
    );
}

#[test]
fn emulated_msrs_round_trip_and_refuse_another_vcpus_apic() {
    let mut m = VirtualMsrs::new(0);
    m.write(msr::PAT, 0x0007_0406_0007_0106).unwrap();
    m.write(msr::MTRR_DEF_TYPE, 0x806).unwrap();
    let saved = EmulatedMsrs::of(&m);
    assert_eq!(saved.pat, 0x0007_0406_0007_0106);
    assert_eq!(saved.mtrr_def_type, 0x806);
    assert_eq!(saved.apic_base, 0xFEE0_0900);
    let restored = saved.apply(&VirtualMsrs::new(0)).unwrap();
    assert_eq!(restored, m);
    assert_eq!(
        saved.apply(&VirtualMsrs::new(1)),
        Err("IA32_APIC_BASE (another vCPU's)")
    );
    let bad = EmulatedMsrs { pat: 0x02, ..saved };
    assert_eq!(bad.apply(&VirtualMsrs::new(0)), Err("IA32_PAT"));
}
