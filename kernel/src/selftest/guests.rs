// SPDX-License-Identifier: MIT OR Apache-2.0
//! Built-in guests run under this CPU's back end (VT-x with EPT, or AMD-V with NPT): a 64-bit
//! guest checking CPUID, hypercalls, port I/O, MSRs and control registers; a real-mode guest; a
//! guest that triple faults, after which the host must still be running (this test goes on to
//! report); a guest testing the virtual timers and interrupt controller; and a hostile guest.

use alloc::string::String;
use core::sync::atomic::Ordering;

use super::{Outcome, Verdict};
use crate::arch::x86_64::{apic, percpu, time};
use crate::ensure;
use crate::vmm::backend::{self, Backend, WithBackend};
use crate::vmm::guest_mem::GuestMemory;
use crate::vmm::guests::{Builtin, RESULTS};
use crate::vmm::run::{self, Guest, GuestEnd, RunReport};
use crate::vmm::vcpu::Vcpu;

const GUEST_RAM: u64 = 4 << 20;
const MAX_EXITS: u64 = 10_000;

/// Runs a built-in guest under `B` with at most `max_exits` exits (and, if given, a time slice
/// for the back end's preemption timer); returns the report and the four result slots the guest
/// may have stored at [`RESULTS`].
fn run_builtin<B: Backend>(
    which: Builtin,
    max_exits: u64,
    slice: Option<u32>,
) -> Result<(RunReport, [u64; 4]), String> {
    let mut mem =
        GuestMemory::<B::Format>::new(GUEST_RAM).map_err(|e| alloc::format!("guest RAM: {e:?}"))?;
    let start = which.load(&mut mem).map_err(|_| "guest does not fit")?;
    let mut vcpu = B::new_vcpu(0, &mem, start).map_err(|e| alloc::format!("vcpu: {e}"))?;
    vcpu.regs().rdi = which.initial_rdi();
    if let Some(ticks) = slice {
        vcpu.set_time_slice(ticks);
    }
    let mut guest = Guest::new(mem);
    let report = run::run(&mut vcpu, &mut guest, "[guest] ", max_exits);
    let results = [0, 1, 2, 3].map(|i| guest.mem.read_u64(RESULTS + 8 * i).unwrap_or(u64::MAX));
    Ok((report, results))
}

fn has(report: &RunReport, line: &str) -> bool {
    report.output.iter().any(|l| l == line)
}

/// Runs `work` under this CPU's back end; skipped (with the reason) without one.
fn under_backend(work: impl WithBackend<Output = Verdict>) -> Outcome {
    match backend::dispatch(work) {
        Ok(verdict) => Outcome::from(verdict),
        Err(why) => Outcome::Skipped(alloc::format!("no hardware virtualization: {why}")),
    }
}

struct Suite;

impl WithBackend for Suite {
    type Output = Verdict;
    fn run<B: Backend>(self) -> Verdict {
        check_all::<B>()
    }
}

/// The built-in guests end as designed.
pub fn builtin() -> Outcome {
    under_backend(Suite)
}

fn check_all<B: Backend>() -> Verdict {
    let (r, _) = run_builtin::<B>(Builtin::Long64, MAX_EXITS, None)?;
    ensure!(
        r.end == GuestEnd::Exited(0x31),
        "64-bit guest ended {:?}",
        r.end
    );
    for line in [
        "guest64: hello from a 64-bit guest",
        "guest64: written through CONSOLE_WRITE",
        "guest64: all checks passed",
    ] {
        ensure!(has(&r, line), "64-bit guest did not print '{line}'");
    }
    let exits64 = r.exits;
    let (r, _) = run_builtin::<B>(Builtin::Real, MAX_EXITS, None)?;
    ensure!(
        r.end == GuestEnd::Exited(0x32),
        "real-mode guest ended {:?}",
        r.end
    );
    ensure!(
        has(&r, "guest16: hello from real mode"),
        "real-mode guest output missing"
    );
    let timers = check_timers::<B>()?;
    let events = super::events::check::<B>()?;
    let apic = super::apic::check::<B>()?;
    Ok(alloc::format!(
        "{}: 64-bit guest exited 0x31 after {exits64} exits, real-mode guest 0x32; {timers}; \
         {events}; {apic}",
        B::NAME
    ))
}

