// SPDX-License-Identifier: MIT OR Apache-2.0
//! Dirty-page harvest cost: the same pages written by the same guest (`guest_dirty`) on tracked
//! guest RAM of two sizes 16× apart, harvested by walking the nested page table (whose cost
//! should follow the RAM size) and, where the vCPU keeps one, by draining the VT-x
//! page-modification log and clearing the logged pages' dirty flags (whose cost should follow
//! the number of dirty pages). Each figure is the least of several rounds, in host TSC ticks.

use alloc::string::String;
use alloc::vec::Vec;

use crate::arch::x86_64::instr;
use crate::kprintln;
use crate::selftest::dirty::{DirtyGuest, FIRST_FREE, Round, expect_written, frames};
use crate::vmm::backend::{self, Backend, WithBackend};
use crate::vmm::guest_mem::PAGE_SIZE;
use crate::vmm::vcpu::Vcpu;

/// Pages written per round.
const PAGES: u64 = 256;
/// Guest RAM sizes compared.
const SMALL: u64 = 8 << 20;
const BIG: u64 = 128 << 20;
/// Rounds timed per figure.
const ROUNDS: usize = 5;

/// Runs the benchmark under this CPU's back end and prints its figures.
pub fn run() -> Result<(), String> {
    backend::dispatch(Harvest)?
}

struct Harvest;

impl WithBackend for Harvest {
    type Output = Result<(), String>;
    fn run<B: Backend>(self) -> Self::Output {
        measure::<B>()
    }
}

/// Least ticks of a table-walk harvest and (if there is a log) of a log drain, and the pages
/// each found besides the guest's own page tables.
struct Figures {
    walk: u64,
    walked: usize,
    log: Option<(u64, usize)>,
}

fn write_all<B: Backend>(g: &mut DirtyGuest<B>, gpas: &[u64]) -> Result<(), String> {
    match g.write(gpas)? {
        Round::Done => Ok(()),
        fault => Err(alloc::format!("bench round ended {fault:?}")),
    }
}

fn at_size<B: Backend>(ram: u64, gpas: &[u64]) -> Result<Figures, String> {
    let written = frames(gpas);
    let mut g = DirtyGuest::<B>::new(ram)?;
    let pml = g.vcpu.enable_dirty_log();
    // Warm up: everything the first round touches, harvested both ways.
    write_all(&mut g, gpas)?;
    g.harvest();
    g.drain();
    let mut figures = Figures {
        walk: u64::MAX,
        walked: 0,
        log: None,
    };
    for _ in 0..ROUNDS {
        write_all(&mut g, gpas)?;
        let mut found = Vec::with_capacity(written.len() + 8);
        let t0 = instr::rdtsc();
        g.mem.harvest_dirty(&mut found);
        figures.walk = figures.walk.min(instr::rdtsc() - t0);
        expect_written(&found, &written).map_err(|e| alloc::format!("table walk: {e}"))?;
        figures.walked = found.len() - count_own(&found);
        // The log holds the same pages; empty it for the timed drain below.
        g.drain();
        if !pml {
            continue;
        }
        write_all(&mut g, gpas)?;
        let mut logged = Vec::with_capacity(written.len() + 8);
        let t0 = instr::rdtsc();
        if !g.vcpu.drain_dirty_log(&mut logged) {
            return Err("the dirty log went away".into());
        }
        g.mem.clear_dirty(&logged);
        let ticks = instr::rdtsc() - t0;
        logged.sort_unstable();
        expect_written(&logged, &written).map_err(|e| alloc::format!("PML: {e}"))?;
        let own = count_own(&logged);
        let best = figures.log.map_or(u64::MAX, |(t, _)| t);
        figures.log = Some((best.min(ticks), logged.len() - own));
    }
    Ok(figures)
}

fn count_own(gfns: &[u64]) -> usize {
    gfns.iter()
        .filter(|g| crate::selftest::dirty::PAGE_TABLE_GFNS.contains(g))
        .count()
}

fn ratio(big: u64, small: u64) -> String {
    let hundredths = big * 100 / small.max(1);
    alloc::format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

fn measure<B: Backend>() -> Result<(), String> {
    // The same pages at both sizes: every fourth page from FIRST_FREE (inside the small RAM).
    let gpas: Vec<u64> = (0..PAGES).map(|i| FIRST_FREE + i * 4 * PAGE_SIZE).collect();
    let small = at_size::<B>(SMALL, &gpas)?;
    let big = at_size::<B>(BIG, &gpas)?;
    let sizes = alloc::format!("RAM {} MiB vs {} MiB", SMALL >> 20, BIG >> 20);
    kprintln!(
        "bench harvest {} walk (host TSC ticks per harvest, {sizes}): written {PAGES} small {} \
         big {} ratio {} found-small {} found-big {}",
        B::NAME,
        small.walk,
        big.walk,
        ratio(big.walk, small.walk),
        small.walked,
        big.walked
    );
    match (small.log, big.log) {
        (Some((s, s_found)), Some((b, b_found))) => kprintln!(
            "bench harvest {} pml (host TSC ticks per log drain and clear, {sizes}): written \
             {PAGES} small {s} big {b} ratio {} found-small {s_found} found-big {b_found}",
            B::NAME,
            ratio(b, s)
        ),
        _ => kprintln!(
            "bench harvest {} pml: no hardware dirty log (table walks only)",
            B::NAME
        ),
    }
    Ok(())
}
