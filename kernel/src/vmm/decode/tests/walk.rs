// SPDX-License-Identifier: MIT OR Apache-2.0
//! Page walks in every paging mode over page tables built in fake RAM.

use alloc::vec;
use alloc::vec::Vec;

use super::super::walk::*;
use super::Ram;
use crate::testutil::Rng;

const P: u64 = 1;
const RW: u64 = 2;
const US: u64 = 4;
const PS: u64 = 0x80;
const XD: u64 = 1 << 63;
const ADDR: u64 = 0x000F_FFFF_FFFF_F000;
const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

const OFF: PagingState = PagingState {
    cr0: 0x11,
    cr3: 0,
    cr4: 0,
    efer: 0,
};

fn bits32(cr3: u64, pse: bool) -> PagingState {
    PagingState {
        cr0: CR0_PG | 0x11,
        cr3,
        cr4: if pse { CR4_PSE } else { 0 },
        efer: 0,
    }
}

fn pae(cr3: u64, nxe: bool) -> PagingState {
    PagingState {
        cr0: CR0_PG | 0x11,
        cr3,
        cr4: CR4_PAE,
        efer: if nxe { EFER_NXE } else { 0 },
    }
}

fn long(cr3: u64, la57: bool, nxe: bool) -> PagingState {
    PagingState {
        cr0: CR0_PG | 0x11,
        cr3,
        cr4: CR4_PAE | if la57 { CR4_LA57 } else { 0 },
        efer: (1 << 8) | EFER_LMA | if nxe { EFER_NXE } else { 0 },
    }
}

fn index(linear: u64, level: u8) -> u64 {
    (linear >> (12 + 9 * u32::from(level - 1))) & 0x1FF
}

/// Maps `linear` to `gpa` with a leaf at `level` in tables of 64-bit entries whose top table
/// (of level `top`) is at `root`. Missing tables get P|RW|US entries. Returns the address of
/// the entry at each level (index = level).
fn map64(
    ram: &mut Ram,
    root: u64,
    top: u8,
    linear: u64,
    gpa: u64,
    level: u8,
    flags: u64,
) -> [u64; 6] {
    let mut at = [0; 6];
    let mut table = root;
    for l in (level + 1..=top).rev() {
        let a = table + index(linear, l) * 8;
        at[l as usize] = a;
        let e = ram.r64(a);
        table = if e & P != 0 {
            e & ADDR
        } else {
            let t = ram.page();
            ram.w64(a, t | P | RW | US);
            t
        };
    }
    let a = table + index(linear, level) * 8;
    at[level as usize] = a;
    ram.w64(a, gpa | flags | if level > 1 { PS } else { 0 });
    at
}

/// PAE: maps through the PDPT at `pdpt` (32-byte aligned). Returns the entry addresses.
fn map_pae(ram: &mut Ram, pdpt: u64, linear: u64, gpa: u64, level: u8, flags: u64) -> [u64; 6] {
    let a = pdpt + ((linear >> 30) & 3) * 8;
    let e = ram.r64(a);
    let pd = if e & P != 0 {
        e & ADDR
    } else {
        let t = ram.page();
        ram.w64(a, t | P);
        t
    };
    let mut at = map64(ram, pd, 2, linear, gpa, level, flags);
    at[3] = a;
    at
}

/// 32-bit paging: maps a 4 KiB page (or a 4 MiB one with `large`, `pde_extra` giving the
/// PSE-36 bits). Returns the addresses of the PDE and the PTE (0 for a large page).
fn map32(ram: &mut Ram, pd: u64, linear: u64, gpa: u64, large: bool, flags: u64) -> (u64, u64) {
    let pde_at = pd + (linear >> 22) * 4;
    if large {
        ram.w32(pde_at, (gpa as u32) | flags as u32 | PS as u32);
        return (pde_at, 0);
    }
    let pde = u64::from(u32::from_le_bytes(
        ram.bytes[pde_at as usize..pde_at as usize + 4]
            .try_into()
            .unwrap(),
    ));
    let pt = if pde & P != 0 {
        pde & 0xFFFF_F000
    } else {
        let t = ram.page();
        ram.w32(pde_at, (t | P | RW | US) as u32);
        t
    };
    let pte_at = pt + ((linear >> 12) & 0x3FF) * 4;
    ram.w32(pte_at, (gpa | flags) as u32);
    (pde_at, pte_at)
}

