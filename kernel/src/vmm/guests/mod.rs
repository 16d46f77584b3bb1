// SPDX-License-Identifier: MIT OR Apache-2.0
//! Built-in test guests (the `.S` files here, assembled as one piece: `common.S` lists them and
//! holds their shared constants and macros) and the loaders that place them in guest RAM.

use crate::mm::pagetable::Format;
use crate::vmm::guest_mem::GuestMemory;
use crate::vmm::vcpu::GuestStart;

core::arch::global_asm!(
    concat!(
        include_str!("common.S"),
        include_str!("long64.S"),
        include_str!("long64_modes.S"),
        include_str!("apic.S"),
        include_str!("long64_data.S"),
        include_str!("real.S"),
        include_str!("triple.S"),
        include_str!("bench.S"),
        include_str!("dirty.S"),
        include_str!("cpustate.S"),
    ),
    options(att_syntax)
);

unsafe extern "C" {
    static guest_long64_start: u8;
    static guest_long64_end: u8;
    static guest_real_start: u8;
    static guest_real_end: u8;
    static guest_triple_start: u8;
    static guest_triple_end: u8;
    static guest_bench_start: u8;
    static guest_bench_end: u8;
}

/// Where guests store results for the host (`bench.S`, `long64_modes.S`): the bench guest its CPUID, VMCALL and
/// OUT totals (TSC ticks) and round count; the hostile guest its four counts.
pub const RESULTS: u64 = 0x9_0000;

/// Result slots (8 bytes each, from [`RESULTS`]) the APIC guest fills (`apic.S`).
pub const APIC_SLOTS: usize = 20;

/// The two stack pages (guest frame numbers) on which the events guest delivers its INT $0x80
/// and its INT3 (`long64_modes.S`, `g64_events`).
pub const EVENT_STACKS: [u64; 2] = [0x94, 0x95];

fn bytes(start: *const u8, end: *const u8) -> &'static [u8] {
    // SAFETY: both symbols delimit one blob in the kernel's .rodata (these `.S` files), which is
    // immutable and lives for the whole run.
    unsafe { core::slice::from_raw_parts(start, end as usize - start as usize) }
}

/// A built-in guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// 64-bit checks of CPUID, hypercalls, port I/O and MSRs; exits 0x31.
    Long64,
    /// The same 64-bit guest testing the virtual PIC, PIT (ticks, HLT wake-ups) and RTC; exits
    /// 0x34 with its counts at [`RESULTS`].
    Timers,
    /// The same 64-bit guest in hostile mode: sweeps every port and MSR and the top of its RAM,
    /// stores counts at [`RESULTS`], then reads past the end of its RAM.
    Hostile,
    /// The same 64-bit guest delivering INT $0x80 and INT3 on the [`EVENT_STACKS`] pages, then
    /// writing and reading CR8; exits 0x35 (0x36: CR8 read back wrong) with its counts at
    /// [`RESULTS`].
    Events,
    /// The same 64-bit guest using the local APIC, the IOAPIC, the PM registers and the ACPI
    /// tables (`apic.S`); stores [`APIC_SLOTS`] results at [`RESULTS`] and powers off.
    Apic,
    /// Real-mode hello; exits 0x32.
    Real,
    /// Triple faults on purpose.
    TripleFault,
    /// Times exits from inside, then loops on VMCALL (see `bench.S`).
    Bench,
}

/// Where 64-bit guests are loaded.
const LOAD_64: u64 = 0x10_0000;
/// Where the real-mode guest is loaded (as a boot sector would be).
const LOAD_16: u64 = 0x7C00;
/// Guest page tables: PML4, PDPT, PD.
const PML4: u64 = 0x1000;

/// Why a guest could not be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoesNotFit;

/// Identity-maps the first GiB for a 64-bit guest with 2 MiB pages (guest page tables at
/// 0x1000-0x3FFF: PML4, PDPT, PD).
fn build_identity_paging<F: Format>(mem: &mut GuestMemory<F>) -> Result<(), DoesNotFit> {
    const PRESENT_WRITE: u64 = 0b11;
    const LARGE: u64 = 1 << 7;
    let ok = mem.write(PML4, &((PML4 + 0x1000) | PRESENT_WRITE).to_le_bytes())
        && mem.write(
            PML4 + 0x1000,
            &((PML4 + 0x2000) | PRESENT_WRITE).to_le_bytes(),
        );
    let pd = mem.slice_mut(PML4 + 0x2000, 4096).ok_or(DoesNotFit)?;
    for (i, entry) in pd.chunks_exact_mut(8).enumerate() {
        entry.copy_from_slice(&(((i as u64) << 21) | PRESENT_WRITE | LARGE).to_le_bytes());
    }
    if ok { Ok(()) } else { Err(DoesNotFit) }
}

impl Builtin {
    /// The guest's code.
    pub fn code(self) -> &'static [u8] {
        match self {
            Builtin::Long64
            | Builtin::Hostile
            | Builtin::Timers
            | Builtin::Events
            | Builtin::Apic => bytes(&raw const guest_long64_start, &raw const guest_long64_end),
            Builtin::Real => bytes(&raw const guest_real_start, &raw const guest_real_end),
            Builtin::Bench => bytes(&raw const guest_bench_start, &raw const guest_bench_end),
            Builtin::TripleFault => {
                bytes(&raw const guest_triple_start, &raw const guest_triple_end)
            }
        }
    }

    /// RDI at entry: the 64-bit guest's mode (0 checks, 1 hostile, 2 timers, 3 events, 4 APIC).
    pub fn initial_rdi(self) -> u64 {
        match self {
            Builtin::Hostile => 1,
            Builtin::Timers => 2,
            Builtin::Events => 3,
            Builtin::Apic => 4,
            _ => 0,
        }
    }

    /// Copies the guest into `mem` (with page tables for 64-bit guests) and says how to start it.
    pub fn load<F: Format>(self, mem: &mut GuestMemory<F>) -> Result<GuestStart, DoesNotFit> {
        match self {
            Builtin::Real => {
                if !mem.write(LOAD_16, self.code()) {
                    return Err(DoesNotFit);
                }
                Ok(GuestStart::Real {
                    segment: 0,
                    ip: LOAD_16 as u16,
                })
            }
            Builtin::Long64
            | Builtin::Hostile
            | Builtin::Timers
            | Builtin::Events
            | Builtin::Apic
            | Builtin::TripleFault
            | Builtin::Bench => {
                build_identity_paging(mem)?;
                if !mem.write(LOAD_64, self.code()) {
                    return Err(DoesNotFit);
                }
                Ok(GuestStart::Long64 {
                    rip: LOAD_64,
                    cr3: PML4,
                })
            }
        }
    }
}
