// SPDX-License-Identifier: MIT OR Apache-2.0
//! Every CPU the firmware lists (up to `cpus=`) came up and passed its own start-up checks,
//! and each AP runs the jobs it is handed.

use core::sync::atomic::{AtomicU32, Ordering};

use super::{Context, Verdict};
use crate::arch::x86_64::percpu::{self, CHECK_OK};
use crate::arch::x86_64::time;
use crate::arch::x86_64::worker::{self, StartError};
use crate::ensure;

/// All expected CPUs online, with distinct APIC ids from the MADT, each checked OK.
pub fn all_cpus_up(ctx: &Context<'_>) -> Verdict {
    let listed = ctx.platform.cpus.iter().filter(|c| c.enabled).count();
    let limit = ctx.config.max_cpus.map_or(usize::MAX, |n| n as usize);
    let expected = listed.min(limit).min(percpu::MAX_CPUS);
    ensure!(
        ctx.smp.failed.is_empty(),
        "CPUs with APIC ids {:?} did not start",
        ctx.smp.failed
    );
    let online: alloc::vec::Vec<_> = percpu::online().collect();
    ensure!(
        online.len() == expected,
        "{} CPUs online, expected {expected}",
        online.len()
    );
    for (i, cpu) in online.iter().enumerate() {
        ensure!(
            cpu.index() as usize == i,
            "CPU indices not dense: {} at {i}",
            cpu.index()
        );
        ensure!(
            ctx.platform.cpus.iter().any(|c| c.apic_id == cpu.apic_id()),
            "cpu {i} has APIC id {} not listed in the MADT",
            cpu.apic_id()
        );
        ensure!(
            online[..i].iter().all(|o| o.apic_id() != cpu.apic_id()),
            "APIC id {} online twice",
            cpu.apic_id()
        );
        if i > 0 {
            let check = cpu.self_check.load(Ordering::Acquire);
            ensure!(
                check == CHECK_OK,
                "cpu {i} failed its start-up checks ({check:#x})"
            );
        }
    }
    Ok(alloc::format!(
        "{} of {listed} listed CPUs online, each with its own GDT/TSS, W^X tables",
        online.len()
    ))
}

/// What each AP's job wrote: its CPU index + 1 (0: not run).
static RAN_ON: [AtomicU32; percpu::MAX_CPUS] = [const { AtomicU32::new(0) }; percpu::MAX_CPUS];

fn record_cpu(slot: usize) {
    RAN_ON[slot].store(percpu::current_index() + 1, Ordering::Release);
}

/// Every AP runs a job handed to it ([`worker::start`]) on itself, returns to waiting, and
/// refuses a second job only while it runs the first.
pub fn jobs_run_on_each_ap() -> Verdict {
    let aps: alloc::vec::Vec<usize> = percpu::online()
        .map(|c| c.index() as usize)
        .filter(|&i| i != 0)
        .collect();
    ensure!(
        worker::start(0, record_cpu, 0) == Err(StartError::NotAnAp),
        "the bootstrap processor took a job"
    );
    for round in 0..2 {
        for &cpu in &aps {
            RAN_ON[cpu].store(0, Ordering::Release);
            ensure!(
                worker::start(cpu, record_cpu, cpu).is_ok(),
                "cpu {cpu} refused a job in round {round}"
            );
        }
        let deadline = time::now_ns() + 2_000_000_000;
        while aps.iter().any(|&c| worker::is_running(c)) && time::now_ns() < deadline {
            core::hint::spin_loop();
        }
        for &cpu in &aps {
            let ran = RAN_ON[cpu].load(Ordering::Acquire);
            ensure!(
                ran == cpu as u32 + 1,
                "round {round}: the job for cpu {cpu} ran on {}",
                match ran {
                    0 => alloc::string::String::from("none (or not within 2 s)"),
                    n => alloc::format!("cpu {}", n - 1),
                }
            );
        }
    }
    Ok(alloc::format!(
        "{} APs each ran 2 jobs on themselves",
        aps.len()
    ))
}