fn clear(ram: &mut Ram, at: u64, bits: u64) {
    let v = ram.r64(at);
    ram.w64(at, v & !bits);
}

fn set(ram: &mut Ram, at: u64, bits: u64) {
    let v = ram.r64(at);
    ram.w64(at, v | bits);
}

#[test]
fn modes_follow_the_control_registers() {
    assert_eq!(OFF.mode(), Ok(PagingMode::Off));
    assert_eq!(bits32(0, true).mode(), Ok(PagingMode::Bits32));
    assert_eq!(pae(0, false).mode(), Ok(PagingMode::Pae));
    assert_eq!(long(0, false, false).mode(), Ok(PagingMode::Level4));
    assert_eq!(long(0, true, false).mode(), Ok(PagingMode::Level5));
    // LA57 without long mode does nothing; LMA without PAE or PG is impossible.
    let mut s = pae(0, false);
    s.cr4 |= CR4_LA57;
    assert_eq!(s.mode(), Ok(PagingMode::Pae));
    let mut s = long(0, false, false);
    s.cr4 &= !CR4_PAE;
    assert_eq!(s.mode(), Err(WalkError::InconsistentState));
    let mut ram = Ram::new(4096, 0);
    assert_eq!(
        translate(&s, &mut ram, 0),
        Err(WalkError::InconsistentState)
    );
    let mut s = long(0, false, false);
    s.cr0 &= !CR0_PG;
    assert_eq!(s.mode(), Err(WalkError::InconsistentState));
}

#[test]
fn paging_off_is_identity_and_wraps_at_4_gib() {
    let mut ram = Ram::new(64 * KIB as usize, 0);
    assert_eq!(translate(&OFF, &mut ram, 0x1234), Ok(0x1234));
    assert_eq!(translate(&OFF, &mut ram, 0x1_0000_1234), Ok(0x1234));
    let t = walk(&OFF, &mut ram, 0xFFFF_FFFF).unwrap();
    assert_eq!(t.gpa, 0xFFFF_FFFF);
    assert!(t.writable && t.user && t.executable);
    ram.put(0x5FFE, &[1, 2, 3, 4]);
    let mut buf = [0; 4];
    read_linear(&OFF, &mut ram, 0x5FFE, &mut buf).unwrap();
    assert_eq!(buf, [1, 2, 3, 4]);
    // Beyond RAM.
    assert_eq!(
        read_linear(&OFF, &mut ram, 0xFFFF, &mut buf),
        Err(WalkError::Unreadable { gpa: 0xFFFF })
    );
}

#[test]
fn bits32_4k_pages() {
    let mut ram = Ram::new(256 * KIB as usize, 0x1_0000);
    let pd = ram.page();
    map32(&mut ram, pd, 0x4000_1000, 0x7000, false, P | RW);
    map32(&mut ram, pd, 0x4000_2000, 0x3000, false, P | US);
    map32(&mut ram, pd, 0xFFFF_F000, 0x9000, false, P);
    let s = bits32(pd | 0x18, false); // PWT/PCD bits in CR3 are ignored
    assert_eq!(translate(&s, &mut ram, 0x4000_1234), Ok(0x7234));
    assert_eq!(translate(&s, &mut ram, 0x4000_2FFF), Ok(0x3FFF));
    assert_eq!(translate(&s, &mut ram, 0xFFFF_FFFF), Ok(0x9FFF));
    // High bits of the linear address are dropped outside long mode.
    assert_eq!(translate(&s, &mut ram, 0xAB_4000_1234), Ok(0x7234));
    let t = walk(&s, &mut ram, 0x4000_1000).unwrap();
    assert_eq!(t.page_size, 4 * KIB);
    assert!(t.writable && !t.user && t.executable);
    let t = walk(&s, &mut ram, 0x4000_2000).unwrap();
    assert!(!t.writable && t.user);
    // Not-present PTE in a present table, and a not-present PDE.
    assert_eq!(
        translate(&s, &mut ram, 0x4000_3000),
        Err(WalkError::NotPresent {
            linear: 0x4000_3000,
            level: 1
        })
    );
    assert_eq!(
        translate(&s, &mut ram, 0x8000_0000),
        Err(WalkError::NotPresent {
            linear: 0x8000_0000,
            level: 2
        })
    );
}

