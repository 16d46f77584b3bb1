// SPDX-License-Identifier: MIT OR Apache-2.0
//! The kernel's own page tables: the right rights in the right places, and W^X everywhere.

use super::Verdict;
use crate::arch::x86_64::{apic, instr};
use crate::ensure;
use crate::mm::kmap;
use crate::mm::layout::{self, KernelLayout};
use crate::mm::pagetable::{Attrs, audit_wx};

static DATA_PROBE: spin::Mutex<u64> = spin::Mutex::new(0);

/// Text is R-X, rodata R--, data RW- (all write-back); page 0 and the page below the
/// bootstrap processor's stack unmapped; the local APIC uncached; the boot map no longer in use.
pub fn layout() -> Verdict {
    let table = kmap::current();
    ensure!(
        table.root() == kmap::root(),
        "CR3 {:#x} is not the kernel table {:#x}",
        table.root(),
        kmap::root()
    );
    let text = layout as *const () as u64;
    let rodata = "a string constant in .rodata".as_ptr() as u64;
    let data = &*DATA_PROBE.lock() as *const u64 as u64;
    let heap = alloc::boxed::Box::new(0u64);
    let heap_addr = &*heap as *const u64 as u64;
    let lapic = apic::base_from_msr();
    let KernelLayout {
        stack, stack_guard, ..
    } = layout::kernel();
    let cases = [
        ("text", text, Some(Attrs::READ_EXEC)),
        ("rodata", rodata, Some(Attrs::READ)),
        ("data", data, Some(Attrs::READ_WRITE)),
        ("heap", heap_addr, Some(Attrs::READ_WRITE)),
        ("local apic", lapic, Some(Attrs::DEVICE)),
        ("page 0", 0x10, None),
        ("stack guard", stack_guard.start, None),
        ("stack guard's end", stack_guard.end - 8, None),
        ("stack", stack.start, Some(Attrs::READ_WRITE)),
    ];
    for (what, addr, want) in cases {
        let got = table.translate(addr);
        ensure!(
            got.map(|t| t.attrs) == want,
            "{what} at {addr:#x}: {got:?}, want {want:?}"
        );
        if let Some(t) = got {
            ensure!(
                t.phys == addr,
                "{what} at {addr:#x} not identity mapped ({:#x})",
                t.phys
            );
        }
    }
    ensure!(
        instr::read_cr0() & (1 << 16) != 0,
        "CR0.WP clear: the kernel could write read-only pages"
    );
    Ok("text R-X, rodata R--, data/heap RW- NX, lapic uncached, page 0 and the stack guard unmapped".into())
}

/// No mapping in the live tables is both writable and executable.
pub fn wx() -> Verdict {
    let audit = audit_wx(&kmap::current());
    crate::kprintln!(
        "wx audit: {} mappings checked, {} writable+executable",
        audit.mappings,
        audit.violations
    );
    ensure!(audit.mappings > 0, "the audit saw no mappings");
    ensure!(
        audit.violations == 0,
        "{} writable+executable mappings, first at {:#x}",
        audit.violations,
        audit.first_violation.unwrap_or(0)
    );
    Ok(alloc::format!(
        "{} mappings, none writable+executable",
        audit.mappings
    ))
}
