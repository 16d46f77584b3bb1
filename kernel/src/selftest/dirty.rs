// SPDX-License-Identifier: MIT OR Apache-2.0
//! Dirty-page tracking and write protection with a real guest (`guest_dirty` in `vmm/guests/dirty.S`) on
//! tracked guest RAM: the pages it writes are exactly the pages harvested from the nested page
//! table (plus its own page-table pages, which the nested walk counts as written whenever the
//! processor walks them: EPT with accessed/dirty flags, SDM Vol. 3C, 29.3.5; QEMU's and Bochs'
//! NPT do the same), a harvest right after a harvest is empty, the VT-x page-modification
//! log (when the CPU has one) reports the same pages as the table walk, also past a full log,
//! and a write to a write-protected page stops the guest with the exact address and succeeds
//! once the page is unprotected.
//!
//! [`DirtyGuest`] (loading and driving the guest) is shared with the harvest benchmark.

use alloc::string::String;
use alloc::vec::Vec;

use super::{Outcome, Verdict};
use crate::ensure;
use crate::mm::pagetable::Format;
use crate::vmm::backend::{self, Backend, WithBackend};
use crate::vmm::guest_mem::{GuestMemory, PAGE_SIZE};
use crate::vmm::vcpu::{Exit, GuestStart, NoInterrupts, Vcpu};

unsafe extern "C" {
    static guest_dirty_start: u8;
    static guest_dirty_end: u8;
}

/// The guest's page tables: PML4, PDPT and PD at these frames.
const PML4: u64 = 0x1000;
/// Frame numbers of the guest's own page tables, the only pages it touches besides the ones
/// it is told to write (its code and address list are only read; it has no stack).
pub(crate) const PAGE_TABLE_GFNS: [u64; 3] = [1, 2, 3];
/// Where the list of addresses to write lives (only read by the guest).
const LIST: u64 = 0x8_0000;
/// Most addresses in one round (the list's 16 KiB).
const LIST_MAX: usize = 2048;
/// The guest's code.
const CODE: u64 = 0x10_0000;
/// Lowest address a round may write (above everything the guest itself uses).
pub(crate) const FIRST_FREE: u64 = 0x20_0000;
/// Exits one round may take (host interrupts, preemption-timer expiries, the hypercall).
const MAX_EXITS: u32 = 10_000;

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Round {
    /// The guest wrote everything and made its hypercall.
    Done,
    /// A nested page fault stopped it (e.g. a write to a write-protected page).
    Fault {
        /// Guest-physical address.
        gpa: u64,
        /// It was a write.
        write: bool,
    },
}

/// `guest_dirty` on tracked RAM under back end `B`, with its vCPU.
pub(crate) struct DirtyGuest<B: Backend> {
    /// Its RAM.
    pub mem: GuestMemory<B::Format>,
    /// Its only vCPU.
    pub vcpu: B::Vcpu,
}

/// Identity-maps the first GiB with 2 MiB pages, every entry with its accessed (and, in the
/// PD, dirty) flag already set so the processor never needs to write the tables to set them
/// (SDM Vol. 3A, 5.8; APM Vol. 2, 5.4.2).
fn build_paging<F: Format>(mem: &mut GuestMemory<F>) -> Result<(), String> {
    const TABLE: u64 = 0b11 | (1 << 5);
    const LARGE: u64 = 0b11 | (1 << 5) | (1 << 6) | (1 << 7);
    let ok = mem.write(PML4, &((PML4 + 0x1000) | TABLE).to_le_bytes())
        && mem.write(PML4 + 0x1000, &((PML4 + 0x2000) | TABLE).to_le_bytes());
    let pd = mem
        .slice_mut(PML4 + 0x2000, PAGE_SIZE as usize)
        .ok_or("no room for page tables")?;
    for (i, entry) in pd.chunks_exact_mut(8).enumerate() {
        entry.copy_from_slice(&(((i as u64) << 21) | LARGE).to_le_bytes());
    }
    ensure!(ok, "no room for page tables");
    Ok(())
}