#[test]
fn bits32_4m_pages_with_pse36() {
    let mut ram = Ram::new(64 * KIB as usize, 0x1_0000 - 4096);
    let pd = ram.page();
    map32(&mut ram, pd, 0x8000_0000, 0x0040_0000, true, P | RW | US);
    // PSE-36: PDE bits 20:13 are address bits 39:32.
    map32(
        &mut ram,
        pd,
        0xC000_0000,
        0x0080_0000 | (0x12 << 13),
        true,
        P,
    );
    let s = bits32(pd, true);
    assert_eq!(translate(&s, &mut ram, 0x8012_3456), Ok(0x0052_3456));
    let t = walk(&s, &mut ram, 0x803F_FFFF).unwrap();
    assert_eq!(t.gpa, 0x007F_FFFF);
    assert_eq!(t.page_size, 4 * MIB);
    assert!(t.writable && t.user && t.executable);
    assert_eq!(translate(&s, &mut ram, 0xC000_0001), Ok(0x12_0080_0001));
    // Bit 21 is reserved in a 4 MiB PDE.
    map32(&mut ram, pd, 0x0040_0000, 0x0020_0000, true, P);
    assert_eq!(
        translate(&s, &mut ram, 0x0040_0000),
        Err(WalkError::Reserved {
            linear: 0x0040_0000,
            level: 2
        })
    );
}

#[test]
fn bits32_ps_is_ignored_without_cr4_pse() {
    let mut ram = Ram::new(128 * KIB as usize, 0x8000);
    let pd = ram.page();
    let pt = ram.page();
    // A PDE with PS set pointing at a page table.
    ram.w32(pd + 4 * 4, (pt | P | RW | PS) as u32);
    ram.w32(pt + 5 * 4, (0x1_3000 | P) as u32);
    let linear = (4 << 22) | (5 << 12) | 0x21;
    assert_eq!(
        translate(&bits32(pd, false), &mut ram, linear),
        Ok(0x1_3021)
    );
    // With CR4.PSE it is a 4 MiB page at the PDE's address bits.
    assert_eq!(
        translate(&bits32(pd, true), &mut ram, linear),
        Ok((((pt >> 13) & 0xFF) << 32) | (pt & 0xFFC0_0000) | (linear & 0x3F_FFFF))
    );
}

#[test]
fn pae_4k_and_2m_pages() {
    let mut ram = Ram::new(256 * KIB as usize, 0x1_0000);
    let pdpt = 0x3020; // 32-byte aligned, not page aligned
    map_pae(&mut ram, pdpt, 0x0000_5000, 0x2_4000, 1, P | RW | US);
    map_pae(
        &mut ram,
        pdpt,
        0xC060_0000,
        0x1234_0000_0000 & ADDR & !(2 * MIB - 1),
        2,
        P,
    );
    map_pae(&mut ram, pdpt, 0xFFFF_F000, 0x5_0000_0000, 1, P | RW);
    let s = pae(pdpt, false);
    assert_eq!(translate(&s, &mut ram, 0x5678), Ok(0x2_4678));
    let t = walk(&s, &mut ram, 0xC07F_FFFF).unwrap();
    assert_eq!(t.gpa, 0x1234_001F_FFFF);
    assert_eq!(t.page_size, 2 * MIB);
    assert!(!t.writable && !t.user && t.executable);
    // Physical addresses above 4 GiB.
    assert_eq!(translate(&s, &mut ram, 0xFFFF_FFFF), Ok(0x5_0000_0FFF));
    // Not present at each level.
    assert_eq!(
        translate(&s, &mut ram, 0x4000_0000),
        Err(WalkError::NotPresent {
            linear: 0x4000_0000,
            level: 3
        })
    );
    assert_eq!(
        translate(&s, &mut ram, 0x0020_0000),
        Err(WalkError::NotPresent {
            linear: 0x0020_0000,
            level: 2
        })
    );
    assert_eq!(
        translate(&s, &mut ram, 0x6000),
        Err(WalkError::NotPresent {
            linear: 0x6000,
            level: 1
        })
    );
}

