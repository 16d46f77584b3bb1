// SPDX-License-Identifier: MIT OR Apache-2.0
//! Work for the application processors. Once up, an AP waits in HLT for a job; [`start`] hands
//! one to an idle AP and wakes it with a fixed inter-processor interrupt on [`VECTOR_WAKE`]
//! (Intel SDM Vol. 3A, 11.6.1). The AP runs the job to its end, then waits again. A job is a
//! plain function and one word of argument: what it works on must outlive it, and the caller
//! learns it ended from [`is_running`].

use core::sync::atomic::{AtomicBool, Ordering};

use super::percpu::{self, MAX_CPUS};
use super::{apic, instr};

/// Vector of the wake-up IPI (in the system range, above the device vectors).
pub const VECTOR_WAKE: u8 = 0xF0;

/// A job: the function and its argument.
type Job = (fn(usize), usize);

struct Slot {
    /// The job handed over and not yet taken.
    job: spin::Mutex<Option<Job>>,
    /// From [`start`] until the job returned.
    running: AtomicBool,
}

static SLOTS: [Slot; MAX_CPUS] = [const {
    Slot {
        job: spin::Mutex::new(None),
        running: AtomicBool::new(false),
    }
}; MAX_CPUS];

/// Why a job could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// No such CPU online, or it is the bootstrap processor (which never waits for jobs).
    NotAnAp,
    /// It runs a job already.
    Busy,
}

/// The application processor with index `cpu`, if it is online (the BSP never takes jobs).
fn ap(cpu: usize) -> Option<&'static percpu::PerCpu> {
    percpu::cpu(cpu).filter(|c| cpu != 0 && c.is_online())
}

/// Hands `job(arg)` to the AP with index `cpu` and wakes it.
///
/// # Errors
/// [`StartError`]: nothing was handed over.
pub fn start(cpu: usize, job: fn(usize), arg: usize) -> Result<(), StartError> {
    let target = ap(cpu).ok_or(StartError::NotAnAp)?;
    let slot = &SLOTS[cpu];
    if slot
        .running
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Err(StartError::Busy);
    }
    *slot.job.lock() = Some((job, arg));
    apic::send_ipi(target.apic_id(), VECTOR_WAKE);
    Ok(())
}

/// Wakes the AP `cpu` from HLT (its job may wait there for work).
pub fn wake(cpu: usize) {
    if let Some(target) = ap(cpu) {
        apic::send_ipi(target.apic_id(), VECTOR_WAKE);
    }
}

/// Whether the AP `cpu` has a job that has not returned yet.
pub fn is_running(cpu: usize) -> bool {
    SLOTS
        .get(cpu)
        .is_some_and(|s| s.running.load(Ordering::Acquire))
}

/// The first AP that is online and has no job, if any.
pub fn idle_ap() -> Option<usize> {
    percpu::online()
        .map(|c| c.index() as usize)
        .find(|&i| i != 0 && !is_running(i))
}

/// An AP's life once it is up: runs the jobs it is handed, one at a time, and waits in HLT in
/// between.
pub fn serve(cpu: usize) -> ! {
    let slot = &SLOTS[cpu];
    loop {
        // Checked with interrupts off, then STI;HLT: a wake-up IPI that comes after the check
        // is taken in HLT (STI's interrupt shadow covers the HLT), never lost before it.
        instr::cli();
        let job = slot.job.lock().take();
        match job {
            Some((run, arg)) => {
                // SAFETY: this CPU's IDT and local APIC are set up (it came online).
                unsafe { instr::sti() };
                run(arg);
                slot.running.store(false, Ordering::Release);
            }
            // SAFETY: as above.
            None => unsafe { instr::sti_hlt() },
        }
    }
}
