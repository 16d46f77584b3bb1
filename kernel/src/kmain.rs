// SPDX-License-Identifier: MIT OR Apache-2.0
//! Bring-up order of the bootstrap processor, and what each application processor does once it
//! is up.

use core::sync::atomic::Ordering;

use log::LevelFilter;

use crate::arch::x86_64::machine::{self, ExitStatus};
use crate::arch::x86_64::percpu::{self, CHECK_OK, PerCpu};
use crate::arch::x86_64::time::Reference;
use crate::arch::x86_64::{
    apic, cpu::CpuFeatures, gdt, instr, pic, smp, stack, time, trap, vector, worker,
};
use crate::bootinfo::{BootInfo, Protocol};
use crate::config::{Config, ConfigError, Mode};
use crate::drivers::{net, pci};
use crate::mm::pagetable::audit_wx;
use crate::mm::{self, kmap};
use crate::vmm::{svm, vmx};
use crate::{console, kprintln, platform, selftest};

/// Castor's version, from Cargo.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn fatal(what: &str, why: impl core::fmt::Display) -> ! {
    kprintln!("fatal: {what}: {why}");
    kprintln!("refusing to continue");
    machine::exit(ExitStatus::Failure)
}

/// The bootstrap processor's path from the boot trampoline to a running hypervisor.
pub fn bsp_main(magic: u32, info: u64) -> ! {
    stack::paint();
    percpu::assign(0, 0);
    percpu::install(0);
    console::init();
    trap::init();
    vector::enable();
    console::init_logger(LevelFilter::Info);
    kprintln!("Castor v{VERSION} booting");

    // SAFETY: `info` is what the loader passed in EBX; the boot map identity-maps the first 4 GiB
    // and nothing has been allocated yet.
    let boot = unsafe { BootInfo::parse(magic, info) }.unwrap_or_else(|e| fatal("boot", e));
    let line = boot.cmdline().unwrap_or("");
    let config = boot
        .cmdline()
        .map_err(|_| ConfigError::NotUtf8)
        .and_then(Config::parse)
        .unwrap_or_else(|e| {
            kprintln!("config error: {e}");
            kprintln!("command line was: '{line}'");
            fatal("configuration", "fix the kernel command line")
        });
    let mode = config.mode();
    log::set_max_level(config.log);
    let protocol = match boot.protocol {
        Protocol::Multiboot1 => "Multiboot 1",
        Protocol::Multiboot2 => "Multiboot 2",
    };
    log::info!("booted via {protocol}; command line '{line}'");
    for (i, m) in boot.modules().iter().enumerate() {
        log::info!(
            "module {i}: {:#x}..{:#x} '{}'",
            m.region.start,
            m.region.end,
            m.cmdline()
        );
    }
    if boot.dropped > 0 {
        log::warn!(
            "{} boot-information entries did not fit and were ignored",
            boot.dropped
        );
    }

    let features = CpuFeatures::detect();
    if let Some(missing) = features.missing_requirement() {
        fatal(
            "CPU",
            format_args!("this CPU lacks {missing}, which Castor requires"),
        );
    }
    log::info!(
        "cpu: {} vmx={} svm={} x2apic={} 1g-pages={} invariant-tsc={} under-hypervisor={}",
        features.vendor(),
        features.vmx,
        features.svm,
        features.x2apic,
        features.huge_pages,
        features.invariant_tsc,
        features.hypervisor
    );

    let stats = mm::init(&boot).unwrap_or_else(|e| fatal("memory", format_args!("{e:?}")));
    log::info!(
        "memory: {} MiB usable, {} frames free, heap {} MiB at {:#x}",
        stats.usable >> 20,
        stats.free_frames,
        stats.heap.len() >> 20,
        stats.heap.start
    );
    let root = kmap::build_and_activate(&boot)
        .unwrap_or_else(|e| fatal("page tables", format_args!("{e:?}")));
    log::info!("kernel page tables active at {root:#x} (text R-X, rodata R--, data RW-, rest NX)");
    let bsp = percpu::current();
    gdt::init(bsp);
    trap::init();

    let platform = platform::discover(boot.rsdp).unwrap_or_else(|e| {
        log::warn!("no usable ACPI MADT ({e:?}): running on the bootstrap processor only");
        platform::fallback()
    });
    apic::set_base(platform.lapic_base);
    pic::disable();
    apic::enable();
    let bsp_apic_id = apic::id();
    percpu::assign(0, bsp_apic_id);
    let (version, lvts) = apic::version();
    log::info!(
        "acpi: {} cpus listed, local apic at {:#x} (version {version:#x}, {} LVTs), 8259 {}",
        platform.cpus.len(),
        platform.lapic_base,
        lvts + 1,
        if platform.legacy_pics {
            "present (masked)"
        } else {
            "absent"
        }
    );
    for io in &platform.ioapics {
        io.mask_all();
        log::info!(
            "ioapic id {} at {:#x}: gsi {}.., {} pins, all masked",
            io.id(),
            io.base,
            io.gsi_base,
            io.pins()
        );
    }
    let cal = time::calibrate(platform.pm_timer.map_or(Reference::Pit, Reference::PmTimer));
    log::info!(
        "timers: TSC {}.{:03} MHz, LAPIC timer {} kHz (divide by {}), calibrated against {} \
         (within {} ppm, {} windows)",
        cal.tsc_hz / 1_000_000,
        cal.tsc_hz / 1000 % 1000,
        cal.lapic_timer_hz / 1000,
        apic::TIMER_DIVISOR,
        cal.reference.name(),
        cal.slack_ppm,
        cal.windows
    );

    // After calibration: drivers bound their waits with TSC deadlines.
    pci_devices(&platform);
    enable_virtualization(bsp, true);
    report_online(bsp);
    let max_cpus = config.max_cpus.map_or(usize::MAX, |n| n as usize);
    let report = smp::start_aps(&platform.cpus, bsp_apic_id, max_cpus);
    let online = percpu::online().count();
    log::info!(
        "smp: {online} cpus online, {} failed to start, {} left parked",
        report.failed.len(),
        report.skipped.len()
    );

    match mode {
        Mode::LinkTest => machine::exit(crate::link::linktest::run(&config)),
        Mode::Pair => machine::exit(crate::pair::run(&boot, &config)),
        Mode::Guest => machine::exit(crate::vmm::launch::run_module_guest(&boot, &config)),
        Mode::Bench(which) => machine::exit(crate::bench::run(which)),
        Mode::SelfTest => {
            let ctx = selftest::Context {
                config: &config,
                boot: &boot,
                platform: &platform,
                smp: &report,
            };
            machine::exit(selftest::run(&ctx))
        }
        Mode::Idle => {
            kprintln!("Castor ready");
            idle()
        }
    }
}

