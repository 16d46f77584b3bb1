// SPDX-License-Identifier: MIT OR Apache-2.0
//! Guest linear → guest-physical translation: a software walk of the guest's own page tables.
//!
//! References: Intel SDM Vol. 3A, chapter 5 "Paging" (5.1.1 "Four Paging Modes", 5.3 "32-Bit
//! Paging", 5.4 "PAE Paging", 5.5 "4-Level Paging and 5-Level Paging", 5.7 "Page-Fault
//! Exceptions" for the reserved-bit rules); AMD APM Vol. 2, chapter 5 "Page Translation and
//! Protection" (5.2 "Legacy-Mode Page Translation", 5.3 "Long-Mode Page Translation", 5.4
//! "Page-Translation-Table Entry Fields").
//!
//! Every paging mode is handled: paging off, 32-bit paging (4 KiB pages, and 4 MiB pages with
//! CR4.PSE, including the PSE-36 high address bits 20:13), PAE paging (2 MiB pages), 4-level
//! paging (2 MiB and 1 GiB pages) and 5-level paging (CR4.LA57).
//!
//! The walk is for the hypervisor's own reads (instruction bytes the guest has just executed,
//! operands it emulates): it sets no accessed or dirty bits and does not enforce access
//! rights, but reports in [`Translation`] the rights the entries grant. It refuses entries that
//! are not present and the reserved bits that do not depend on MAXPHYADDR (the XD bit without
//! EFER.NXE, the PS bit where it is reserved, the low bits of a large page's address, the
//! reserved bits of a PAE PDPTE). Address bits above MAXPHYADDR are not checked: such an address
//! is outside guest RAM, and [`GuestRead::read`] refuses it.
//!
//! PAE PDPTEs are read from memory at CR3. The CPU reads them when CR3 is loaded (Intel keeps
//! them in the VMCS guest-state area with EPT); a guest that rewrote its PDPT without reloading
//! CR3 would see the old values where this walk sees the new ones.

/// Read access to guest-physical memory.
pub trait GuestRead {
    /// Copies guest-physical `[gpa, gpa + buf.len())` into `buf`; false if that range is not
    /// all guest RAM (the contents of `buf` are then unspecified).
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> bool;

    /// The little-endian 64-bit value at guest-physical `gpa` (a paging-structure entry), or
    /// `None` if it is not guest RAM. Memory that can do better than [`read`](Self::read)'s
    /// copy says so here: a walk reads one of these per level.
    fn read_u64(&mut self, gpa: u64) -> Option<u64> {
        let mut b = [0; 8];
        self.read(gpa, &mut b).then(|| u64::from_le_bytes(b))
    }

    /// Whether every word reads its `value` now, in the bits of its `mask`; `None` if some
    /// word is not all guest RAM. One call checks a whole memo entry (`cache`), where a call
    /// per read through `dyn GuestRead` would cost more than the reads.
    fn words_match(&mut self, words: &[Word]) -> Option<bool> {
        for w in words {
            if (self.read_u64(w.gpa)? ^ w.value) & w.mask != 0 {
                return Some(false);
            }
        }
        Some(true)
    }
}

/// A little-endian 64-bit word of guest memory and the bits of it that matter
/// ([`GuestRead::words_match`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Word {
    /// Guest-physical address (any alignment).
    pub gpa: u64,
    /// The value expected.
    pub value: u64,
    /// The bits compared.
    pub mask: u64,
}

/// The guest registers that select and root its paging mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PagingState {
    /// CR0 (PG, bit 31, turns paging on).
    pub cr0: u64,
    /// CR3: the root of the paging structures (and the PCID, ignored here).
    pub cr3: u64,
    /// CR4 (PSE bit 4, PAE bit 5, LA57 bit 12).
    pub cr4: u64,
    /// IA32_EFER (LMA bit 10, NXE bit 11).
    pub efer: u64,
}

/// CR0.PG: paging enabled.
pub const CR0_PG: u64 = 1 << 31;
/// CR4.PSE: 4 MiB pages in 32-bit paging.
pub const CR4_PSE: u64 = 1 << 4;
/// CR4.PAE: 64-bit entries (PAE, 4-level and 5-level paging).
pub const CR4_PAE: u64 = 1 << 5;
/// CR4.LA57: 5-level paging when in long mode.
pub const CR4_LA57: u64 = 1 << 12;
/// EFER.LMA: long mode active.
pub const EFER_LMA: u64 = 1 << 10;
/// EFER.NXE: the XD/NX bit (63) of 64-bit entries is defined.
pub const EFER_NXE: u64 = 1 << 11;