struct Triple;

impl WithBackend for Triple {
    type Output = Verdict;
    fn run<B: Backend>(self) -> Verdict {
        let (r, _) = run_builtin::<B>(Builtin::TripleFault, MAX_EXITS, None)?;
        ensure!(
            r.end == GuestEnd::Shutdown,
            "triple-fault guest ended {:?}",
            r.end
        );
        ensure!(
            has(&r, "guest-triple: about to triple fault"),
            "triple-fault guest output missing"
        );
        Ok(alloc::format!(
            "{}: the triple fault stopped that guest only",
            B::NAME
        ))
    }
}

/// A guest that triple faults is stopped (shutdown) and the host goes on: this test reports.
pub fn triple_fault() -> Outcome {
    under_backend(Triple)
}

fn bcd(v: u64) -> i64 {
    ((v >> 4) * 10 + (v & 0xF)) as i64
}

/// The timer guest: IRQ0 from the PIT through the PIC counted over a 50 ms window measured
/// with PIT channel 2 (exactly once per tick: 50, ±1 for the phase), 20 HLTs each woken by one
/// tick, and the RTC showing the host's date. Meanwhile the host's own LAPIC timer interrupts
/// the guest (external-interrupt exits) and, where the back end has one, a short preemption
/// timer slice stops the guest's busy loop.
fn check_timers<B: Backend>() -> Verdict {
    let host_ticks = &percpu::current().timer_ticks;
    let before = host_ticks.load(Ordering::Relaxed);
    apic::start_host_tick();
    let run = run_builtin::<B>(Builtin::Timers, 200_000, Some(2_000));
    apic::timer_stop();
    let (r, [window, wakeups, hlt_ticks, date]) = run?;
    let handled = host_ticks.load(Ordering::Relaxed) - before;
    ensure!(
        r.host_interrupts > 0 && handled >= r.host_interrupts,
        "{} host-interrupt exits, {handled} host timer ticks handled",
        r.host_interrupts
    );
    ensure!(
        !B::HAS_PREEMPTION_TIMER || r.preemptions > 0,
        "the preemption timer never stopped the guest's busy loop"
    );
    ensure!(
        r.end == GuestEnd::Exited(0x34),
        "timer guest ended {:?}",
        r.end
    );
    ensure!(has(&r, "timers: done"), "timer guest output missing");
    ensure!(
        (49..=51).contains(&window),
        "{window} ticks of a 1 kHz PIT in a 50 ms window"
    );
    ensure!(
        wakeups == 20 && hlt_ticks == 20,
        "20 HLTs were woken by {hlt_ticks} ticks"
    );
    let guest = (
        bcd(date >> 24) * 100 + bcd((date >> 16) & 0xFF),
        bcd((date >> 8) & 0xFF),
        bcd(date & 0xFF),
    );
    let today = crate::calendar::civil_from_days((time::unix_now() / 86_400) as i64);
    ensure!(
        guest == today,
        "guest RTC date {guest:?}, host date {today:?}"
    );
    Ok(alloc::format!(
        "timers: {window} PIT ticks in 50 ms, 20 HLTs woken by 20 ticks, RTC date {}-{:02}-{:02}, \
         {} host interrupts and {} preemption-timer exits taken",
        guest.0,
        guest.1,
        guest.2,
        r.host_interrupts,
        r.preemptions
    ))
}

/// MSRs in the swept ranges that Castor lets a guest read: 10 emulated (TSC, APIC_BASE,
/// FEATURE_CONTROL, BIOS_SIGN_ID, MTRRCAP, MISC_ENABLE, PAT, MTRR_DEF_TYPE, TSC_DEADLINE, AMD's
/// C001_0055) and 12 that the hardware switches or the back end keeps per guest
/// (SYSENTER_CS/ESP/EIP, EFER, FS_BASE, GS_BASE, STAR, LSTAR, CSTAR, FMASK, KERNEL_GS_BASE,
/// TSC_AUX).
const READABLE_MSRS: u64 = 22;
/// Of those, the ones that accept their own value back (all but MTRRCAP and C001_0055; a TSC
/// write sets the guest's TSC offset).
const WRITABLE_MSRS: u64 = 20;

