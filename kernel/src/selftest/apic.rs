// SPDX-License-Identifier: MIT OR Apache-2.0
//! The guest platform's local APIC, IOAPIC, ACPI PM registers and tables, with the 64-bit
//! built-in guest in APIC mode (`g64_apic` in `vmm/guests/apic.S`).
//!
//! The guest maps the APIC pages itself and reaches them through MMIO (nested page faults
//! emulated by `decode::mmio`, MOV and XCHG forms): it reads the LAPIC ID and version, routes
//! the PIT through IOAPIC pin 2 with the 8259A masked, runs the LAPIC timer periodic and
//! one-shot, holds a self-IPI with CR8 and with the TPR register, sends itself an IPI, reads
//! the PM timer around a PIT-timed delay, finds the RSDP and powers off through PM1a_CNT. Every
//! interrupt handler EOIs to the LAPIC, so a broken EOI stops the periodic sources after one
//! tick.

use super::Verdict;
use crate::arch::x86_64::apic;
use crate::ensure;
use crate::vmm::backend::Backend;
use crate::vmm::devices::lapic::regs::VERSION_VALUE;
use crate::vmm::guest_mem::GuestMemory;
use crate::vmm::guests::{APIC_SLOTS, Builtin, RESULTS};
use crate::vmm::run::{self, Guest, GuestEnd};
use crate::vmm::{acpi, vcpu::Vcpu};

const GUEST_RAM: u64 = 4 << 20;
const MAX_EXITS: u64 = 400_000;
/// PM timer ticks in the guest's 50 ms delay at 3.579545 MHz: 178977.
const PM_TICKS_50MS: u64 = 3_579_545 / 20;

/// Runs the APIC guest under `B` and checks what it stored.
pub fn check<B: Backend>() -> Verdict {
    let mut mem =
        GuestMemory::<B::Format>::new(GUEST_RAM).map_err(|e| alloc::format!("guest RAM: {e:?}"))?;
    let start = Builtin::Apic
        .load(&mut mem)
        .map_err(|_| "APIC guest does not fit")?;
    let mut vcpu = B::new_vcpu(0, &mem, start).map_err(|e| alloc::format!("vcpu: {e}"))?;
    vcpu.regs().rdi = Builtin::Apic.initial_rdi();
    let mut guest = Guest::new(mem);
    // The host's timer runs as under `launch::run_to_end`: QEMU's icount slices end at its
    // deadlines, which is when QEMU repeated an injected interrupt (slots 17, 18).
    apic::start_host_tick();
    let r = run::run(&mut vcpu, &mut guest, "[guest] ", MAX_EXITS);
    apic::timer_stop();
    let s: [u64; APIC_SLOTS] = core::array::from_fn(|i| {
        guest
            .mem
            .read_u64(RESULTS + 8 * i as u64)
            .unwrap_or(u64::MAX)
    });
    ensure!(
        r.output.iter().any(|l| l == "apic: powering off"),
        "APIC guest did not reach its power-off (ended {:?}, results {s:x?})",
        r.end
    );
    ensure!(
        r.end == GuestEnd::Exited(0),
        "APIC guest ended {:?}, not powered off through PM1a_CNT",
        r.end
    );
    ensure!(s[0] == 0, "LAPIC ID register {:#x}, expected 0", s[0]);
    ensure!(
        s[1] == u64::from(VERSION_VALUE) && (s[1] >> 16) & 0xFF == 6,
        "LAPIC version {:#x}: expected {VERSION_VALUE:#x} (7 LVT entries)",
        s[1]
    );
    ensure!(
        s[2] == 0x30,
        "IOAPIC redirection entry 2 read back {:#x}, expected 0x30",
        s[2]
    );
    ensure!(
        (40..=60).contains(&s[3]),
        "{} PIT ticks through the IOAPIC in 50 ms at 1 kHz",
        s[3]
    );
    ensure!(
        (40..=60).contains(&s[4]),
        "{} periodic LAPIC timer ticks in 50 ms at 1 kHz",
        s[4]
    );
    ensure!(
        s[5] == 1,
        "{} one-shot LAPIC timer interrupts, expected exactly 1",
        s[5]
    );
    ensure!(
        s[6] == 0 && s[7] == 1,
        "CR8 6 did not hold vector 0x50: {} deliveries, IRR bit {}",
        s[6],
        s[7]
    );
    // Lowering CR8 should let the held vector in at once (SDM Vol. 3A, 11.8.3.1); the AMD-V
    // back end requests no virtual interrupt for a vector the TPR holds, so with V_TPR written
    // without an exit it arrives at the next exit instead. (A V_IRQ window at the held
    // vector's priority would end the guest's run at the CR8 write, but QEMU 7.2 aborts then:
    // `tcg_handle_interrupt` asserts the I/O thread lock its CR8 path does not hold.) Pinned: delivered once by then;
    // reported: whether it came without an exit.
    ensure!(
        s[16] == 1 && s[8] <= 1,
        "vector 0x50 delivered {} times after CR8 went back to 0 ({} before the next exit)",
        s[16],
        s[8]
    );
    let at_once = if s[8] == 1 {
        "at once"
    } else {
        "at the next exit"
    };
    ensure!(
        s[9] == 1 && s[10] == 2,
        "TPR register: vector 0x50 delivered {} times while TPR 0x60 held it, {} after",
        s[9].wrapping_sub(1),
        s[10].wrapping_sub(1)
    );
    ensure!(s[11] == 1, "self-IPI delivered {} times", s[11]);
    let pm = s[13].wrapping_sub(s[12]) & 0xFFFF_FFFF;
    ensure!(
        (PM_TICKS_50MS * 9 / 10..=PM_TICKS_50MS * 3 / 2).contains(&pm),
        "PM timer advanced {pm} ({:#x} to {:#x}) in 50 ms, expected about {PM_TICKS_50MS}",
        s[12],
        s[13]
    );
    ensure!(
        s[14] == acpi::DEFAULT_BASE,
        "RSDP found at {:#x}, expected {:#x}",
        s[14],
        acpi::DEFAULT_BASE
    );
    ensure!(s[15] == 0, "{} spurious interrupts", s[15]);
    // QEMU's SVM delivers an interrupt injected through EVENTINJ a second time, with IF clear,
    // when its CPU loop stops inside the handler: 8 runs, 4 nested, before AMD-V guests got
    // their interrupts through V_IRQ (`vmm::svm::virq`).
    ensure!(
        s[17] == 4 && s[18] == 0,
        "self-IPI with a long handler: {} runs for 4 sent, {} of them inside another run",
        s[17],
        s[18]
    );
    Ok(alloc::format!(
        "APIC guest: {} PIT ticks via the IOAPIC and {} LAPIC timer ticks in 50 ms, one-shot \
         once, TPR held and released (CR8 lowered: delivered {at_once}), self-IPI once, 4 long \
         interrupt handlers once each, PM timer +{pm} in 50 ms, RSDP at {:#x}, powered off \
         after {} exits",
        s[3],
        s[4],
        s[14],
        r.exits
    ))
}