#[test]
fn pae_reserved_bits() {
    let mut ram = Ram::new(256 * KIB as usize, 0x1_0000);
    let pdpt = ram.page();
    let at = map_pae(&mut ram, pdpt, 0x5000, 0x2_4000, 1, P | RW);
    let s = pae(pdpt, false);
    assert_eq!(translate(&s, &mut ram, 0x5000), Ok(0x2_4000));
    for bit in [1, 2, 5, 6, 7, 8, 63] {
        set(&mut ram, at[3], 1 << bit);
        assert_eq!(
            translate(&s, &mut ram, 0x5000),
            Err(WalkError::Reserved {
                linear: 0x5000,
                level: 3
            }),
            "PDPTE bit {bit}"
        );
        // Still reserved with NXE: PDPTEs have no XD bit.
        assert!(translate(&pae(pdpt, true), &mut ram, 0x5000).is_err());
        clear(&mut ram, at[3], 1 << bit);
    }
    // Ignored PDPTE bits (9-11) are fine.
    set(&mut ram, at[3], 0xE00);
    assert_eq!(translate(&s, &mut ram, 0x5000), Ok(0x2_4000));
    // XD without NXE is reserved in the PD and PT; with NXE it forbids fetches.
    for level in [2, 1] {
        set(&mut ram, at[level], XD);
        assert_eq!(
            translate(&s, &mut ram, 0x5000),
            Err(WalkError::Reserved {
                linear: 0x5000,
                level: level as u8
            })
        );
        let t = walk(&pae(pdpt, true), &mut ram, 0x5000).unwrap();
        assert!(!t.executable && t.writable);
        clear(&mut ram, at[level], XD);
    }
    // A 2 MiB page with an address bit below 21 set.
    let at = map_pae(&mut ram, pdpt, 0x4000_0000, 0x20_0000 | (1 << 13), 2, P);
    assert_eq!(
        translate(&s, &mut ram, 0x4000_0000),
        Err(WalkError::Reserved {
            linear: 0x4000_0000,
            level: 2
        })
    );
    // Bit 12 of a large-page entry is PAT, not an address bit.
    ram.w64(at[2], 0x20_0000 | (1 << 12) | P | PS);
    assert_eq!(translate(&s, &mut ram, 0x4000_0042), Ok(0x20_0042));
}

#[test]
fn level4_all_page_sizes() {
    let mut ram = Ram::new(512 * KIB as usize, 0x1_0000);
    let pml4 = ram.page();
    map64(&mut ram, pml4, 4, 0x40_1000, 0x7000, 1, P | RW | US);
    map64(
        &mut ram,
        pml4,
        4,
        0x60_0000,
        0x1_2340_0000 & !(2 * MIB - 1),
        2,
        P | RW,
    );
    map64(&mut ram, pml4, 4, 0x80_0000_0000, 0x3_C000_0000, 3, P | US);
    let hi = 0xFFFF_8000_0000_3000;
    map64(&mut ram, pml4, 4, hi, 0x000F_FFFF_FFFF_F000, 1, P);
    let s = long(pml4, false, false);
    assert_eq!(translate(&s, &mut ram, 0x40_1ABC), Ok(0x7ABC));
    let t = walk(&s, &mut ram, 0x7F_FFFF).unwrap();
    assert_eq!(t.gpa, 0x1_235F_FFFF);
    assert_eq!(t.page_size, 2 * MIB);
    assert!(t.writable && !t.user);
    let t = walk(&s, &mut ram, 0x80_3FFF_FFFF).unwrap();
    assert_eq!(t.gpa, 0x3_FFFF_FFFF);
    assert_eq!(t.page_size, GIB);
    assert!(!t.writable && t.user && t.executable);
    assert_eq!(
        translate(&s, &mut ram, hi + 0x10),
        Ok(0x000F_FFFF_FFFF_F010)
    );
    // CR3's PCID (bits 11:0) and bits above 51 are not address bits.
    let s = long(pml4 | 0xABC | (1 << 62), false, false);
    assert_eq!(translate(&s, &mut ram, 0x40_1ABC), Ok(0x7ABC));
}

#[test]
fn level4_not_present_at_each_level() {
    let mut ram = Ram::new(512 * KIB as usize, 0x1_0000);
    let pml4 = ram.page();
    let linear = 0x7FFF_1234_5000;
    let at = map64(&mut ram, pml4, 4, linear, 0x9000, 1, P | RW);
    let s = long(pml4, false, true);
    assert_eq!(translate(&s, &mut ram, linear), Ok(0x9000));
    for level in 1..=4u8 {
        clear(&mut ram, at[level as usize], P);
        assert_eq!(
            translate(&s, &mut ram, linear + 0x10),
            Err(WalkError::NotPresent {
                linear: linear + 0x10,
                level
            })
        );
        set(&mut ram, at[level as usize], P);
    }
    assert_eq!(translate(&s, &mut ram, linear), Ok(0x9000));
}