impl<B: Backend> DirtyGuest<B> {
    /// The guest on `ram` bytes of tracked RAM, ready for its first round.
    pub fn new(ram: u64) -> Result<Self, String> {
        let mut mem = GuestMemory::<B::Format>::new_tracked(ram)
            .map_err(|e| alloc::format!("guest RAM: {e:?}"))?;
        // SAFETY: both symbols delimit the guest's code in the kernel's .rodata (`vmm/guests/dirty.S`),
        // immutable for the whole run.
        let code = unsafe {
            let start = &raw const guest_dirty_start;
            let end = &raw const guest_dirty_end;
            core::slice::from_raw_parts(start, end as usize - start as usize)
        };
        build_paging(&mut mem)?;
        ensure!(mem.write(CODE, code), "guest code does not fit");
        let start = GuestStart::Long64 {
            rip: CODE,
            cr3: PML4,
        };
        let vcpu = B::new_vcpu(0, &mem, start).map_err(|e| alloc::format!("vcpu: {e}"))?;
        Ok(Self { mem, vcpu })
    }

    /// A round: the guest writes its own address at each of `gpas` (8-byte aligned, from
    /// [`FIRST_FREE`] to the end of RAM), then makes its hypercall.
    pub fn write(&mut self, gpas: &[u64]) -> Result<Round, String> {
        ensure!(
            gpas.len() <= LIST_MAX,
            "{} addresses in one round",
            gpas.len()
        );
        for (i, &gpa) in gpas.iter().enumerate() {
            ensure!(
                gpa >= FIRST_FREE && gpa + 8 <= self.mem.size() && gpa % 8 == 0,
                "{gpa:#x} is not a free guest address"
            );
            ensure!(
                self.mem.write(LIST + 8 * i as u64, &gpa.to_le_bytes()),
                "list does not fit"
            );
        }
        let regs = self.vcpu.regs();
        regs.rbx = LIST;
        regs.rcx = gpas.len() as u64;
        self.resume()
    }

    /// Runs the guest on (after a fault) until its hypercall or a nested page fault, first
    /// flushing its nested TLB if the memory asks for it.
    pub fn resume(&mut self) -> Result<Round, String> {
        self.mem.sync_tlb(&mut self.vcpu);
        for _ in 0..MAX_EXITS {
            match self.vcpu.run(&mut NoInterrupts, &mut self.mem) {
                Exit::Hypercall => return Ok(Round::Done),
                Exit::NestedPageFault { gpa, write, .. } => return Ok(Round::Fault { gpa, write }),
                Exit::HostInterrupt | Exit::Preempted => {}
                other => {
                    let mut dump = String::new();
                    let _ = self.vcpu.dump(&mut dump);
                    return Err(alloc::format!("dirty guest stopped: {other:?}: {dump}"));
                }
            }
        }
        Err(alloc::format!(
            "dirty guest took {MAX_EXITS} exits in one round"
        ))
    }

    /// The table walk: every page written since the last harvest, ascending; flags cleared.
    pub fn harvest(&mut self) -> Vec<u64> {
        let mut gfns = Vec::new();
        self.mem.harvest_dirty(&mut gfns);
        gfns
    }

    /// The hardware log, if the vCPU keeps one: the pages logged since the last drain, in log
    /// order, their dirty flags cleared so their next writes are logged again.
    pub fn drain(&mut self) -> Option<Vec<u64>> {
        let mut gfns = Vec::new();
        if !self.vcpu.drain_dirty_log(&mut gfns) {
            return None;
        }
        self.mem.clear_dirty(&gfns);
        Some(gfns)
    }
}

