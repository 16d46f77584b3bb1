// SPDX-License-Identifier: MIT OR Apache-2.0
//! Device interrupts: allocation of vectors [`FIRST`]..=[`LAST`] to drivers and their dispatch
//! from the common trap entry (trap.rs), with an end of interrupt to the local APIC after the
//! handlers ran (Intel SDM Vol. 3A, 11.8.5). Vectors come from MSI/MSI-X messages or I/O APIC
//! pins; they are never freed (a handful of devices, probed once).
//!
//! Handlers are `&'static dyn Handler` registered once per slot ([`spin::Once`]), so the
//! interrupt path takes no lock; up to [`HANDLERS_PER_VECTOR`] handlers share a vector (legacy
//! INTx lines are shared). Handlers count what concerns them ([`Counter`]).

use core::sync::atomic::{AtomicU64, Ordering};

use alloc::vec::Vec;

use super::apic;
use super::ioapic::{self, Line};

/// First device vector (above the exceptions 0..31 and the timer at 0x20).
pub const FIRST: u8 = 0x40;
/// Last device vector (0xF0..0xFF stay for the system: spurious at 0xFF).
pub const LAST: u8 = 0xEF;
/// Handlers one vector can have.
pub const HANDLERS_PER_VECTOR: usize = 4;

const COUNT: usize = (LAST - FIRST) as usize + 1;

/// Something to run when a device interrupt arrives (with interrupts masked, on the CPU the
/// message or pin names). Must not take locks the interrupted code may hold.
pub trait Handler: Sync {
    /// Handles one delivery.
    fn handle(&self);
}

/// A handler that only counts deliveries.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// A counter at zero.
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Deliveries so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Handler for Counter {
    fn handle(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

struct Slot {
    handlers: [spin::Once<&'static dyn Handler>; HANDLERS_PER_VECTOR],
}

static SLOTS: [Slot; COUNT] = [const {
    Slot {
        handlers: [const { spin::Once::new() }; HANDLERS_PER_VECTOR],
    }
}; COUNT];

/// Next unallocated vector (index into `SLOTS`); allocation and registration serialize here.
static NEXT: spin::Mutex<usize> = spin::Mutex::new(0);

/// Why a vector could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqError {
    /// All device vectors are in use.
    NoVector,
    /// The vector already has [`HANDLERS_PER_VECTOR`] handlers.
    TooManyHandlers,
    /// Not a device vector, or not allocated.
    BadVector(u8),
}

impl core::fmt::Display for IrqError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IrqError::NoVector => write!(f, "no free interrupt vector"),
            IrqError::TooManyHandlers => write!(f, "interrupt vector has too many handlers"),
            IrqError::BadVector(v) => write!(f, "vector {v:#x} is not an allocated device vector"),
        }
    }
}

/// Allocates a fresh vector with `handler` as its first handler.
pub fn allocate(handler: &'static dyn Handler) -> Result<u8, IrqError> {
    let mut next = NEXT.lock();
    if *next >= COUNT {
        return Err(IrqError::NoVector);
    }
    let index = *next;
    *next += 1;
    SLOTS[index].handlers[0].call_once(|| handler);
    Ok(FIRST + index as u8)
}

/// Adds `handler` to allocated `vector` (a shared legacy line).
pub fn share(vector: u8, handler: &'static dyn Handler) -> Result<(), IrqError> {
    let next = NEXT.lock();
    let index = usize::from(vector.wrapping_sub(FIRST));
    if vector < FIRST || index >= *next {
        return Err(IrqError::BadVector(vector));
    }
    let free = SLOTS[index]
        .handlers
        .iter()
        .find(|h| h.get().is_none())
        .ok_or(IrqError::TooManyHandlers)?;
    free.call_once(|| handler);
    Ok(())
}

/// Runs the handlers of device vector `vector` and signals EOI; false (nothing done) if it is
/// not a device vector.
pub fn dispatch(vector: u8) -> bool {
    let Some(slot) = vector
        .checked_sub(FIRST)
        .and_then(|i| SLOTS.get(usize::from(i)))
    else {
        return false;
    };
    for h in slot.handlers.iter().map_while(|h| h.get()) {
        h.handle();
    }
    super::percpu::current()
        .device_interrupts
        .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    apic::eoi();
    true
}

/// Legacy lines routed so far: GSI and its vector.
static ROUTED: spin::Mutex<Vec<(u32, u8)>> = spin::Mutex::new(Vec::new());

/// Connects `handler` to PCI INTx arriving at ISA IRQ `isa_irq` (the function's Interrupt Line
/// as firmware set it): through the I/O APIC, with the MADT's overrides, to this CPU. A line
/// already routed (shared by several functions) keeps its vector and gains the handler.
pub fn connect_legacy(
    isa_irq: u8,
    handler: &'static dyn Handler,
) -> Result<(u8, Line), &'static str> {
    if isa_irq >= 16 {
        return Err("interrupt line is not an ISA IRQ (0..15)");
    }
    let line = ioapic::isa_line(isa_irq);
    let mut routed = ROUTED.lock();
    if let Some(&(_, vector)) = routed.iter().find(|(gsi, _)| *gsi == line.gsi) {
        share(vector, handler).map_err(|_| "shared interrupt line has too many handlers")?;
        return Ok((vector, line));
    }
    let vector = allocate(handler).map_err(|_| "no free interrupt vector")?;
    ioapic::route(line, vector, apic::id() as u8)?;
    routed.push((line.gsi, vector));
    Ok((vector, line))
}