#[test]
fn level4_reserved_bits() {
    let mut ram = Ram::new(512 * KIB as usize, 0x1_0000);
    let pml4 = ram.page();
    let linear = 0x1_4000_0000 + 0x20_0000 + 0x3000;
    let at = map64(&mut ram, pml4, 4, linear, 0x9000, 1, P | RW);
    let s = long(pml4, false, false);
    let nx = long(pml4, false, true);
    for level in 1..=4u8 {
        set(&mut ram, at[level as usize], XD);
        assert_eq!(
            translate(&s, &mut ram, linear),
            Err(WalkError::Reserved { linear, level })
        );
        let t = walk(&nx, &mut ram, linear).unwrap();
        assert!(!t.executable);
        clear(&mut ram, at[level as usize], XD);
        assert!(walk(&nx, &mut ram, linear).unwrap().executable);
    }
    // PS is reserved in a PML4E.
    set(&mut ram, at[4], PS);
    assert_eq!(
        translate(&s, &mut ram, linear),
        Err(WalkError::Reserved { linear, level: 4 })
    );
    clear(&mut ram, at[4], PS);
    // Large pages: the address bits below the page size (above the PAT bit) are reserved.
    let big = 0x2_0000_0000;
    let at = map64(&mut ram, pml4, 4, big, 0x4000_0000 | (1 << 29), 3, P);
    assert_eq!(
        translate(&s, &mut ram, big),
        Err(WalkError::Reserved {
            linear: big,
            level: 3
        })
    );
    ram.w64(at[3], 0x4000_0000 | (1 << 13) | P | PS);
    assert!(matches!(
        translate(&s, &mut ram, big),
        Err(WalkError::Reserved { level: 3, .. })
    ));
    ram.w64(at[3], 0x4000_0000 | (1 << 12) | P | PS);
    assert_eq!(translate(&s, &mut ram, big + 5), Ok(0x4000_0005));
    let mid = 0x3_0020_0000;
    let at = map64(&mut ram, pml4, 4, mid, 0x60_0000 | (1 << 20), 2, P);
    assert_eq!(
        translate(&s, &mut ram, mid),
        Err(WalkError::Reserved {
            linear: mid,
            level: 2
        })
    );
    ram.w64(at[2], 0x60_0000 | (1 << 12) | P | PS);
    assert_eq!(translate(&s, &mut ram, mid + 5), Ok(0x60_0005));
}

#[test]
fn level4_canonical_addresses() {
    let mut ram = Ram::new(64 * KIB as usize, 0x1_0000 - 4096);
    let pml4 = ram.page();
    let s = long(pml4, false, false);
    for linear in [
        0x0000_8000_0000_0000,
        0xFFFF_7FFF_FFFF_FFFF,
        0x0001_0000_0000_0000,
        0x8000_0000_0000_0000,
    ] {
        assert_eq!(
            translate(&s, &mut ram, linear),
            Err(WalkError::NonCanonical { linear })
        );
    }
    for linear in [0x0000_7FFF_FFFF_FFFF, 0xFFFF_8000_0000_0000, 0, u64::MAX] {
        assert!(matches!(
            translate(&s, &mut ram, linear),
            Err(WalkError::NotPresent { level: 4, .. })
        ));
    }
}

#[test]
fn level5_paging() {
    let mut ram = Ram::new(512 * KIB as usize, 0x1_0000);
    let pml5 = ram.page();
    // Canonical with 57 bits, not with 48.
    let linear = 0x00FF_0000_0000_1000;
    let at = map64(&mut ram, pml5, 5, linear, 0xA000, 1, P | RW);
    let s = long(pml5, true, false);
    assert_eq!(translate(&s, &mut ram, linear + 7), Ok(0xA007));
    assert_eq!(
        translate(&long(pml5, false, false), &mut ram, linear),
        Err(WalkError::NonCanonical { linear })
    );
    let hi = 0xFF00_0000_0000_0000;
    map64(&mut ram, pml5, 5, hi, 0xB000, 1, P);
    assert_eq!(translate(&s, &mut ram, hi + 1), Ok(0xB001));
    assert_eq!(
        translate(&s, &mut ram, 0x0100_0000_0000_0000),
        Err(WalkError::NonCanonical {
            linear: 0x0100_0000_0000_0000
        })
    );
    clear(&mut ram, at[5], P);
    assert_eq!(
        translate(&s, &mut ram, linear),
        Err(WalkError::NotPresent { linear, level: 5 })
    );
    set(&mut ram, at[5], P | PS);
    assert_eq!(
        translate(&s, &mut ram, linear),
        Err(WalkError::Reserved { linear, level: 5 })
    );
}