/// The paging modes (SDM Vol. 3A, 5.1.1, Table 5-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagingMode {
    /// CR0.PG = 0: linear addresses are physical addresses.
    Off,
    /// CR0.PG = 1, CR4.PAE = 0: two levels of 32-bit entries.
    Bits32,
    /// CR0.PG = 1, CR4.PAE = 1, EFER.LMA = 0: four PDPTEs, then two levels of 64-bit entries.
    Pae,
    /// CR0.PG = 1, CR4.PAE = 1, EFER.LMA = 1, CR4.LA57 = 0.
    Level4,
    /// CR0.PG = 1, CR4.PAE = 1, EFER.LMA = 1, CR4.LA57 = 1.
    Level5,
}

impl PagingState {
    /// The paging mode these registers select; [`WalkError::InconsistentState`] for EFER.LMA = 1
    /// without CR0.PG and CR4.PAE, which the CPU does not allow.
    pub fn mode(&self) -> Result<PagingMode, WalkError> {
        let lma = self.efer & EFER_LMA != 0;
        if self.cr0 & CR0_PG == 0 {
            return if lma {
                Err(WalkError::InconsistentState)
            } else {
                Ok(PagingMode::Off)
            };
        }
        Ok(match (self.cr4 & CR4_PAE != 0, lma) {
            (false, false) => PagingMode::Bits32,
            (false, true) => return Err(WalkError::InconsistentState),
            (true, false) => PagingMode::Pae,
            (true, true) if self.cr4 & CR4_LA57 != 0 => PagingMode::Level5,
            (true, true) => PagingMode::Level4,
        })
    }
}

impl PagingMode {
    /// True for the modes whose linear addresses are 64 bits wide (outside long mode they are
    /// 32 bits, and wrap at 4 GiB).
    pub fn is_long(self) -> bool {
        matches!(self, PagingMode::Level4 | PagingMode::Level5)
    }

    /// `linear` as the CPU uses it in this mode: truncated to 32 bits outside long mode.
    fn wrap(self, linear: u64) -> u64 {
        if self.is_long() {
            linear
        } else {
            linear & 0xFFFF_FFFF
        }
    }
}

/// Why a linear address could not be translated or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkError {
    /// The entry at `level` (1 = PTE, 2 = PDE, 3 = PDPTE, 4 = PML4E, 5 = PML5E) mapping
    /// `linear` is not present: the guest would take a #PF.
    NotPresent {
        /// The linear address (as wrapped for the mode) being translated.
        linear: u64,
        /// Level of the entry that is not present.
        level: u8,
    },
    /// The entry at `level` mapping `linear` has a reserved bit set: the guest would take a #PF
    /// with the RSVD error-code bit.
    Reserved {
        /// The linear address (as wrapped for the mode) being translated.
        linear: u64,
        /// Level of the offending entry.
        level: u8,
    },
    /// In long mode, `linear` is not canonical (the guest would take a #GP or #SS).
    NonCanonical {
        /// The address.
        linear: u64,
    },
    /// Guest-physical `gpa` (a paging-structure entry, or the data) is not guest RAM.
    Unreadable {
        /// The address that could not be read.
        gpa: u64,
    },
    /// EFER.LMA = 1 without CR0.PG = 1 and CR4.PAE = 1: not a state the CPU can be in.
    InconsistentState,
}

impl core::fmt::Display for WalkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            WalkError::NotPresent { linear, level } => {
                write!(f, "{linear:#x}: level-{level} entry not present")
            }
            WalkError::Reserved { linear, level } => {
                write!(f, "{linear:#x}: reserved bit set in level-{level} entry")
            }
            WalkError::NonCanonical { linear } => write!(f, "{linear:#x} is not canonical"),
            WalkError::Unreadable { gpa } => write!(f, "guest-physical {gpa:#x} is not RAM"),
            WalkError::InconsistentState => f.write_str("EFER.LMA set without CR0.PG and CR4.PAE"),
        }
    }
}

