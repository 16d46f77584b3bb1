// SPDX-License-Identifier: MIT OR Apache-2.0
//! Local APIC in xAPIC (MMIO) mode (Intel SDM Vol. 3A, chapter 11).

use core::sync::atomic::{AtomicU64, Ordering};

use super::{instr, msr, trap};

const REG_ID: u64 = 0x20;
const REG_VERSION: u64 = 0x30;
const REG_TPR: u64 = 0x80;
const REG_EOI: u64 = 0xB0;
const REG_SVR: u64 = 0xF0;
const REG_ESR: u64 = 0x280;
const REG_ICR_LOW: u64 = 0x300;
const REG_ICR_HIGH: u64 = 0x310;
const REG_LVT_TIMER: u64 = 0x320;
const REG_LVT_ERROR: u64 = 0x370;
const REG_TIMER_INITIAL: u64 = 0x380;
const REG_TIMER_CURRENT: u64 = 0x390;
const REG_TIMER_DIVIDE: u64 = 0x3E0;

const SVR_ENABLE: u32 = 1 << 8;
const LVT_MASKED: u32 = 1 << 16;
const LVT_TIMER_PERIODIC: u32 = 1 << 17;
const ICR_DELIVERY_PENDING: u32 = 1 << 12;
/// Timer divide configuration value for divide-by-16 (SDM Vol. 3A, Figure 11-10).
const DIVIDE_BY_16: u32 = 0b0011;
/// The divisor matching [`DIVIDE_BY_16`].
pub const TIMER_DIVISOR: u64 = 16;

/// Physical (= virtual, identity mapped) base of the local APIC registers.
static BASE: AtomicU64 = AtomicU64::new(0xFEE0_0000);

/// Records where the local APIC registers are (from the MADT, or IA32_APIC_BASE).
pub fn set_base(base: u64) {
    BASE.store(base, Ordering::Relaxed);
}

/// Base address from IA32_APIC_BASE (bits 12..51).
pub fn base_from_msr() -> u64 {
    // SAFETY: IA32_APIC_BASE exists on every CPU with a local APIC (checked at boot via CPUID).
    unsafe { instr::rdmsr(msr::IA32_APIC_BASE) & 0x000F_FFFF_FFFF_F000 }
}

fn read(reg: u64) -> u32 {
    // SAFETY: BASE is the local APIC's register page, mapped uncached by the kernel page tables;
    // `reg` is one of the architectural register offsets above.
    unsafe { instr::mmio_read32(BASE.load(Ordering::Relaxed) + reg) }
}

fn write(reg: u64, value: u32) {
    // SAFETY: as in `read`; each CPU only writes its own local APIC.
    unsafe { instr::mmio_write32(BASE.load(Ordering::Relaxed) + reg, value) }
}

/// Enables this CPU's local APIC: global enable in IA32_APIC_BASE, software enable with the
/// spurious vector, all interrupt priorities accepted, timer and error LVTs masked.
pub fn enable() {
    // SAFETY: setting the global-enable bit (11) of IA32_APIC_BASE keeps the base unchanged.
    unsafe {
        let v = instr::rdmsr(msr::IA32_APIC_BASE);
        instr::wrmsr(msr::IA32_APIC_BASE, v | (1 << 11));
    }
    write(REG_SVR, SVR_ENABLE | u32::from(trap::VECTOR_SPURIOUS));
    write(REG_TPR, 0);
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_LVT_ERROR, LVT_MASKED);
    write(REG_ESR, 0);
}

/// This CPU's local APIC id (xAPIC: bits 24..31 of the ID register).
pub fn id() -> u32 {
    read(REG_ID) >> 24
}

/// Version register: (version, highest LVT index).
pub fn version() -> (u32, u32) {
    let v = read(REG_VERSION);
    (v & 0xFF, (v >> 16) & 0xFF)
}

/// Signals end of interrupt.
pub fn eoi() {
    write(REG_EOI, 0);
}

/// Starts the timer counting down from `initial` (divide by 16), masked, one-shot: for
/// calibration.
pub fn timer_start_oneshot_masked(initial: u32) {
    write(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(trap::VECTOR_TIMER));
    write(REG_TIMER_INITIAL, initial);
}

/// Current count of the timer.
pub fn timer_current() -> u32 {
    read(REG_TIMER_CURRENT)
}

/// Starts the periodic timer, interrupting every `count` timer ticks (divide by 16).
pub fn timer_start_periodic(count: u32) {
    write(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    write(
        REG_LVT_TIMER,
        LVT_TIMER_PERIODIC | u32::from(trap::VECTOR_TIMER),
    );
    write(REG_TIMER_INITIAL, count.max(1));
}

/// The host's tick while guests run: the periodic timer at 1 kHz of the calibrated rate
/// ([`super::time::lapic_timer_hz`]), so a guest exits at least every millisecond.
pub fn start_host_tick() {
    timer_start_periodic((super::time::lapic_timer_hz() / 1000) as u32);
}

/// Stops the timer.
pub fn timer_stop() {
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_TIMER_INITIAL, 0);
}

/// Sends a fixed interrupt with `vector` to the CPU with `apic_id` (physical destination,
/// edge, SDM Vol. 3A, 11.6.1), once the previous IPI has left (its delivery status is idle).
pub fn send_ipi(apic_id: u32, vector: u8) {
    for _ in 0..1_000_000 {
        if read(REG_ICR_LOW) & ICR_DELIVERY_PENDING == 0 {
            break;
        }
        instr::pause();
    }
    write(REG_ICR_HIGH, apic_id << 24);
    write(REG_ICR_LOW, 0x0000_4000 | u32::from(vector));
}

/// Kind of inter-processor interrupt used to start an AP (SDM Vol. 3A, 11.6.1).
#[derive(Clone, Copy)]
pub enum StartupIpi {
    /// INIT, level assert.
    Init,
    /// Start-up IPI with the 4 KiB page number of the real-mode entry point.
    Startup(u8),
}

/// Sends an INIT or SIPI to the CPU with `apic_id` and waits until the APIC has sent it.
/// Returns false if delivery stays pending (the target did not accept it).
pub fn send_startup_ipi(apic_id: u32, ipi: StartupIpi) -> bool {
    let low = match ipi {
        StartupIpi::Init => 0x0000_4500,
        StartupIpi::Startup(page) => 0x0000_4600 | u32::from(page),
    };
    write(REG_ICR_HIGH, apic_id << 24);
    write(REG_ICR_LOW, low);
    for _ in 0..1_000_000 {
        if read(REG_ICR_LOW) & ICR_DELIVERY_PENDING == 0 {
            return true;
        }
        instr::pause();
    }
    false
}