/// Bytes the hostile guest must not find in its RAM: the host fills frames with them before the
/// guest's RAM is allocated, so stale host data would show.
const POISON: u8 = 0xA5;

struct Hostile;

impl WithBackend for Hostile {
    type Output = Verdict;
    fn run<B: Backend>(self) -> Verdict {
        check_hostile::<B>()
    }
}

/// A hostile guest sweeps every port, every MSR in the architectural, hypervisor and AMD ranges
/// and the top of its RAM, then reads past its RAM: it sees only what Castor emulates, no stale
/// host data, and is stopped at the first access outside its RAM while the host runs on.
pub fn hostile() -> Outcome {
    under_backend(Hostile)
}

fn check_hostile<B: Backend>() -> Verdict {
    let malformed = check_malformed_entry::<B>()?;
    // Leave poisoned frames behind for the guest's RAM to be carved from.
    let frames = GUEST_RAM / 4096;
    if let Some(poisoned) = crate::mm::alloc_frames_aligned(frames, 2 << 20) {
        // SAFETY: frames just allocated, identity mapped, owned here until freed below.
        unsafe { core::ptr::write_bytes(poisoned as *mut u8, POISON, GUEST_RAM as usize) };
        crate::mm::free_frames(poisoned, frames).map_err(|e| alloc::format!("{e:?}"))?;
    }
    let (r, [reads, writes, blind_writes, nonzero]) =
        run_builtin::<B>(Builtin::Hostile, 400_000, None)?;
    ensure!(
        has(&r, "hostile: sweeping every port, MSR and the top of RAM"),
        "hostile guest did not start"
    );
    ensure!(
        r.end
            == GuestEnd::BadAccess {
                gpa: GUEST_RAM,
                write: false
            },
        "hostile guest ended {:?}, expected to be stopped at its read of {GUEST_RAM:#x}",
        r.end
    );
    ensure!(
        reads == READABLE_MSRS,
        "{reads} MSRs readable, expected {READABLE_MSRS}"
    );
    ensure!(
        writes == WRITABLE_MSRS,
        "{writes} MSRs took their value back, expected {WRITABLE_MSRS}"
    );
    ensure!(
        blind_writes == 0,
        "{blind_writes} unreadable MSRs accepted writes"
    );
    ensure!(
        nonzero == 0,
        "{nonzero} non-zero qwords of stale data in fresh guest RAM"
    );
    Ok(alloc::format!(
        "{}: {} exits: 65536 ports, {reads} readable MSRs, no stale data, stopped at {GUEST_RAM:#x}; {malformed}",
        B::NAME,
        r.exits
    ))
}

/// A nested page table entry the hardware must refuse ([`Backend::malformed_leaf`]) under the
/// top half of the hostile guest's RAM: its first access there is reported as an unhandled exit
/// ([`Backend::MALFORMED_EXIT`]), stopping that guest only.
fn check_malformed_entry<B: Backend>() -> Verdict {
    let mut mem =
        GuestMemory::<B::Format>::new(GUEST_RAM).map_err(|e| alloc::format!("guest RAM: {e:?}"))?;
    let start = Builtin::Hostile
        .load(&mut mem)
        .map_err(|_| "guest does not fit")?;
    let half = GUEST_RAM / 2;
    let host = mem
        .table()
        .translate(half)
        .ok_or("guest RAM not mapped")?
        .phys;
    ensure!(
        mem.table().set_raw_leaf(half, 2, B::malformed_leaf(host)),
        "no 2 MiB leaf at {half:#x}"
    );
    let mut vcpu = B::new_vcpu(0, &mem, start).map_err(|e| alloc::format!("vcpu: {e}"))?;
    vcpu.regs().rdi = Builtin::Hostile.initial_rdi();
    let mut guest = Guest::new(mem);
    let r = run::run(&mut vcpu, &mut guest, "[guest] ", 400_000);
    ensure!(
        r.end
            == GuestEnd::Unhandled {
                code: B::MALFORMED_EXIT,
                info: half
            },
        "guest ended {:?}, expected a malformed-entry exit at {half:#x}",
        r.end
    );
    Ok("a malformed nested page table entry stopped its guest".into())
}