/// The result of a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    /// The guest-physical address `linear` maps to.
    pub gpa: u64,
    /// Size of the page holding it: 4 KiB, 2 MiB, 4 MiB, 1 GiB, or 4 GiB when paging is off
    /// (the whole 32-bit space maps one to one).
    pub page_size: u64,
    /// Every level allows writes (R/W = 1); CR0.WP is not applied.
    pub writable: bool,
    /// Every level allows user-mode access (U/S = 1); SMEP, SMAP and protection keys are not
    /// applied.
    pub user: bool,
    /// No level forbids instruction fetches (XD = 0, or EFER.NXE = 0, or 32-bit paging).
    pub executable: bool,
}

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const USER: u64 = 1 << 2;
const PAGE_SIZE: u64 = 1 << 7;
const XD: u64 = 1 << 63;
/// Address bits 51:12 of a 64-bit entry (and of CR3 in long mode).
const ADDR_64: u64 = 0x000F_FFFF_FFFF_F000;
/// Reserved bits of a PAE PDPTE that do not depend on MAXPHYADDR: 2:1, 8:5 and 63 (SDM Vol. 3A,
/// Table 5-8; APM Vol. 2, 5.2.3).
const PDPTE_RESERVED: u64 = 0b1_1110_0110 | XD;

/// Translates the guest linear address `linear`.
pub fn translate<M: GuestRead + ?Sized>(
    state: &PagingState,
    mem: &mut M,
    linear: u64,
) -> Result<u64, WalkError> {
    walk(state, mem, linear).map(|t| t.gpa)
}

/// Walks the guest's page tables for `linear`, reporting the page and the rights on the way.
///
/// Outside long mode `linear` is truncated to 32 bits, as the CPU wraps linear addresses there.
pub fn walk<M: GuestRead + ?Sized>(
    state: &PagingState,
    mem: &mut M,
    linear: u64,
) -> Result<Translation, WalkError> {
    let mode = state.mode()?;
    let linear = mode.wrap(linear);
    let nxe = state.efer & EFER_NXE != 0;
    match mode {
        PagingMode::Off => Ok(Translation {
            gpa: linear,
            page_size: 1 << 32,
            writable: true,
            user: true,
            executable: true,
        }),
        PagingMode::Bits32 => walk_32(state, mem, linear),
        PagingMode::Pae => {
            // SDM Vol. 3A, 5.4.1: CR3 bits 31:5 locate the four PDPTEs.
            let gpa = (state.cr3 & 0xFFFF_FFE0) + ((linear >> 30) & 3) * 8;
            let pdpte = read_u64(mem, gpa)?;
            if pdpte & PRESENT == 0 {
                return Err(WalkError::NotPresent { linear, level: 3 });
            }
            if pdpte & PDPTE_RESERVED != 0 {
                return Err(WalkError::Reserved { linear, level: 3 });
            }
            // A PDPTE has no R/W, U/S or XD bits: it restricts nothing.
            descend(mem, linear, pdpte & ADDR_64, 2, nxe, Rights::ALL)
        }
        PagingMode::Level4 | PagingMode::Level5 => {
            let bits = if mode == PagingMode::Level5 { 57 } else { 48 };
            // Canonical: bits 63:bits-1 all equal (SDM Vol. 1, 3.3.7.1; APM Vol. 2, 5.3.1).
            let shift = 64 - bits;
            if (((linear << shift) as i64) >> shift) as u64 != linear {
                return Err(WalkError::NonCanonical { linear });
            }
            let top = if mode == PagingMode::Level5 { 5 } else { 4 };
            descend(mem, linear, state.cr3 & ADDR_64, top, nxe, Rights::ALL)
        }
    }
}

/// Reads `buf.len()` bytes of guest memory at guest linear address `linear`, translating each
/// page the range touches (so a read that crosses a page boundary may find the second page
/// missing: the error then names that page's address). Outside long mode the range wraps at
/// 4 GiB, as linear addresses do there.
pub fn read_linear<M: GuestRead + ?Sized>(
    state: &PagingState,
    mem: &mut M,
    linear: u64,
    buf: &mut [u8],
) -> Result<(), WalkError> {
    let mode = state.mode()?;
    let mut done = 0;
    while done < buf.len() {
        let at = mode.wrap(linear.wrapping_add(done as u64));
        let t = walk(state, mem, at)?;
        let left_in_page = t.page_size - (at & (t.page_size - 1));
        let n = usize::try_from(left_in_page).map_or(buf.len() - done, |l| l.min(buf.len() - done));
        if !mem.read(t.gpa, &mut buf[done..done + n]) {
            return Err(WalkError::Unreadable { gpa: t.gpa });
        }
        done += n;
    }
    Ok(())
}

/// Rights accumulated along a walk (combined with AND; XD with OR).
#[derive(Clone, Copy)]
struct Rights {
    writable: bool,
    user: bool,
    executable: bool,
}

impl Rights {
    const ALL: Rights = Rights {
        writable: true,
        user: true,
        executable: true,
    };

