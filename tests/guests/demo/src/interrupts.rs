// SPDX-License-Identifier: MIT OR Apache-2.0
//! The demo's IDT: exceptions 0-31 report and stop the demo, vector 0x20 (IRQ0, the PIT) counts
//! a tick, vector 0x24 (IRQ4, COM1, unmasked in echo mode) counts the UART's interrupt, vectors
//! 0x21-0x2F (the other 8259A lines, all masked) are ignored. The entry stubs
//! are in boot.S.

use crate::{EXIT_EXCEPTION, console::say, exit, instr};
use core::cell::UnsafeCell;

/// The 64-bit code segment selector (boot.S's GDT).
const CODE64: u64 = 0x08;
/// The master 8259A's vector base; the slave's follows at +8.
pub const PIC_VECTOR_BASE: u8 = 0x20;
/// Vectors in the table: the exceptions and both 8259As.
const VECTORS: usize = PIC_VECTOR_BASE as usize + 16;
/// Type and attributes of a 64-bit interrupt gate, present, DPL 0 (SDM Vol. 3A, 6.14.1).
const INTERRUPT_GATE: u64 = 0x8E;

unsafe extern "C" {
    /// boot.S: the 32 exception entry stubs' addresses, by vector.
    static castor_demo_exception_stubs: [u64; 32];
    /// boot.S: IRQ0's entry.
    fn castor_demo_irq0();
    /// boot.S: IRQ4's entry.
    fn castor_demo_irq4();
    /// boot.S: the entry that ignores an interrupt.
    fn castor_demo_ignore_irq();
}

/// A 64-bit IDT gate descriptor (SDM Vol. 3A, 6.14.1, Figure 6-8).
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Gate {
    low: u64,
    high: u64,
}

impl Gate {
    const MISSING: Gate = Gate { low: 0, high: 0 };

    /// An interrupt gate (interrupts masked on entry) to `handler` in the 64-bit code segment.
    fn interrupt(handler: u64) -> Gate {
        let low = (handler & 0xFFFF)
            | (CODE64 << 16)
            | (INTERRUPT_GATE << 40)
            | ((handler >> 16) & 0xFFFF) << 48;
        Gate {
            low,
            high: handler >> 32,
        }
    }
}

/// The IDT, written once by [`install`] before any interrupt can arrive.
struct Idt(UnsafeCell<[Gate; VECTORS]>);

// SAFETY: one CPU; [`install`] writes the table before loading it and nothing writes it after.
unsafe impl Sync for Idt {}

static IDT: Idt = Idt(UnsafeCell::new([Gate::MISSING; VECTORS]));

/// Fills in and loads the IDT. Call once, with interrupts masked.
pub fn install() {
    // SAFETY: boot.S defines the table with 32 entries.
    let stubs = unsafe { &castor_demo_exception_stubs };
    // SAFETY: the only writer, before the table is loaded (no handler reads it yet).
    let table = unsafe { &mut *IDT.0.get() };
    for (gate, &stub) in table.iter_mut().zip(stubs) {
        *gate = Gate::interrupt(stub);
    }
    for (n, gate) in table[usize::from(PIC_VECTOR_BASE)..].iter_mut().enumerate() {
        let entry: unsafe extern "C" fn() = match n {
            0 => castor_demo_irq0,
            4 => castor_demo_irq4,
            _ => castor_demo_ignore_irq,
        };
        *gate = Gate::interrupt(entry as *const () as u64);
    }
    let limit = (core::mem::size_of::<[Gate; VECTORS]>() - 1) as u16;
    // SAFETY: a complete table of valid gates to boot.S's stubs, in a static.
    unsafe { instr::load_idt(IDT.0.get() as u64, limit) };
}

/// Vectors whose exceptions push an error code (SDM Vol. 3A, 6.15).
fn has_error_code(vector: u64) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// boot.S's common exception path: reports the exception and exits with [`EXIT_EXCEPTION`].
/// `frame` points at what the CPU pushed (an error code first for some vectors, then RIP).
pub extern "C" fn exception(vector: u64, frame: *const u64) -> ! {
    let skip = usize::from(has_error_code(vector));
    // SAFETY: the CPU pushed at least the error code (if any), RIP, CS, RFLAGS, RSP and SS.
    let rip = unsafe { frame.add(skip).read() };
    let code = match skip {
        // SAFETY: as above; the error code is the first word.
        1 => unsafe { frame.read() },
        _ => 0,
    };
    say!("error: exception {vector} (error code {code:#x}) at rip={rip:#x}");
    exit(EXIT_EXCEPTION)
}
