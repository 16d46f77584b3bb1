// SPDX-License-Identifier: MIT OR Apache-2.0
//! The decode memo: reused while every read repeats, never stale.

use super::super::cache::DecodeCache;
use super::super::*;
use super::super::{cache, mmio};
use super::Ram;
use super::fetch::{self, PT};

const P: u64 = 1;

const VMMCALL: [u8; 3] = [0x0F, 0x01, 0xD9];

/// [`fetch::setup`]'s paging with VMMCALL at linear 0x1010.
fn setup() -> (Ram, PagingState) {
    let (mut ram, state) = fetch::setup();
    ram.put(0x9010, &VMMCALL);
    (ram, state)
}

fn decode(
    c: &mut DecodeCache<Decoded>,
    ram: &mut Ram,
    state: &PagingState,
    at: u64,
) -> (Instruction, usize) {
    let d = c
        .fetch_and_decode(state, ram, at, CodeMode::Bits64)
        .unwrap();
    (d.instruction, d.len)
}

#[test]
fn the_same_instruction_is_answered_from_the_memo() {
    let (mut ram, state) = setup();
    let mut c = DecodeCache::<Decoded>::default();
    for _ in 0..3 {
        assert_eq!(
            decode(&mut c, &mut ram, &state, 0x1010),
            (Instruction::Vmmcall, 3)
        );
    }
    assert_eq!((c.hits, c.misses), (2, 1));
}

#[test]
fn changed_bytes_are_decoded_again() {
    let (mut ram, state) = setup();
    let mut c = DecodeCache::<Decoded>::default();
    decode(&mut c, &mut ram, &state, 0x1010);
    // The guest rewrote its code: an operand-size prefix before the VMMCALL.
    ram.put(0x9010, &[0x66, 0x0F, 0x01, 0xD9]);
    assert_eq!(
        decode(&mut c, &mut ram, &state, 0x1010),
        (Instruction::Vmmcall, 4)
    );
    assert_eq!(c.misses, 2);
}

#[test]
fn a_remapped_page_is_decoded_again_without_any_tlb_flush() {
    let (mut ram, state) = setup();
    let mut c = DecodeCache::<Decoded>::default();
    decode(&mut c, &mut ram, &state, 0x1010);
    // Linear 0x1000 now maps the page at 0x5000, where CPUID sits at the same offset; the
    // bytes at the old frame are unchanged.
    ram.put(0x5010, &[0x0F, 0xA2]);
    ram.w64(PT + 8, 0x5000 | P);
    assert_eq!(
        decode(&mut c, &mut ram, &state, 0x1010),
        (Instruction::Cpuid, 2)
    );
    // An upper level changed instead: the page directory moves to a copy whose table maps
    // the old frame again.
    let (pd2, pt2) = (0xE000, 0xF000);
    ram.w64(pd2, pt2 | P);
    ram.w64(pt2 + 8, 0x9000 | P);
    ram.w64(0xB000, pd2 | P);
    assert_eq!(
        decode(&mut c, &mut ram, &state, 0x1010),
        (Instruction::Vmmcall, 3)
    );
    assert_eq!((c.hits, c.misses), (0, 3));
}

#[test]
fn other_paging_state_or_address_is_another_decode() {
    let (mut ram, state) = setup();
    let mut c = DecodeCache::<Decoded>::default();
    decode(&mut c, &mut ram, &state, 0x1010);
    // The same bytes through paging off: linear 0x9010 is the frame itself.
    let off = PagingState {
        cr0: 1,
        cr3: 0,
        cr4: 0,
        efer: 0,
    };
    assert_eq!(
        decode(&mut c, &mut ram, &off, 0x9010),
        (Instruction::Vmmcall, 3)
    );
    // HLT elsewhere, then both again: each keeps its entry.
    ram.put(0x5020, &[0xF4]);
    assert_eq!(
        decode(&mut c, &mut ram, &state, 0x2020),
        (Instruction::Hlt, 1)
    );
    assert_eq!(
        decode(&mut c, &mut ram, &state, 0x1010),
        (Instruction::Vmmcall, 3)
    );
    assert_eq!(
        decode(&mut c, &mut ram, &state, 0x2020),
        (Instruction::Hlt, 1)
    );
    assert_eq!((c.hits, c.misses), (2, 3));
}

#[test]
fn failures_are_not_kept() {
    let (mut ram, state) = setup();
    let mut c = DecodeCache::<Decoded>::default();
    // Linear 0x3000 is not mapped: the same error every time, each a fresh walk.
    for _ in 0..2 {
        assert!(matches!(
            c.fetch_and_decode(&state, &mut ram, 0x3000, CodeMode::Bits64),
            Err(FetchError::Walk(WalkError::NotPresent { .. }))
        ));
    }
    assert_eq!((c.hits, c.misses), (0, 2));
    // Mapped later, it decodes.
    ram.w64(PT + 24, 0x9000 | P);
    assert_eq!(
        decode(&mut c, &mut ram, &state, 0x3010),
        (Instruction::Vmmcall, 3)
    );
}

