// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host tests of the version-2 state: its encoding, the layout the backup refuses, and the
//! pure rules the back ends apply (TSC offset, pending-debug BS, MXCSR, halted).

use super::*;
use crate::vmm::cpu_state::{CpuState, UNUSABLE, VERSION};
use crate::vmm::vcpu::Segment;

fn seg(selector: u16, limit: u32, rights: u32) -> Segment {
    Segment {
        selector,
        base: 0,
        limit,
        rights,
    }
}

/// A real-mode guest with interrupts on and every extended field non-trivial.
fn state() -> CpuState {
    let mut s = CpuState::UNREADABLE;
    s.rflags = 0x202;
    s.cr0 = 0x30;
    s.cs = seg(0, 0xFFFF, 0x9B);
    for d in [&mut s.ds, &mut s.es, &mut s.fs, &mut s.gs, &mut s.ss] {
        *d = seg(0, 0xFFFF, 0x93);
    }
    s.tr = seg(0, 0xFFFF, 0x8B);
    s.ldtr = seg(0, 0, UNUSABLE);
    s.msrs.pat = 0x0007_0406_0007_0406;
    s.dr7 = 0x400;
    let mut area = FxArea::RESET;
    for n in 0..16 {
        area.set_xmm(
            n,
            0x0123_4567_89AB_CDEF_FEDC_BA98_7654_3210_u128.rotate_left(n as u32 * 8),
        );
    }
    s.ext = ExtendedState {
        tsc: 0x1234_5678_9ABC,
        tsc_aux: 7,
        dr: [0x1000, 0x2000, 0xFFFF_8000_0000_3000, 0x4000],
        dr6: 0xFFFF_4FF1,
        debugctl: DEBUGCTL_BTF,
        pending_debug: PENDING_DEBUG_BS | 1,
        halted: true,
        tpr: 0xB,
        fpu: FpuState {
            xcr0: GUEST_XCR0,
            area,
        },
    };
    s
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

#[test]
fn extended_state_round_trips_at_its_documented_offsets() {
    let s = state();
    s.check().unwrap();
    let b = s.to_bytes();
    assert_eq!(b.len(), ENCODED_LEN_V2);
    assert_eq!(u16::from_le_bytes([b[4], b[5]]), 2, "version");
    assert_eq!(u64_at(&b, 560), s.ext.tsc);
    assert_eq!(u64_at(&b, 568), 7);
    assert_eq!(u64_at(&b, 592), 0xFFFF_8000_0000_3000);
    assert_eq!(u64_at(&b, 608), 0xFFFF_4FF1);
    assert_eq!(u64_at(&b, 624), PENDING_DEBUG_BS | 1);
    assert_eq!(b[632], 1, "halted");
    assert_eq!(b[633], 0xB, "CR8");
    assert_eq!(u64_at(&b, 640), GUEST_XCR0);
    assert_eq!(&b[648..652], &512u32.to_le_bytes());
    assert_eq!(&b[656..], &s.ext.fpu.area.0[..]);
    let back = CpuState::from_bytes(&b).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.ext.fpu.area.xmm(15), s.ext.fpu.area.xmm(15));
}

const ENCODED_LEN_V2: usize = 1168;

#[test]
fn version_1_encodings_are_refused() {
    assert_eq!(VERSION, 2);
    let mut b = state().to_bytes();
    b[4..6].copy_from_slice(&1u16.to_le_bytes());
    b.truncate(560);
    assert_eq!(CpuState::from_bytes(&b), Err(CpuStateError::Version(1)));
}

#[test]
fn an_image_this_host_cannot_load_is_refused_with_its_layout() {
    // AVX state (XCR0 bit 2) in the standard-format area of 832 bytes.
    let mut b = state().to_bytes();
    b[640..648].copy_from_slice(&7u64.to_le_bytes());
    b[648..652].copy_from_slice(&832u32.to_le_bytes());
    b.resize(656 + 832, 0);
    let e = CpuState::from_bytes(&b).unwrap_err();
    assert_eq!(e, CpuStateError::XsaveLayout { xcr0: 7, size: 832 });
    let text = alloc::format!("{e}");
    assert!(
        text.contains("0x7") && text.contains("832") && text.contains("512"),
        "{text}"
    );
    // The same size with another XCR0, or the same XCR0 with another size.
    let mut b = state().to_bytes();
    b[640] = 1;
    assert_eq!(
        CpuState::from_bytes(&b),
        Err(CpuStateError::XsaveLayout { xcr0: 1, size: 512 })
    );
    let mut b = state().to_bytes();
    b[649] = 3;
    assert_eq!(
        CpuState::from_bytes(&b),
        Err(CpuStateError::XsaveLayout {
            xcr0: 3,
            size: 0x300
        })
    );
    assert_eq!(check_layout(GUEST_XCR0, 512), Ok(()));
    let mut s = state();
    s.ext.fpu.xcr0 = 7;
    assert!(matches!(s.check(), Err(CpuStateError::XsaveLayout { .. })));
}

