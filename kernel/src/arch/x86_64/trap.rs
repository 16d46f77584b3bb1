// SPDX-License-Identifier: MIT OR Apache-2.0
//! The IDT and the single Rust entry point for every interrupt and exception.

use core::sync::atomic::Ordering;

use super::instr::{self, DescriptorTablePointer};
use super::{apic, exception, gdt, irq, percpu};

core::arch::global_asm!(include_str!("trap.S"));

unsafe extern "C" {
    /// Start of the 256 entry stubs, 16 bytes apart (trap.S).
    static trap_stubs: u8;
}

/// Vector of the local APIC timer.
pub const VECTOR_TIMER: u8 = 0x20;
/// The NMI vector.
const VECTOR_NMI: u64 = 2;

/// Vector of the local APIC spurious interrupt (low nibble all ones, SDM Vol. 3A, 11.9).
pub const VECTOR_SPURIOUS: u8 = 0xFF;

/// Register state saved on entry; layout fixed by trap.S.
#[repr(C)]
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Interrupt vector (pushed by the stub).
    pub vector: u64,
    /// Error code (pushed by the CPU, or 0 by the stub).
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// One 64-bit IDT gate (SDM Vol. 3A, 7.14.1, Figure 7-8).
#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

impl Gate {
    const EMPTY: Gate = Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        type_attr: 0,
        offset_mid: 0,
        offset_high: 0,
        reserved: 0,
    };

    /// A present, DPL 0, 64-bit interrupt gate (type 0xE: IF cleared on entry).
    fn interrupt(handler: u64, ist: u8) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: gdt::KERNEL_CODE,
            ist,
            type_attr: 0x8E,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: spin::Once<Idt> = spin::Once::new();

fn build() -> Idt {
    let base = &raw const trap_stubs as u64;
    let mut idt = Idt([Gate::EMPTY; 256]);
    for (vector, gate) in idt.0.iter_mut().enumerate() {
        let ist = match vector {
            2 => gdt::IST_NMI,
            8 => gdt::IST_DOUBLE_FAULT,
            18 => gdt::IST_MACHINE_CHECK,
            _ => 0,
        };
        *gate = Gate::interrupt(base + 16 * vector as u64, ist);
    }
    idt
}

/// Loads the (shared) IDT on this CPU, building it on first use.
pub fn init() {
    let idt = IDT.call_once(build);
    let ptr = DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: idt as *const Idt as u64,
    };
    // SAFETY: the IDT is static and never changes after being built; every gate points at a stub
    // in trap.S that saves state and calls `trap_dispatch`.
    unsafe { instr::lidt(&ptr) };
}

/// Called by trap.S for every vector.
#[unsafe(no_mangle)]
extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    match frame.vector {
        // Castor asks for no NMIs; one from the platform (a watchdog, an NMI button) is
        // ignored and the CPU goes on, in the host or in the guest it interrupted (the back
        // ends hand NMIs that arrive in a guest to the host: AMD-V holds them pending until
        // STGI, VT-x re-raises them with `instr::raise_nmi`). Nothing is done in NMI context:
        // it may have interrupted any lock holder, the console's included.
        VECTOR_NMI => {}
        0..=31 => exception::report_and_halt(frame),
        v => dispatch_host_vector(v as u8),
    }
}

/// Handles host interrupt `vector` (also called for interrupts that arrived during guest
/// execution and were acknowledged on VM exit).
pub fn dispatch_host_vector(vector: u8) {
    match u64::from(vector) {
        v if v == u64::from(VECTOR_TIMER) => {
            percpu::current()
                .timer_ticks
                .fetch_add(1, Ordering::Relaxed);
            apic::eoi();
        }
        v if v == u64::from(VECTOR_SPURIOUS) => {}
        // It only ends a HLT (`worker::serve`).
        v if v == u64::from(super::worker::VECTOR_WAKE) => apic::eoi(),
        _ if irq::dispatch(vector) => {}
        v => {
            log::warn!("unexpected interrupt vector {v:#x}");
            apic::eoi();
        }
    }
}