/// The guest frames of `gpas`, ascending, each once.
pub(crate) fn frames(gpas: &[u64]) -> Vec<u64> {
    let mut gfns: Vec<u64> = gpas.iter().map(|gpa| gpa / PAGE_SIZE).collect();
    gfns.sort_unstable();
    gfns.dedup();
    gfns
}

/// Splits harvested frames (ascending) into those the guest was told to write and its own
/// page-table pages; an error names any other page, or a written page that is missing.
pub(crate) fn expect_written(harvested: &[u64], written: &[u64]) -> Result<usize, String> {
    let own: Vec<u64> = harvested
        .iter()
        .copied()
        .filter(|g| PAGE_TABLE_GFNS.contains(g))
        .collect();
    let rest: Vec<u64> = harvested
        .iter()
        .copied()
        .filter(|g| !PAGE_TABLE_GFNS.contains(g))
        .collect();
    if rest != written {
        let extra: Vec<&u64> = rest.iter().filter(|g| !written.contains(g)).collect();
        let missing: Vec<&u64> = written.iter().filter(|g| !rest.contains(g)).collect();
        return Err(alloc::format!(
            "harvested {} pages for {} written: not written {extra:x?}, missed {missing:x?}",
            rest.len(),
            written.len()
        ));
    }
    Ok(own.len())
}

struct Dirty;

impl WithBackend for Dirty {
    type Output = Verdict;
    fn run<B: Backend>(self) -> Verdict {
        check::<B>()
    }
}

/// Dirty-page harvests and write protection under this CPU's back end.
pub fn tracking() -> Outcome {
    match backend::dispatch(Dirty) {
        Ok(verdict) => Outcome::from(verdict),
        Err(why) => Outcome::Skipped(alloc::format!("no hardware virtualization: {why}")),
    }
}

const RAM: u64 = 8 << 20;

/// One address in each of `count` pages starting at frame `first` every `stride` frames, at
/// offsets that vary within the page.
fn spread(first: u64, stride: u64, count: u64) -> Vec<u64> {
    (0..count)
        .map(|i| (first + i * stride) * PAGE_SIZE + (i * 8) % PAGE_SIZE)
        .collect()
}

fn run_round<B: Backend>(g: &mut DirtyGuest<B>, gpas: &[u64]) -> Result<(), String> {
    match g.write(gpas)? {
        Round::Done => {}
        fault => return Err(alloc::format!("round of {} writes: {fault:?}", gpas.len())),
    }
    for &gpa in gpas {
        let value = g.mem.read_u64(gpa);
        ensure!(
            value == Some(gpa),
            "{gpa:#x} holds {value:x?} after the round"
        );
    }
    Ok(())
}

/// A round's harvest: the table walk, equal to the log where there is one. Returns the
/// harvested frames.
fn harvest_both<B: Backend>(g: &mut DirtyGuest<B>, pml: bool) -> Result<Vec<u64>, String> {
    let walked = g.harvest();
    if let Some(mut logged) = g.drain() {
        logged.sort_unstable();
        ensure!(
            logged == walked,
            "PML logged {logged:x?}, the table walk found {walked:x?}"
        );
    } else {
        ensure!(!pml, "the dirty log went away");
    }
    Ok(walked)
}