#[test]
fn rights_combine_across_levels() {
    let mut ram = Ram::new(512 * KIB as usize, 0x1_0000);
    let pml4 = ram.page();
    let at = map64(&mut ram, pml4, 4, 0x1000, 0x5000, 1, P | RW | US);
    let s = long(pml4, false, true);
    let t = walk(&s, &mut ram, 0x1000).unwrap();
    assert!(t.writable && t.user && t.executable);
    clear(&mut ram, at[3], RW);
    set(&mut ram, at[2], XD);
    clear(&mut ram, at[4], US);
    let t = walk(&s, &mut ram, 0x1000).unwrap();
    assert!(!t.writable && !t.user && !t.executable);
    assert_eq!(t.gpa, 0x5000);
}

#[test]
fn unreadable_tables_and_data() {
    let mut ram = Ram::new(64 * KIB as usize, 0x1_0000 - 4096);
    let pml4 = ram.page();
    // A root outside RAM.
    let s = long(0x100_0000, false, false);
    assert_eq!(
        translate(&s, &mut ram, 0x1000),
        Err(WalkError::Unreadable { gpa: 0x100_0000 })
    );
    // A PML4E pointing outside RAM.
    ram.w64(pml4, 0x200_0000 | P);
    let s = long(pml4, false, false);
    assert_eq!(
        translate(&s, &mut ram, 0x1000),
        Err(WalkError::Unreadable { gpa: 0x200_0000 })
    );
    // Translation fine, data outside RAM.
    let mut ram = Ram::new(64 * KIB as usize, 0x1_0000 - 4 * 4096);
    let pml4 = ram.page();
    map64(&mut ram, pml4, 4, 0x1000, 0x10_0000, 1, P);
    let s = long(pml4, false, false);
    assert_eq!(translate(&s, &mut ram, 0x1000), Ok(0x10_0000));
    let mut buf = [0; 2];
    assert_eq!(
        read_linear(&s, &mut ram, 0x1000, &mut buf),
        Err(WalkError::Unreadable { gpa: 0x10_0000 })
    );
}

#[test]
fn reads_cross_page_boundaries() {
    let mut ram = Ram::new(512 * KIB as usize, 0x4_0000);
    let pml4 = ram.page();
    // Linear 0x1000 → 0x9000, 0x2000 → 0x5000, 0x3000 → 0x7000 (out of order).
    for (linear, gpa) in [(0x1000, 0x9000), (0x2000, 0x5000), (0x3000, 0x7000)] {
        map64(&mut ram, pml4, 4, linear, gpa, 1, P);
    }
    let data: Vec<u8> = (0..=255).collect();
    ram.put(0x9FF8, &data[..8]);
    ram.put(0x5000, &data[8..]);
    ram.put(0x5000 + 4096 - 4, &[0xAA, 0xBB, 0xCC, 0xDD]);
    ram.put(0x7000, &[0xEE, 0xFF]);
    let s = long(pml4, false, false);
    let mut buf = [0; 16];
    read_linear(&s, &mut ram, 0x1FF8, &mut buf).unwrap();
    assert_eq!(&buf[..], &data[..16]);
    // Three pages in one read.
    let mut big = vec![0; 8 + 4096 + 2];
    read_linear(&s, &mut ram, 0x1FF8, &mut big).unwrap();
    assert_eq!(&big[..16], &data[..16]);
    assert_eq!(&big[8 + 4092..], &[0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF]);
    // The second page missing: the error names it.
    assert_eq!(
        read_linear(&s, &mut ram, 0x3FFE, &mut buf),
        Err(WalkError::NotPresent {
            linear: 0x4000,
            level: 1
        })
    );
    // An empty read translates nothing.
    read_linear(&s, &mut ram, 0xDEAD_0000, &mut []).unwrap();
    // Running off the canonical range.
    let top = 0x0000_7FFF_FFFF_F000;
    map64(&mut ram, pml4, 4, top, 0x9000, 1, P);
    assert_eq!(
        read_linear(&s, &mut ram, top + 0xFF8, &mut buf),
        Err(WalkError::NonCanonical {
            linear: 0x0000_8000_0000_0000
        })
    );
}