/// Turns on this CPU's hardware virtualization — VT-x (VMX root operation) or AMD-V (EFER.SVME
/// with a host save area) — if it has one; the BSP reports what it offers, or why there is none.
fn enable_virtualization(cpu: &PerCpu, report: bool) {
    let vmx = match vmx::enable_on_this_cpu() {
        Ok((caps, _)) => {
            cpu.vmx_on.store(true, Ordering::Release);
            if report {
                log::info!(
                    "vt-x: VMCS revision {:#x}, EPT {} (A/D {}), unrestricted guest {}, VPID {}, \
                     PML {}, preemption timer {}",
                    caps.revision,
                    caps.has_ept(),
                    caps.has_ept_ad(),
                    caps.has_unrestricted_guest(),
                    caps.has_vpid(),
                    caps.has_pml(),
                    caps.has_preemption_timer()
                );
            }
            return;
        }
        Err(e) => e,
    };
    match svm::enable_on_this_cpu() {
        Ok((caps, _)) => {
            cpu.svm_on.store(true, Ordering::Release);
            if report {
                log::info!(
                    "amd-v: SVM revision {}, {} ASIDs, nested paging {}, next-RIP {}, flush by ASID {}, \
                     decode assists {}, clean bits {}",
                    caps.revision,
                    caps.asids,
                    caps.has_npt(),
                    caps.has_nrips(),
                    caps.has_flush_by_asid(),
                    caps.has_decode_assists(),
                    caps.has_clean_bits()
                );
            }
        }
        Err(svm) if report => log::warn!("no hardware virtualization: {vmx}; {svm}"),
        Err(svm) => log::error!("virtualization could not be enabled on this CPU: {vmx}; {svm}"),
    }
}

