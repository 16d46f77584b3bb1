// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fetching and decoding the instruction at a guest linear address.

use super::super::walk::{CR0_PG, CR4_PAE, EFER_LMA};
use super::super::*;
use super::Ram;

const P: u64 = 1;
/// The page table [`setup`] maps linear 0x1000-0x2FFF through.
pub(super) const PT: u64 = 0xD000;

/// 4-level paging with linear 0x1000 → 0x9000 and 0x2000 → 0x5000 (0x3000 not mapped); the
/// page table is at [`PT`].
pub(super) fn setup() -> (Ram, PagingState) {
    let mut ram = Ram::new(0x1_0000, 0);
    let (pml4, pdpt, pd, pt) = (0xA000, 0xB000, 0xC000, PT);
    ram.w64(pml4, pdpt | P);
    ram.w64(pdpt, pd | P);
    ram.w64(pd, pt | P);
    ram.w64(pt + 8, 0x9000 | P);
    ram.w64(pt + 16, 0x5000 | P);
    let state = PagingState {
        cr0: CR0_PG | 1,
        cr3: pml4,
        cr4: CR4_PAE,
        efer: EFER_LMA,
    };
    (ram, state)
}

#[test]
fn instruction_across_two_pages() {
    let (mut ram, state) = setup();
    ram.put(0x9FFE, &[0x0F, 0x01]);
    ram.put(0x5000, &[0xD9]);
    let d = fetch_and_decode(&state, &mut ram, 0x1FFE, CodeMode::Bits64).unwrap();
    assert_eq!((d.instruction, d.len), (Instruction::Vmmcall, 3));
}

#[test]
fn missing_second_page_matters_only_if_needed() {
    let (mut ram, state) = setup();
    // HLT in the last byte of a page followed by an unmapped one.
    ram.put(0x5FFF, &[0xF4]);
    let d = fetch_and_decode(&state, &mut ram, 0x2FFF, CodeMode::Bits64).unwrap();
    assert_eq!((d.instruction, d.len), (Instruction::Hlt, 1));
    // CPUID split across them.
    ram.put(0x5FFF, &[0x0F]);
    assert_eq!(
        fetch_and_decode(&state, &mut ram, 0x2FFF, CodeMode::Bits64),
        Err(FetchError::Walk(WalkError::NotPresent {
            linear: 0x3000,
            level: 1
        }))
    );
    // The first page missing.
    assert_eq!(
        fetch_and_decode(&state, &mut ram, 0x3000, CodeMode::Bits64),
        Err(FetchError::Walk(WalkError::NotPresent {
            linear: 0x3000,
            level: 1
        }))
    );
}

#[test]
fn unknown_bytes_are_a_decode_error() {
    let (mut ram, state) = setup();
    ram.put(0x9100, &[0x0F, 0x0B]);
    assert_eq!(
        fetch_and_decode(&state, &mut ram, 0x1100, CodeMode::Bits64),
        Err(FetchError::Decode(DecodeError::Unsupported(
            Opcode::TwoByte(0x0B)
        )))
    );
}

#[test]
fn real_mode_fetch() {
    let mut ram = Ram::new(0x10_0000, 0);
    // F000:FFF0 holds RDMSR with an operand-size prefix.
    ram.put(0xF_FFF0, &[0x66, 0x0F, 0x32]);
    let state = PagingState::default();
    let mode = CodeMode::from_state(false, false, false, false, false);
    let linear = mode.linear_ip(0xF_0000, 0xFFF0);
    let d = fetch_and_decode(&state, &mut ram, linear, mode).unwrap();
    assert_eq!((d.instruction, d.len), (Instruction::Rdmsr, 3));
    assert_eq!(mode.next_ip(0xFFF0, d.len), 0xFFF3);
    // At the very end of RAM: fewer than 15 bytes exist, but enough.
    ram.put(0xF_FFFE, &[0x0F, 0x31]);
    let d = fetch_and_decode(&state, &mut ram, 0xF_FFFE, mode).unwrap();
    assert_eq!(d.instruction, Instruction::Rdtsc);
}

#[test]
fn raw_bytes_stop_at_an_unreadable_page() {
    let (mut ram, state) = setup();
    ram.put(0x9FF0, &[0x11; 16]);
    ram.put(0x5000, &[0x22; 16]);
    let across = fetch_bytes(&state, &mut ram, 0x1FFC).unwrap();
    assert_eq!(
        across.bytes(),
        &[
            0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
            0x22
        ]
    );
    assert_eq!(across.stopped_by(), None);
    let short = fetch_bytes(&state, &mut ram, 0x2FFE).unwrap();
    assert_eq!(short.bytes().len(), 2);
    assert_eq!(
        short.stopped_by(),
        Some(WalkError::NotPresent {
            linear: 0x3000,
            level: 1
        })
    );
    assert!(fetch_bytes(&state, &mut ram, 0x3000).is_err());
}