    fn and(self, entry: u64, nxe: bool) -> Rights {
        Rights {
            writable: self.writable && entry & WRITABLE != 0,
            user: self.user && entry & USER != 0,
            executable: self.executable && !(nxe && entry & XD != 0),
        }
    }
}

fn read_u64<M: GuestRead + ?Sized>(mem: &mut M, gpa: u64) -> Result<u64, WalkError> {
    mem.read_u64(gpa).ok_or(WalkError::Unreadable { gpa })
}

fn read_u32<M: GuestRead + ?Sized>(mem: &mut M, gpa: u64) -> Result<u32, WalkError> {
    let mut b = [0; 4];
    if mem.read(gpa, &mut b) {
        Ok(u32::from_le_bytes(b))
    } else {
        Err(WalkError::Unreadable { gpa })
    }
}

/// Walks 64-bit entries from the table at `table` (of level `top`) down to a leaf: the common
/// part of PAE (from the page directory), 4-level and 5-level paging (SDM Vol. 3A, 5.4.2 and
/// 5.5.4; APM Vol. 2, 5.3.3).
fn descend<M: GuestRead + ?Sized>(
    mem: &mut M,
    linear: u64,
    mut table: u64,
    top: u8,
    nxe: bool,
    mut rights: Rights,
) -> Result<Translation, WalkError> {
    for level in (1..=top).rev() {
        let shift = 12 + 9 * u32::from(level - 1);
        let entry = read_u64(mem, table + ((linear >> shift) & 0x1FF) * 8)?;
        if entry & PRESENT == 0 {
            return Err(WalkError::NotPresent { linear, level });
        }
        // XD is reserved without EFER.NXE; PS is reserved in PML4Es and PML5Es.
        if (!nxe && entry & XD != 0) || (level >= 4 && entry & PAGE_SIZE != 0) {
            return Err(WalkError::Reserved { linear, level });
        }
        rights = rights.and(entry, nxe);
        if level == 1 || entry & PAGE_SIZE != 0 {
            let page_size = 1u64 << shift;
            // In a large-page entry, bit 12 is PAT and bits shift-1:13 are reserved.
            if level > 1 && entry & (page_size - 1) & !0x1FFF & ADDR_64 != 0 {
                return Err(WalkError::Reserved { linear, level });
            }
            return Ok(Translation {
                gpa: (entry & ADDR_64 & !(page_size - 1)) | (linear & (page_size - 1)),
                page_size,
                writable: rights.writable,
                user: rights.user,
                executable: rights.executable,
            });
        }
        table = entry & ADDR_64;
    }
    // `top` is at least 2, and level 1 always returns above.
    Err(WalkError::InconsistentState)
}

/// 32-bit paging (SDM Vol. 3A, 5.3; APM Vol. 2, 5.2.2): a page directory of 1024 32-bit
/// entries at CR3 bits 31:12, each mapping 4 MiB directly (PS = 1 with CR4.PSE) or through a
/// page table of 1024 entries.
fn walk_32<M: GuestRead + ?Sized>(
    state: &PagingState,
    mem: &mut M,
    linear: u64,
) -> Result<Translation, WalkError> {
    let pd = state.cr3 & 0xFFFF_F000;
    let pde = u64::from(read_u32(mem, pd + (linear >> 22) * 4)?);
    if pde & PRESENT == 0 {
        return Err(WalkError::NotPresent { linear, level: 2 });
    }
    if state.cr4 & CR4_PSE != 0 && pde & PAGE_SIZE != 0 {
        // 4 MiB page: address bits 31:22 from bits 31:22, bits 39:32 from bits 20:13 (PSE-36 /
        // PSE-40); bit 21 is reserved (SDM Vol. 3A, Table 5-4).
        if pde & (1 << 21) != 0 {
            return Err(WalkError::Reserved { linear, level: 2 });
        }
        let base = (pde & 0xFFC0_0000) | (((pde >> 13) & 0xFF) << 32);
        return Ok(Translation {
            gpa: base | (linear & 0x3F_FFFF),
            page_size: 4 << 20,
            writable: pde & WRITABLE != 0,
            user: pde & USER != 0,
            executable: true,
        });
    }
    let pte = u64::from(read_u32(
        mem,
        (pde & 0xFFFF_F000) + ((linear >> 12) & 0x3FF) * 4,
    )?);
    if pte & PRESENT == 0 {
        return Err(WalkError::NotPresent { linear, level: 1 });
    }
    Ok(Translation {
        gpa: (pte & 0xFFFF_F000) | (linear & 0xFFF),
        page_size: 4096,
        writable: pde & pte & WRITABLE != 0,
        user: pde & pte & USER != 0,
        executable: true,
    })
}
