// SPDX-License-Identifier: MIT OR Apache-2.0
//! Per-CPU data, reached through the GS base of each CPU.
//!
//! CPUs are numbered densely (`index` 0 = the bootstrap processor) in the order Castor starts
//! them; `apic_id` is the hardware identity. The array is static so that logging works before the
//! heap exists: the BSP points GS at entry 0 as its first action.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::{gdt::CpuTables, instr, msr};

/// Most CPUs Castor manages; more are reported and left parked.
pub const MAX_CPUS: usize = 64;

/// [`PerCpu::self_check`] before the CPU has checked itself.
pub const CHECK_PENDING: u32 = u32::MAX;
/// [`PerCpu::self_check`] when every check passed.
pub const CHECK_OK: u32 = 0;

/// State owned by one CPU. `index` must stay the first field: [`current_index`] reads it at
/// `gs:[0]`.
#[repr(C, align(64))]
pub struct PerCpu {
    index: AtomicU32,
    apic_id: AtomicU32,
    online: AtomicBool,
    /// LAPIC timer interrupts taken on this CPU.
    pub timer_ticks: AtomicU64,
    /// Device interrupts (those [`super::irq::dispatch`] hands to drivers) taken on this CPU.
    pub device_interrupts: AtomicU64,
    /// Result of the CPU's own start-up checks: [`CHECK_PENDING`], [`CHECK_OK`] or a bit set of
    /// failed checks (see `kmain::ap_self_check`).
    pub self_check: AtomicU32,
    /// Whether this CPU is in VMX root operation.
    pub vmx_on: AtomicBool,
    /// The VMCS this CPU's current-VMCS pointer holds (0: none), kept by `vmm::vmx::vmcs`: a
    /// VMPTRLD of the VMCS already current is skipped.
    pub current_vmcs: AtomicU64,
    /// Whether this CPU has SVM enabled (EFER.SVME and a host save area).
    pub svm_on: AtomicBool,
    /// This CPU's GDT and TSS, built once when the CPU comes up.
    pub tables: spin::Once<CpuTables>,
    /// The unmapped page right below an application processor's stack (0: none; the bootstrap
    /// processor's is the kernel image's, `super::stack`).
    pub stack_guard: AtomicU64,
}

impl PerCpu {
    const fn new() -> Self {
        Self {
            index: AtomicU32::new(0),
            apic_id: AtomicU32::new(u32::MAX),
            online: AtomicBool::new(false),
            timer_ticks: AtomicU64::new(0),
            device_interrupts: AtomicU64::new(0),
            self_check: AtomicU32::new(CHECK_PENDING),
            vmx_on: AtomicBool::new(false),
            current_vmcs: AtomicU64::new(0),
            svm_on: AtomicBool::new(false),
            tables: spin::Once::new(),
            stack_guard: AtomicU64::new(0),
        }
    }

    /// Dense CPU number (0 = bootstrap processor).
    pub fn index(&self) -> u32 {
        self.index.load(Ordering::Relaxed)
    }

    /// Local APIC id of this CPU.
    pub fn apic_id(&self) -> u32 {
        self.apic_id.load(Ordering::Relaxed)
    }

    /// Whether this CPU has finished coming up.
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// Marks this CPU as up and running.
    pub fn set_online(&self) {
        self.online.store(true, Ordering::Release);
    }
}

static CPUS: [PerCpu; MAX_CPUS] = [const { PerCpu::new() }; MAX_CPUS];

/// The per-CPU block of CPU `index`.
pub fn cpu(index: usize) -> Option<&'static PerCpu> {
    CPUS.get(index)
}

/// Claims slot `index` for the CPU with `apic_id` (called by the BSP before starting that CPU).
pub fn assign(index: usize, apic_id: u32) -> &'static PerCpu {
    let cpu = &CPUS[index];
    cpu.index.store(index as u32, Ordering::Relaxed);
    cpu.apic_id.store(apic_id, Ordering::Relaxed);
    cpu
}

/// Points this CPU's GS base at its per-CPU block. Must run first on every CPU.
pub fn install(index: usize) {
    let block = &CPUS[index] as *const PerCpu as u64;
    // SAFETY: IA32_GS_BASE exists on every x86-64 CPU; the block is static and outlives the CPU.
    unsafe { instr::wrmsr(msr::IA32_GS_BASE, block) };
}

/// Dense index of the CPU executing this code.
pub fn current_index() -> u32 {
    let index: u32;
    // SAFETY: GS points at this CPU's static PerCpu block (see `install`, run first on every CPU;
    // before that the BSP's GS base is the boot-time 0 and `index` reads the identity-mapped
    // real-mode IVT, which is harmless), and `index` is its first field.
    unsafe {
        core::arch::asm!("mov {0:e}, gs:[0]", out(reg) index, options(readonly, nostack, preserves_flags))
    };
    index
}

/// Per-CPU block of the CPU executing this code.
pub fn current() -> &'static PerCpu {
    &CPUS[current_index() as usize % MAX_CPUS]
}

/// Per-CPU blocks of every CPU that is online.
pub fn online() -> impl Iterator<Item = &'static PerCpu> {
    CPUS.iter().filter(|c| c.is_online())
}