#[test]
fn reads_from_a_large_page_into_a_small_one() {
    let mut ram = Ram::new(4 * MIB as usize, 0x1_0000);
    let pml4 = ram.page();
    // 2 MiB page at linear 0x20_0000 → 0x20_0000; 4 KiB page at 0x40_0000 → 0x3000.
    map64(&mut ram, pml4, 4, 0x20_0000, 0x20_0000, 2, P);
    map64(&mut ram, pml4, 4, 0x40_0000, 0x3000, 1, P);
    ram.put(0x3F_FFFC, &[1, 2, 3, 4]);
    ram.put(0x3000, &[5, 6, 7, 8]);
    let mut buf = [0; 8];
    read_linear(&long(pml4, false, false), &mut ram, 0x3F_FFFC, &mut buf).unwrap();
    assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn reads_wrap_at_4_gib_outside_long_mode() {
    let mut ram = Ram::new(256 * KIB as usize, 0x1_0000);
    let pd = ram.page();
    map32(&mut ram, pd, 0xFFFF_F000, 0x8000, false, P);
    map32(&mut ram, pd, 0, 0x9000, false, P);
    ram.put(0x8FFE, &[1, 2]);
    ram.put(0x9000, &[3, 4]);
    let mut buf = [0; 4];
    read_linear(&bits32(pd, false), &mut ram, 0xFFFF_FFFE, &mut buf).unwrap();
    assert_eq!(buf, [1, 2, 3, 4]);
    let pdpt = ram.page();
    map_pae(&mut ram, pdpt, 0xFFFF_F000, 0x8000, 1, P);
    map_pae(&mut ram, pdpt, 0, 0x9000, 1, P);
    buf = [0; 4];
    read_linear(&pae(pdpt, false), &mut ram, 0xFFFF_FFFE, &mut buf).unwrap();
    assert_eq!(buf, [1, 2, 3, 4]);
}

/// Random page-table contents, control registers and addresses: never a panic, and every
/// translation agrees with itself.
#[test]
fn random_walks_never_panic() {
    const RAM: u64 = 256 * KIB;
    let mut rng = Rng::new(0x2545_F491_4F6C_DD1D);
    let mut ram = Ram::new(RAM as usize, 0);
    let (mut ok, mut failed) = (0u32, 0u32);
    for round in 0..200 {
        // Fill RAM with entry-like words: mostly present, pointing into RAM, random flags.
        for i in 0..RAM / 8 {
            let w = rng.next();
            let v = match w % 8 {
                0 => rng.next(),
                1 => w & !P,
                _ => (rng.below(RAM / 4096) << 12) | (w & 0xFFF) | P | (w & (XD | (1 << 13))),
            };
            ram.w64(i * 8, v);
        }
        for _ in 0..100 {
            let state = PagingState {
                cr0: if rng.below(8) == 0 { 0 } else { CR0_PG },
                cr3: if round % 7 == 0 {
                    rng.next()
                } else {
                    rng.below(RAM)
                },
                cr4: rng.next() & (CR4_PSE | CR4_PAE | CR4_LA57),
                efer: rng.next() & (EFER_LMA | EFER_NXE),
            };
            let linear = match rng.below(3) {
                0 => rng.next(),
                1 => rng.below(1 << 32),
                _ => ((rng.next() as i64) >> 16) as u64,
            };
            match walk(&state, &mut ram, linear) {
                Ok(t) => {
                    ok += 1;
                    assert!(t.page_size.is_power_of_two() && t.page_size >= 4096);
                    let wrapped = if state.mode().unwrap().is_long() {
                        linear
                    } else {
                        linear & 0xFFFF_FFFF
                    };
                    assert_eq!(t.gpa & (t.page_size - 1), wrapped & (t.page_size - 1));
                    assert_eq!(translate(&state, &mut ram, linear), Ok(t.gpa));
                    let mut b = [0u8; 1];
                    let r = read_linear(&state, &mut ram, linear, &mut b);
                    assert_eq!(r.is_ok(), t.gpa < RAM);
                }
                Err(_) => failed += 1,
            }
            let mut buf = [0u8; 64];
            let len = rng.below(65) as usize;
            let _ = read_linear(&state, &mut ram, linear, &mut buf[..len]);
        }
    }
    assert!(ok > 1000 && failed > 1000, "ok {ok}, failed {failed}");
}
