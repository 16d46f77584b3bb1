// SPDX-License-Identifier: MIT OR Apache-2.0
//! Starting the application processors with INIT-SIPI-SIPI (Intel SDM Vol. 3A, 9.4.4.1 "Typical
//! BSP Initialization Sequence") through the real-mode trampoline in boot/ap_trampoline.S.

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::apic::{self, StartupIpi};
use super::{gdt, msr, percpu, time, trap};
use crate::mm::{self, kmap};
use crate::platform::CpuEntry;

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
    static ap_trampoline_params: u8;
    static boot_pml4: u8;
}

/// Physical page the trampoline is copied to: below 1 MiB, 4 KiB aligned (SIPI vector 0x08).
pub const TRAMPOLINE_PHYS: u64 = 0x8000;
const AP_STACK_FRAMES: u64 = 16;
/// Bytes of an application processor's stack.
pub const AP_STACK_BYTES: u64 = AP_STACK_FRAMES * 4096;

/// The trampoline's parameter block (layout fixed by ap_trampoline.S).
#[repr(C)]
struct Params {
    boot_cr3: u64,
    efer_bits: u64,
    stack_top: u64,
    entry: u64,
    cpu_index: u64,
}

/// Outcome of AP start-up.
#[derive(Debug, Default)]
pub struct StartReport {
    /// CPU indices that came online (the BSP is index 0 and not listed).
    pub started: Vec<u32>,
    /// APIC ids that did not answer.
    pub failed: Vec<u32>,
    /// APIC ids left parked because of the `cpus=` limit or [`percpu::MAX_CPUS`].
    pub skipped: Vec<u32>,
}

/// Rust entry of an application processor, reached from the trampoline in long mode on the boot
/// page tables with the stack given in the parameter block.
extern "C" fn ap_entry(index: u64) -> ! {
    percpu::install(index as usize);
    kmap::activate();
    let cpu = percpu::current();
    gdt::init(cpu);
    trap::init();
    apic::enable();
    crate::kmain::ap_main(cpu)
}

fn params() -> *mut Params {
    let offset = (&raw const ap_trampoline_params as u64) - (&raw const ap_trampoline_start as u64);
    (TRAMPOLINE_PHYS + offset) as *mut Params
}

fn install_trampoline() {
    let start = &raw const ap_trampoline_start;
    let len = (&raw const ap_trampoline_end as usize) - (start as usize);
    // SAFETY: the trampoline is < 4 KiB of bytes in .rodata; TRAMPOLINE_PHYS is a low-memory page
    // the frame allocator never hands out (it keeps the first MiB), identity mapped read-write.
    unsafe { core::ptr::copy_nonoverlapping(start, TRAMPOLINE_PHYS as *mut u8, len) };
}

/// Starts every enabled CPU in `cpus` other than the BSP, up to `max_cpus` in total, one at a
/// time, waiting for each to report in.
pub fn start_aps(cpus: &[CpuEntry], bsp_apic_id: u32, max_cpus: usize) -> StartReport {
    let mut report = StartReport::default();
    install_trampoline();
    let mut next_index = 1;
    for entry in cpus
        .iter()
        .filter(|c| c.enabled && c.apic_id != bsp_apic_id)
    {
        if next_index >= max_cpus.min(percpu::MAX_CPUS) {
            report.skipped.push(entry.apic_id);
            continue;
        }
        // The stack, and the page below it unmapped: running off the stack faults there.
        let Some(guard) = mm::alloc_frames_below(AP_STACK_FRAMES + 1, 1 << 32) else {
            log::error!(
                "no memory for the stack of the CPU with APIC id {}",
                entry.apic_id
            );
            report.failed.push(entry.apic_id);
            continue;
        };
        let stack = guard + 4096;
        let cpu = percpu::assign(next_index, entry.apic_id);
        match kmap::unmap_guard(guard) {
            Ok(()) => cpu.stack_guard.store(guard, Ordering::Release),
            Err(e) => log::warn!(
                "the stack of the CPU with APIC id {} has no guard page: {e:?}",
                entry.apic_id
            ),
        }
        let p = Params {
            boot_cr3: &raw const boot_pml4 as u64,
            efer_bits: msr::EFER_LME | msr::EFER_NXE,
            // The trampoline jumps (not calls): leave the slot a return address would take.
            stack_top: stack + AP_STACK_BYTES - 8,
            entry: ap_entry as *const () as u64,
            cpu_index: next_index as u64,
        };
        // SAFETY: `params()` points into the trampoline page copied above; no AP is running the
        // trampoline now (each AP is waited for before the next is started).
        unsafe { params().write_volatile(p) };
        if boot_one(entry.apic_id, cpu) {
            report.started.push(next_index as u32);
            next_index += 1;
        } else {
            log::error!("CPU with APIC id {} did not come up", entry.apic_id);
            report.failed.push(entry.apic_id);
            // Its slot and stack stay reserved: the CPU might still wake up later.
            next_index += 1;
        }
    }
    report
}

/// INIT, 10 ms, SIPI, 200 µs, SIPI again if needed; then up to 500 ms for the CPU to report.
fn boot_one(apic_id: u32, cpu: &percpu::PerCpu) -> bool {
    let vector = (TRAMPOLINE_PHYS >> 12) as u8;
    if !apic::send_startup_ipi(apic_id, StartupIpi::Init) {
        return false;
    }
    time::delay_us(10_000);
    for _ in 0..2 {
        apic::send_startup_ipi(apic_id, StartupIpi::Startup(vector));
        time::delay_us(200);
        if cpu.is_online() {
            return true;
        }
    }
    for _ in 0..500 {
        if cpu.is_online() {
            return true;
        }
        time::delay_us(1000);
    }
    false
}