#[test]
fn reserved_bits_of_the_extended_state_are_refused() {
    type Edit = (&'static str, fn(&mut CpuState));
    let edits: [Edit; 7] = [
        ("CR8", |s| s.ext.tpr = 0x10),
        ("TSC_AUX", |s| s.ext.tsc_aux = 1 << 32),
        ("DR6", |s| s.ext.dr6 = 1 << 32),
        ("DEBUGCTL", |s| s.ext.debugctl = 1 << 2),
        ("pending debug", |s| s.ext.pending_debug = 1 << 13),
        ("MXCSR", |s| s.ext.fpu.area.0[26] = 1),
        ("halted without IF", |s| s.rflags = 0x2),
    ];
    for (what, edit) in edits {
        let mut s = state();
        edit(&mut s);
        assert!(s.check().is_err(), "{what}");
        assert!(CpuState::from_bytes(&s.to_bytes()).is_err(), "{what}");
    }
    for (at, bit, what) in [
        (632, 2, "flags"),
        (633, 0x10, "CR8 bits 7:4"),
        (634, 2, "padding"),
        (652, 2, "image padding"),
    ] {
        let mut b = state().to_bytes();
        b[at] |= bit;
        assert!(
            matches!(CpuState::from_bytes(&b), Err(CpuStateError::Reserved(_))),
            "{what}"
        );
    }
}

#[test]
fn a_halted_state_must_be_wakeable() {
    let mut s = state();
    s.event = Some(crate::vmm::cpu_state::Event {
        kind: crate::vmm::cpu_state::EventKind::External,
        vector: 0x20,
        error_code: None,
        instruction_len: 0,
    });
    assert!(s.check().is_err(), "halted while an event is delivered");
    s.ext.halted = false;
    assert_eq!(s.check(), Ok(()));
    let mut s = state();
    s.pending_io_in = Some(1);
    assert!(s.check().is_err(), "halted with an IN pending");
}

#[test]
fn the_guest_tsc_goes_on_from_the_checkpoint_on_any_host() {
    // Saved on the primary at host TSC 10^12 with offset -5*10^11: the guest read 5*10^11.
    let primary_host = 1_000_000_000_000_u64;
    let primary_offset = tsc_offset(500_000_000_000, primary_host);
    let saved = guest_tsc(primary_host, primary_offset);
    assert_eq!(saved, 500_000_000_000);
    // The backup's TSC is far behind, or far ahead: either way the guest resumes at `saved`
    // and advances with the host.
    for backup_host in [3_000_u64, 9_000_000_000_000_000_000] {
        let offset = tsc_offset(saved, backup_host);
        assert_eq!(guest_tsc(backup_host, offset), saved);
        assert_eq!(guest_tsc(backup_host + 250, offset), saved + 250);
    }
    // Modulo 2^64, like the hardware's addition.
    assert_eq!(guest_tsc(u64::MAX, tsc_offset(5, u64::MAX)), 5);
    assert_eq!(guest_tsc(u64::MAX, 2), 1);
}

#[test]
fn pending_debug_bs_follows_tf_under_blocking() {
    const TF: u64 = RFLAGS_TF | 0x2;
    // Single-stepping past STI/MOV SS: BS must be set (SDM Vol. 3C, 27.3.1.5).
    assert_eq!(pending_debug_for_entry(0, TF, 0, true), PENDING_DEBUG_BS);
    assert_eq!(
        pending_debug_for_entry(1, TF, 0, true),
        PENDING_DEBUG_BS | 1
    );
    // BTF set, or TF clear: BS must be clear.
    assert_eq!(
        pending_debug_for_entry(PENDING_DEBUG_BS, TF, DEBUGCTL_BTF, true),
        0
    );
    assert_eq!(
        pending_debug_for_entry(PENDING_DEBUG_BS | 2, 0x2, 0, true),
        2
    );
    // No blocking: untouched.
    assert_eq!(pending_debug_for_entry(0, TF, 0, false), 0);
    assert_eq!(
        pending_debug_for_entry(PENDING_DEBUG_BS, 0x2, 0, false),
        PENDING_DEBUG_BS
    );
}

#[test]
fn mxcsr_and_reset_image() {
    assert_eq!(FxArea::RESET.mxcsr(), 0x1F80);
    assert_eq!(
        u16::from_le_bytes([FxArea::RESET.0[0], FxArea::RESET.0[1]]),
        0x037F
    );
    assert_eq!(FxArea::RESET.mxcsr_mask(), MXCSR_MASK_DEFAULT);
    // DAZ (bit 6) loads only where MXCSR_MASK has it.
    assert!(!mxcsr_loadable(0x1FC0, MXCSR_MASK_DEFAULT));
    assert!(mxcsr_loadable(0x1FC0, 0xFFFF));
    assert!(mxcsr_loadable(0x1F80, MXCSR_MASK_DEFAULT));
    assert_eq!(core::mem::align_of::<FxArea>(), 16);
}