/// Enumerates PCI (through ECAM when ACPI describes it, else the legacy ports), lists the
/// functions found and brings up the NICs among them (kept in `drivers::net::NICS`).
fn pci_devices(platform: &platform::Platform) {
    let ports = pci::ports::PortConfig::new();
    let (cfg, how): (&dyn pci::ConfigSpace, _) = match &platform.ecam {
        Some(ecam) => (ecam, "ECAM"),
        None => (&ports, "ports 0xCF8/0xCFC"),
    };
    let devices = pci::enumerate(cfg);
    let nics = net::probe_all(&devices, cfg);
    *net::NICS.lock() = nics;
    log::info!(
        "pci: {} functions (configuration through {how})",
        devices.len()
    );
    for d in &devices {
        let bar = d.bars.iter().find(|b| **b != pci::Bar::None);
        log::info!(
            "pci {} {:04x}:{:04x} {} irq {} {}",
            d.address,
            d.vendor,
            d.device,
            d.class_name(),
            d.irq_line,
            match bar {
                Some(pci::Bar::Memory { base, size, .. }) =>
                    alloc::format!("mem {base:#x}+{size:#x}"),
                Some(pci::Bar::Io { port, size }) => alloc::format!("io {port:#x}+{size:#x}"),
                _ => alloc::string::String::new(),
            }
        );
    }
}

fn report_online(cpu: &PerCpu) {
    kprintln!("cpu {} online (apic id {})", cpu.index(), cpu.apic_id());
    cpu.set_online();
}

/// Checks an AP makes about itself once up: its own GDT and TSS are loaded, the kernel page
/// tables are active with no writable+executable mapping, and its APIC id is the one it was
/// started as. Returns a bit set of failures (0 = all good).
fn ap_self_check(cpu: &PerCpu) -> u32 {
    let mut failed = 0;
    if let Some(t) = cpu.tables.get() {
        if instr::str() != t.tss_sel.0 {
            failed |= 1;
        }
        if instr::sgdt().0 != t.gdt.entries().as_ptr() as u64 {
            failed |= 2;
        }
    } else {
        failed |= 3;
    }
    if instr::read_cr3() & !0xFFF != kmap::root() {
        failed |= 4;
    }
    if audit_wx(&kmap::current()).violations != 0 {
        failed |= 8;
    }
    if apic::id() != cpu.apic_id() {
        failed |= 16;
    }
    failed
}

/// Where each application processor goes once its descriptor tables, page tables and local
/// APIC are set up (see `smp::ap_entry`).
pub fn ap_main(cpu: &'static PerCpu) -> ! {
    vector::enable();
    let check = ap_self_check(cpu);
    cpu.self_check.store(check, Ordering::Release);
    if check != CHECK_OK {
        log::error!("start-up self check failed: {check:#x}");
    }
    if percpu::cpu(0)
        .is_some_and(|bsp| bsp.vmx_on.load(Ordering::Acquire) || bsp.svm_on.load(Ordering::Acquire))
    {
        enable_virtualization(cpu, false);
    }
    report_online(cpu);
    worker::serve(cpu.index() as usize)
}

/// Waits for interrupts forever.
pub fn idle() -> ! {
    loop {
        // SAFETY: the IDT is loaded on this CPU (trap::init ran during bring-up).
        unsafe { instr::sti_hlt() };
    }
}