fn check<B: Backend>() -> Verdict {
    let mut g = DirtyGuest::<B>::new(RAM)?;
    let pml = g.vcpu.enable_dirty_log();
    ensure!(
        harvest_both(&mut g, pml)?.is_empty(),
        "pages dirty before the guest ran (the loader's writes are the host's)"
    );

    // Round A: 100 scattered pages and the last page of RAM.
    let mut a = spread(FIRST_FREE / PAGE_SIZE, 3, 100);
    a.push(RAM - 8);
    run_round(&mut g, &a)?;
    let own_a = expect_written(&harvest_both(&mut g, pml)?, &frames(&a))
        .map_err(|e| alloc::format!("round A: {e}"))?;
    let again = harvest_both(&mut g, pml)?;
    ensure!(again.is_empty(), "second harvest found {again:x?}");

    // A round without writes: at most the guest's own page tables.
    run_round(&mut g, &[])?;
    let own_idle = expect_written(&harvest_both(&mut g, pml)?, &[])
        .map_err(|e| alloc::format!("idle round: {e}"))?;

    // Round B: 600 consecutive pages, some written in round A too; more than the 512 entries
    // of a PML log, so under VT-x with PML the log fills and is emptied during the round.
    let b = spread(FIRST_FREE / PAGE_SIZE + 0x100, 1, 600);
    run_round(&mut g, &b)?;
    let mut logged_b = 0;
    let harvested = match g.drain() {
        Some(mut logged) => {
            logged_b = logged.len();
            logged.sort_unstable();
            ensure!(
                logged.windows(2).all(|w| w[0] != w[1]),
                "a page logged twice in one round"
            );
            let rest = g.harvest();
            ensure!(
                rest.is_empty(),
                "the table walk after the log found {rest:x?}"
            );
            logged
        }
        None => g.harvest(),
    };
    let own_b =
        expect_written(&harvested, &frames(&b)).map_err(|e| alloc::format!("round B: {e}"))?;

    let protection = check_protection(&mut g, pml)?;
    Ok(alloc::format!(
        "{}: {} + {} pages written and harvested exactly, plus {own_a}/{own_idle}/{own_b} of the \
         guest's page-table pages; second harvest empty; {}; {protection}",
        B::NAME,
        a.len(),
        b.len(),
        if pml {
            alloc::format!("PML log equal to the table walk, {logged_b} pages through a full log")
        } else {
            String::from("no hardware dirty log: table walks")
        }
    ))
}

/// Write protection keeps the dirty flag; a write to a protected page stops the guest with its
/// exact address and without taking effect; after `unprotect` the same write succeeds.
fn check_protection<B: Backend>(g: &mut DirtyGuest<B>, pml: bool) -> Verdict {
    let page = FIRST_FREE / PAGE_SIZE + 0x180;
    let base = page * PAGE_SIZE;
    run_round(g, &[base])?;
    ensure!(
        g.mem.write_protect(page),
        "write_protect({page:#x}) refused"
    );
    ensure!(!g.mem.write_protect(page), "page {page:#x} protected twice");
    ensure!(
        g.mem.is_write_protected(page),
        "page {page:#x} not protected"
    );
    ensure!(g.mem.flush_pending(), "protection asked for no TLB flush");
    let harvested = harvest_both(g, pml)?;
    expect_written(&harvested, &[page]).map_err(|e| alloc::format!("protected page: {e}"))?;

    let target = base + 0x18;
    let fault = g.write(&[target])?;
    ensure!(
        fault
            == Round::Fault {
                gpa: target,
                write: true
            },
        "write to protected {target:#x} ended {fault:?}"
    );
    ensure!(
        g.mem.read_u64(target) == Some(0),
        "the faulting write took effect"
    );
    ensure!(g.mem.unprotect(page), "unprotect({page:#x}) refused");
    ensure!(!g.mem.unprotect(page), "page {page:#x} unprotected twice");
    ensure!(
        !g.mem.is_write_protected(page),
        "page {page:#x} still protected"
    );
    let end = g.resume()?;
    ensure!(
        end == Round::Done,
        "after unprotect the guest ended {end:?}"
    );
    ensure!(
        g.mem.read_u64(target) == Some(target),
        "the retried write did not take effect"
    );
    expect_written(&harvest_both(g, pml)?, &[page])
        .map_err(|e| alloc::format!("after unprotect: {e}"))?;
    let outside = RAM / PAGE_SIZE;
    ensure!(
        !g.mem.write_protect(outside) && !g.mem.unprotect(outside),
        "frame {outside:#x} past RAM accepted"
    );
    Ok(alloc::format!(
        "write to protected page stopped at {target:#x} (write) and succeeded after unprotect"
    ))
}
