// SPDX-License-Identifier: MIT OR Apache-2.0
//! Every CPU the firmware lists (up to `cpus=`) came up and passed its own start-up checks.

use core::sync::atomic::Ordering;

use super::{Context, Verdict};
use crate::arch::x86_64::percpu::{self, CHECK_OK};
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
