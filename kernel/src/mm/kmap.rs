// SPDX-License-Identifier: MIT OR Apache-2.0
//! The kernel's own address space, replacing the boot identity map (boot/entry.S).
//!
//! Physical memory is identity mapped up to the larger of 4 GiB and the end of RAM, with these
//! rights (W^X: nothing is both writable and executable):
//! - kernel text: read + execute; kernel rodata: read only; kernel data/bss: read + write, NX;
//! - all other RAM: read + write, NX, write-back;
//! - everything that is not RAM (MMIO: local/IO APIC, PCI BARs, ...): read + write, NX, uncached;
//! - the page below the bootstrap processor's stack is left unmapped, so an overflow faults;
//! - page 0 is left unmapped so null-pointer accesses fault; firmware data in it (the BIOS data
//!   area, e.g. the EBDA pointer at 0x40E used to find ACPI tables) is reachable read-only
//!   through [`LOW_PAGE_ALIAS`].
//!
//! 2 MiB pages are used wherever a whole 2 MiB chunk has the same rights; 4 KiB pages elsewhere.

use core::sync::atomic::{AtomicU64, Ordering};

use super::layout::{self, KernelLayout};
use super::pagetable::{Attrs, HostFormat, MapError, PageTable, TableMemory, level_size};
use super::region::{FRAME_SIZE, Region};
use crate::arch::x86_64::instr;
use crate::bootinfo::BootInfo;

/// Table memory from the frame allocator, reached through the identity map.
pub struct IdentityTables;

impl TableMemory for IdentityTables {
    fn alloc_table(&mut self) -> Option<u64> {
        // Below 4 GiB: tables are built while the boot map (first 4 GiB) is still active.
        let phys = super::alloc_frames_below(1, 1 << 32)?;
        // SAFETY: the frame was just allocated for us and is identity mapped.
        unsafe { core::ptr::write_bytes(phys as *mut u8, 0, FRAME_SIZE as usize) };
        Some(phys)
    }

    fn read(&self, table: u64, index: usize) -> u64 {
        // SAFETY: `table` is a page-table frame (allocated above or the live CR3 root), identity
        // mapped; `index` < 512 (callers index with 9-bit values).
        unsafe { core::ptr::read_volatile((table as *const u64).add(index)) }
    }

    fn free_table(&mut self, table: u64) {
        if let Err(e) = super::free_frames(table, 1) {
            log::error!("page table frame {table:#x} could not be freed: {e:?}");
        }
    }

    fn write(&mut self, table: u64, index: usize, entry: u64) {
        // SAFETY: as in `read`; only the BSP modifies the kernel tables, before other CPUs use them.
        unsafe { core::ptr::write_volatile((table as *mut u64).add(index), entry) }
    }

    fn fetch_or(&mut self, table: u64, index: usize, bits: u64) -> u64 {
        // SAFETY: as in `read`: the entry is an aligned u64 in a table frame, identity mapped;
        // processors that walk the table update it with locked operations too.
        let entry =
            unsafe { core::sync::atomic::AtomicU64::from_ptr((table as *mut u64).add(index)) };
        entry.fetch_or(bits, core::sync::atomic::Ordering::AcqRel)
    }
}

/// The kernel's page table type.
pub type KernelTable = PageTable<HostFormat, IdentityTables>;

/// Virtual address where physical page 0 is mapped read-only (it is not identity mapped).
pub const LOW_PAGE_ALIAS: u64 = 0xFFFF_FF00_0000_0000;

/// Virtual address through which physical `phys` can be read: identity, except page 0.
pub fn phys_to_virt(phys: u64) -> u64 {
    if phys < FRAME_SIZE {
        LOW_PAGE_ALIAS + phys
    } else {
        phys
    }
}

static ROOT: AtomicU64 = AtomicU64::new(0);

/// Physical address of the kernel's PML4 (0 before [`build_and_activate`]).
pub fn root() -> u64 {
    ROOT.load(Ordering::Acquire)
}

/// A view of the live kernel page table.
pub fn current() -> KernelTable {
    KernelTable::from_root(instr::read_cr3() & !0xFFF, IdentityTables)
}

fn page_attrs(addr: u64, kernel: &KernelLayout, ram: &impl Fn(Region) -> bool) -> Option<Attrs> {
    if addr < FRAME_SIZE || kernel.stack_guard.contains(addr) {
        None
    } else if kernel.text.contains(addr) {
        Some(Attrs::READ_EXEC)
    } else if kernel.rodata.contains(addr) {
        Some(Attrs::READ)
    } else if ram(Region::new(addr, addr + FRAME_SIZE)) {
        Some(Attrs::READ_WRITE)
    } else {
        Some(Attrs::DEVICE)
    }
}

/// Builds the kernel address space for this machine's memory map and loads it on this CPU.
pub fn build_and_activate(boot: &BootInfo) -> Result<u64, MapError> {
    let kernel = layout::kernel();
    let ram_areas = || {
        boot.areas()
            .iter()
            .filter(|a| a.kind.is_ram())
            .map(|a| a.region)
    };
    let ram = |r: Region| ram_areas().any(|a| a.start <= r.start && r.end <= a.end);
    let touches_ram = |r: Region| ram_areas().any(|a| a.overlaps(&r));
    let end_of_ram = ram_areas().map(|r| r.end).max().unwrap_or(0);
    let top = end_of_ram.max(1 << 32).next_multiple_of(level_size(2));

    let mut table = KernelTable::new(IdentityTables).ok_or(MapError::OutOfMemory)?;
    let big = level_size(2);
    for chunk in (0..top).step_by(big as usize) {
        let region = Region::new(chunk, chunk + big);
        let special = chunk == 0 || region.overlaps(&kernel.image);
        if !special && ram(region) {
            table.map(chunk, chunk, 2, Attrs::READ_WRITE)?;
        } else if !special && !touches_ram(region) {
            table.map(chunk, chunk, 2, Attrs::DEVICE)?;
        } else {
            for page in (chunk..chunk + big).step_by(FRAME_SIZE as usize) {
                if let Some(attrs) = page_attrs(page, &kernel, &ram) {
                    table.map(page, page, 1, attrs)?;
                }
            }
        }
    }
    table.map(LOW_PAGE_ALIAS, 0, 1, Attrs::READ)?;
    let root = table.root();
    ROOT.store(root, Ordering::Release);
    activate();
    Ok(root)
}

/// Leaves the page at `phys` unmapped in the live kernel table from now on: a guard page below
/// an application processor's stack (`arch::x86_64::smp`). Call on the bootstrap processor
/// before the CPU that will use the stack starts; this CPU's TLB is flushed for it, and the
/// others never touch the page.
///
/// # Errors
/// As [`PageTable::unmap_page`].
pub fn unmap_guard(phys: u64) -> Result<(), MapError> {
    current().unmap_page(phys)?;
    instr::invlpg(phys);
    Ok(())
}

/// Loads the kernel address space on this CPU (the BSP after building it; every AP on entry).
pub fn activate() {
    // SAFETY: the kernel table identity-maps the kernel image (text executable), all RAM (stacks,
    // heap, per-CPU data) and MMIO; EFER.NXE was set in boot/entry.S or the AP trampoline before
    // any NX entry is used.
    unsafe { instr::write_cr3(root()) };
}