#[test]
fn an_instruction_across_two_pages_is_checked_on_both() {
    let (mut ram, state) = setup();
    let mut c = DecodeCache::<Decoded>::default();
    ram.put(0x9FFE, &[0x0F, 0x01]);
    ram.put(0x5000, &[0xD9]);
    assert_eq!(
        decode(&mut c, &mut ram, &state, 0x1FFE),
        (Instruction::Vmmcall, 3)
    );
    assert_eq!(
        decode(&mut c, &mut ram, &state, 0x1FFE),
        (Instruction::Vmmcall, 3)
    );
    // The second page's byte changes: 0F 01 D8 is VMRUN, same length but another instruction.
    ram.put(0x5000, &[0xD8]);
    let d = c
        .fetch_and_decode(&state, &mut ram, 0x1FFE, CodeMode::Bits64)
        .unwrap();
    assert_ne!(d.instruction, Instruction::Vmmcall);
    assert_eq!((c.hits, c.misses), (1, 2));
}

#[test]
fn device_accesses_decode_through_a_memo_of_their_own() {
    let (mut ram, state) = setup();
    let mut c = DecodeCache::<mmio::MmioInstruction>::default();
    let fetch: cache::Fetch<_, _> = |s, m, l, c| mmio::fetch(s, m, l, c);
    // mov [rax], ebx (89 18), then with a REX.W prefix (48 89 18): 2 bytes, then 3.
    ram.put(0x9040, &[0x89, 0x18]);
    for _ in 0..2 {
        let i = c
            .get(&state, &mut ram, 0x1040, CodeMode::Bits64, fetch)
            .unwrap();
        assert_eq!(i.len, 2);
        assert!(i.writes_memory());
    }
    ram.put(0x9040, &[0x48, 0x89, 0x18]);
    let i = c
        .get(&state, &mut ram, 0x1040, CodeMode::Bits64, fetch)
        .unwrap();
    assert_eq!(i.len, 3);
    assert_eq!((c.hits, c.misses), (1, 2));
}

/// A hit compares the bytes it read as words: a change to any one of the 15 bytes fetched is a
/// miss, and one to the byte after them is not (it was never read).
#[test]
fn every_byte_fetched_is_compared_and_no_other() {
    let (mut ram, state) = setup();
    let mut c = DecodeCache::<Decoded>::default();
    decode(&mut c, &mut ram, &state, 0x1010);
    for k in 0..MAX_INSTRUCTION_LEN as u64 {
        let misses = c.misses;
        let was = ram.bytes[0x9010 + k as usize];
        ram.put(0x9010 + k, &[was ^ 0x40]);
        let _ = c.fetch_and_decode(&state, &mut ram, 0x1010, CodeMode::Bits64);
        assert_eq!(c.misses, misses + 1, "byte {k} changed, yet a hit");
        ram.put(0x9010 + k, &[was]);
        decode(&mut c, &mut ram, &state, 0x1010);
    }
    let hits = c.hits;
    ram.put(0x9010 + MAX_INSTRUCTION_LEN as u64, &[0xCC]);
    assert_eq!(
        decode(&mut c, &mut ram, &state, 0x1010),
        (Instruction::Vmmcall, 3)
    );
    assert_eq!(c.hits, hits + 1, "a byte past the fetch is not compared");
}

/// An instruction in the last bytes of RAM: its bytes cannot be compared as whole words (they
/// would run past the end), and the exact-length read still answers hits and misses.
#[test]
fn an_instruction_at_the_end_of_ram_is_memoized_too() {
    let (mut ram, state) = setup();
    ram.w64(PT + 24, 0xF000 | P);
    ram.put(0xFFFC, &[0x0F, 0x01, 0xD9, 0x90]);
    let mut c = DecodeCache::<Decoded>::default();
    for _ in 0..2 {
        assert_eq!(
            decode(&mut c, &mut ram, &state, 0x3FFC),
            (Instruction::Vmmcall, 3)
        );
    }
    assert_eq!((c.hits, c.misses), (1, 1));
    ram.put(0xFFFE, &[0xD8]);
    let d = c
        .fetch_and_decode(&state, &mut ram, 0x3FFC, CodeMode::Bits64)
        .unwrap();
    assert_ne!(d.instruction, Instruction::Vmmcall);
    assert_eq!(c.misses, 2);
}
