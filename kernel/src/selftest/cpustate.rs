// SPDX-License-Identifier: MIT OR Apache-2.0
//! vCPU state capture and restore with a real guest (`guest_cpustate` in `vmm/guests/cpustate.S`), under
//! this CPU's back end: the guest is stopped after each of its exits in turn (32-bit without
//! paging, under PAE paging, in long mode), its state saved, encoded and decoded, its vCPU
//! dropped, and a fresh vCPU of the same guest memory loaded with the decoded state; every
//! such split run must print exactly what an uninterrupted run prints and end the same way,
//! and saving right after loading must give back the identical state. Then states edited on
//! purpose: an injected external interrupt and an injected #GP with an error code reach the
//! guest's handlers, a pending interrupt window and STI blocking change nothing, a flipped
//! register bit changes the output (so the comparison can fail), and states the vCPU cannot
//! enter are refused. Then what the guest never touches itself: XMM registers, MXCSR,
//! STAR/LSTAR/CSTAR/FMASK/KERNEL_GS_BASE, TSC_AUX, DR0-DR3, DR6, CR8 and a TSC far from the host's,
//! loaded into a fresh vCPU, must still be there after the guest ran on (so they were really
//! loaded into, and saved from, the hardware), and a state saved halted must stay halted.

use alloc::string::String;
use alloc::vec::Vec;

use super::{Outcome, Verdict};
use crate::ensure;
use crate::vmm::backend::{self, Backend, WithBackend};
use crate::vmm::cpu_state::{CpuState, EFER_LMA, Event, EventKind, RFLAGS_IF};
use crate::vmm::guest_mem::GuestMemory;
use crate::vmm::run::{self, Guest, GuestEnd, RunReport};
use crate::vmm::vcpu::{GuestStart, Vcpu};

unsafe extern "C" {
    static guest_cpustate_start: u8;
    static guest_cpustate_end: u8;
}

const RAM: u64 = 2 << 20;
/// Where the guest is loaded and starts (flat 32-bit protected mode, paging off).
const LOAD: u64 = 0x10_0000;
const START: GuestStart = GuestStart::Protected32 { eip: LOAD as u32 };
const MAX_EXITS: u64 = 10_000;
/// The guest's exit status.
const DONE: GuestEnd = GuestEnd::Exited(0x35);
const PREFIX: &str = "[guest] ";
/// The guest's last line when no event was injected.
const QUIET: &str = "cpustate: ext 00000000 gp 00000000 code 00000000";
/// What the guest stores and reads back, to show the saved state holds it.
const CR2_PROBE: u64 = 0x20_0000;
const FS_BASE_64: u64 = 0x6000;
const SYSENTER_EIP: u64 = 0x12_3456;
const PAT: u64 = 0x0007_0406_0007_0106;
const MTRR_DEF_TYPE: u64 = 0x806;

fn code() -> &'static [u8] {
    let (start, end) = (
        &raw const guest_cpustate_start,
        &raw const guest_cpustate_end,
    );
    // SAFETY: both symbols delimit one blob in the kernel's .rodata (`vmm/guests/cpustate.S`), immutable for
    // the whole run.
    unsafe { core::slice::from_raw_parts(start, end as usize - start as usize) }
}

/// A fresh guest: zeroed RAM with the code loaded, standard devices.
fn fresh<B: Backend>() -> Result<Guest<B::Format>, String> {
    let mut mem =
        GuestMemory::<B::Format>::new(RAM).map_err(|e| alloc::format!("guest RAM: {e:?}"))?;
    ensure!(mem.write(LOAD, code()), "guest does not fit");
    Ok(Guest::new(mem))
}

fn vcpu<B: Backend>(guest: &Guest<B::Format>) -> Result<B::Vcpu, String> {
    B::new_vcpu(0, &guest.mem, START).map_err(|e| alloc::format!("vcpu: {e}"))
}

/// What the guest printed, as one string. A run stopped in the middle of a line flushes the
/// part printed so far as a line of its own, so split runs have different line breaks but
/// the same characters.
fn text(reports: &[&RunReport]) -> String {
    reports
        .iter()
        .flat_map(|r| r.output.iter())
        .map(String::as_str)
        .collect()
}

/// A run stopped after `k` exits and resumed on a fresh vCPU from its saved state, after
/// `edit`.
struct Split {
    first: RunReport,
    /// The state saved at the stop (before `edit`).
    saved: CpuState,
    second: RunReport,
}

/// Runs the guest for `k` exits, saves, encodes and decodes the state, drops the vCPU, loads
/// the decoded state (after `edit`) into a new vCPU, checks that saving again gives it back,
/// and runs the guest to its end. `None` if the guest ended within `k` exits.
fn split<B: Backend>(k: u64, edit: impl FnOnce(&mut CpuState)) -> Result<Option<Split>, String> {
    let mut guest = fresh::<B>()?;
    let mut first_vcpu = vcpu::<B>(&guest)?;
    let first = run::run(&mut first_vcpu, &mut guest, PREFIX, k);
    if first.end != GuestEnd::TooManyExits {
        return Ok(None);
    }
    let saved = first_vcpu.save_state();
    drop(first_vcpu);
    let bytes = saved.to_bytes();
    let mut state = CpuState::from_bytes(&bytes)
        .map_err(|e| alloc::format!("state saved after {k} exits does not decode: {e}"))?;
    ensure!(state == saved, "state after {k} exits changed in encoding");
    edit(&mut state);
    let mut second_vcpu = vcpu::<B>(&guest)?;
    second_vcpu
        .restore_state(&state)
        .map_err(|e| alloc::format!("state saved after {k} exits does not load: {e}"))?;
    let mut again = second_vcpu.save_state();
    // The guest's TSC went on from the loaded value in the meantime.
    let tsc_ran = again.ext.tsc.wrapping_sub(state.ext.tsc);
    ensure!(
        tsc_ran < TSC_SLACK,
        "after {k} exits: TSC loaded as {:#x} read {:#x} right after",
        state.ext.tsc,
        again.ext.tsc
    );
    again.ext.tsc = state.ext.tsc;
    ensure!(
        again == state,
        "after {k} exits: saving right after loading gave {again:x?}, loaded {state:x?}"
    );
    let second = run::run(&mut second_vcpu, &mut guest, PREFIX, MAX_EXITS);
    Ok(Some(Split {
        first,
        saved,
        second,
    }))
}

/// Where the guest was at a stop.
#[derive(Default)]
struct Coverage {
    unpaged: u32,
    pae: u32,
    long: u32,
    /// A long-mode stop with interrupts on and nothing being injected, for the event tests.
    interruptible: Option<u64>,
    /// PDPTEs saved at the last stop under PAE paging.
    pdpte: [u64; 4],
    /// The last long-mode state.
    last_long: Option<CpuState>,
}

impl Coverage {
    fn note(&mut self, k: u64, s: &CpuState) {
        if s.efer & EFER_LMA != 0 {
            self.long += 1;
            if self.interruptible.is_none()
                && s.rflags & RFLAGS_IF != 0
                && s.event.is_none()
                && !s.sti_blocking
                && !s.mov_ss_blocking
            {
                self.interruptible = Some(k);
            }
            self.last_long = Some(*s);
        } else if s.pae_paging() {
            self.pae += 1;
            self.pdpte = s.pdpte;
        } else {
            self.unpaged += 1;
        }
    }
}

/// Stops at every exit in turn; returns how many splits ran and where they stopped.
fn every_exit<B: Backend>(expected: &str) -> Result<(u64, Coverage), String> {
    let mut coverage = Coverage::default();
    let mut k = 1;
    while let Some(s) = split::<B>(k, |_| {})? {
        let got = text(&[&s.first, &s.second]);
        ensure!(
            got == expected,
            "resumed after {k} exits, the guest printed '{got}' instead of '{expected}'"
        );
        ensure!(
            s.second.end == DONE,
            "resumed after {k} exits, the guest ended {:?}",
            s.second.end
        );
        coverage.note(k, &s.saved);
        k += 1;
    }
    Ok((k - 1, coverage))
}

/// The reference text with the guest's last line replaced by `last`.
fn with_last_line(reference: &RunReport, last: &str) -> String {
    let mut lines: Vec<&str> = reference.output.iter().map(String::as_str).collect();
    lines.pop();
    lines.push(last);
    lines.concat()
}

/// Resumes at stop `k` after `edit` and returns what the whole run printed.
fn edited<B: Backend>(k: u64, edit: impl FnOnce(&mut CpuState)) -> Result<String, String> {
    let s = split::<B>(k, edit)?.ok_or("the guest ended before the stop")?;
    ensure!(
        s.second.end == DONE,
        "edited state at stop {k}: the guest ended {:?}",
        s.second.end
    );
    Ok(text(&[&s.first, &s.second]))
}

fn inject(kind: EventKind, vector: u8, error_code: Option<u32>) -> impl FnOnce(&mut CpuState) {
    move |s| {
        s.event = Some(Event {
            kind,
            vector,
            error_code,
            instruction_len: 0,
        })
    }
}

/// Loading refuses what this vCPU cannot enter, before touching it.
fn refusals<B: Backend>(good: &CpuState) -> Result<(), String> {
    let guest = fresh::<B>()?;
    let mut v = vcpu::<B>(&guest)?;
    let mut other_apic = *good;
    other_apic.msrs.apic_base = 0xFEE0_0800;
    let mut non_canonical = *good;
    non_canonical.fs.base = 1 << 47;
    for (what, state) in [
        ("the unreadable state", CpuState::UNREADABLE),
        ("another vCPU's APIC base", other_apic),
        ("a non-canonical FS base", non_canonical),
    ] {
        ensure!(v.restore_state(&state).is_err(), "{what} was loaded");
    }
    Ok(())
}

fn check<B: Backend>() -> Verdict {
    let mut guest = fresh::<B>()?;
    let mut whole = vcpu::<B>(&guest)?;
    let reference = run::run(&mut whole, &mut guest, PREFIX, MAX_EXITS);
    drop(whole);
    ensure!(
        reference.end == DONE,
        "uninterrupted guest ended {:?}",
        reference.end
    );
    let tags = ["p32:", "pae:", "l64:", "end:", "cpustate: "];
    ensure!(
        reference.output.len() == tags.len()
            && reference
                .output
                .iter()
                .zip(tags)
                .all(|(l, t)| l.starts_with(t))
            && reference.output.last().map(String::as_str) == Some(QUIET),
        "uninterrupted guest printed {:?}",
        reference.output
    );
    let expected = text(&[&reference]);
    let (splits, c) = every_exit::<B>(&expected)?;
    ensure!(
        c.unpaged > 0 && c.pae > 0 && c.long > 0,
        "stops: {} without paging, {} under PAE paging, {} in long mode",
        c.unpaged,
        c.pae,
        c.long
    );
    ensure!(
        c.pdpte == [0x3001, 0, 0, 0] || c.pdpte == [0; 4],
        "PDPTEs saved under PAE paging: {:x?}",
        c.pdpte
    );
    let last = c.last_long.ok_or("no long-mode stop")?;
    ensure!(
        last.regs.cr2 == CR2_PROBE
            && last.fs.base == FS_BASE_64
            && last.sysenter_eip == SYSENTER_EIP
            && last.msrs.pat == PAT
            && last.msrs.mtrr_def_type == MTRR_DEF_TYPE,
        "last long-mode state lacks what the guest set: CR2 {:#x}, FS base {:#x}, SYSENTER_EIP \
         {:#x}, PAT {:#x}, MTRR_DEF_TYPE {:#x}",
        last.regs.cr2,
        last.fs.base,
        last.sysenter_eip,
        last.msrs.pat,
        last.msrs.mtrr_def_type
    );
    let k = c
        .interruptible
        .ok_or("no long-mode stop with interrupts on")?;
    let got = edited::<B>(k, inject(EventKind::External, 0x21, None))?;
    let want = with_last_line(
        &reference,
        "cpustate: ext 00000001 gp 00000000 code 00000000",
    );
    ensure!(
        got == want,
        "injected interrupt: printed '{got}', expected '{want}'"
    );
    let got = edited::<B>(k, inject(EventKind::HardwareException, 13, Some(0x1234)))?;
    let want = with_last_line(
        &reference,
        "cpustate: ext 00000000 gp 00000001 code 00001234",
    );
    ensure!(
        got == want,
        "injected #GP: printed '{got}', expected '{want}'"
    );
    let got = edited::<B>(k, |s| {
        s.interrupt_window = true;
        s.sti_blocking = true;
    })?;
    ensure!(
        got == expected,
        "interrupt window and STI blocking: printed '{got}'"
    );
    let got = edited::<B>(k, |s| s.regs.r15 ^= 1)?;
    ensure!(
        got != expected,
        "a flipped bit of R15 went unnoticed: the comparison cannot fail"
    );
    refusals::<B>(&last)?;
    extended::<B>(k)?;
    let s = split::<B>(k, |s| s.ext.halted = true)?.ok_or("the guest ended before the stop")?;
    ensure!(
        s.second.end == GuestEnd::Halted && s.second.output.is_empty(),
        "a state saved halted, with no interrupt to come, ran on: ended {:?}, printed {:?}",
        s.second.end,
        s.second.output
    );
    Ok(alloc::format!(
        "{}: resumed on a fresh vCPU after each of {splits} exits ({} without paging, {} under \
         PAE paging, {} in long mode; PDPTE0 {:#x}), output identical to an uninterrupted run; \
         injected interrupt and #GP delivered, bad states refused; XMM, MXCSR, SYSCALL MSRs, \
         TSC_AUX, DR0-3, DR6 and TSC kept across a run; halted stays halted",
        B::NAME,
        c.unpaged,
        c.pae,
        c.long,
        c.pdpte[0]
    ))
}

/// The guest's TSC loaded into the fresh vCPU: far from any host's.
const GUEST_TSC: u64 = 1 << 52;
/// How far the guest's TSC may have gone on while it ran a few exits.
const TSC_SLACK: u64 = 1 << 40;

/// Loads values the guest never sets into a fresh vCPU at stop `k`, runs a few exits, saves
/// again, and expects them all back (the TSC advanced from where it was set).
fn extended<B: Backend>(k: u64) -> Result<(), String> {
    let mut guest = fresh::<B>()?;
    let mut first = vcpu::<B>(&guest)?;
    let ran = run::run(&mut first, &mut guest, PREFIX, k);
    ensure!(ran.end == GuestEnd::TooManyExits, "ended before stop {k}");
    let mut state = first.save_state();
    drop(first);
    state.star = 0x0023_0010_0000_0000;
    state.lstar = 0xFFFF_FFFF_8100_0000;
    state.cstar = 0xFFFF_FFFF_8100_0040;
    state.sfmask = 0x4_7700;
    state.kernel_gs_base = 0xFFFF_8880_0001_0000;
    state.ext.tsc = GUEST_TSC;
    state.ext.tsc_aux = 0x1234;
    state.ext.dr = [0x1000, 0x2000, 0x3000, 0xFFFF_8000_0000_4000];
    state.ext.dr6 = 0xFFFF_0FF1;
    state.ext.tpr = 0x9;
    for n in 0..16 {
        let v = 0x0123_4567_89AB_CDEF_FEDC_BA98_7654_3210_u128.rotate_left(8 * n as u32);
        state.ext.fpu.area.set_xmm(n, v);
    }
    // Round to nearest, all exceptions masked, flush to zero (bit 15, on every SSE CPU).
    state.ext.fpu.area.0[24..28].copy_from_slice(&0x9F80u32.to_le_bytes());
    let mut second = vcpu::<B>(&guest)?;
    second
        .restore_state(&state)
        .map_err(|e| alloc::format!("extended state does not load: {e}"))?;
    // CR8 is the local APIC's TPR: device state, which a failover restores with the chipset.
    guest
        .chipset
        .interrupts_mut()
        .lapic
        .set_cr8(u64::from(state.ext.tpr));
    let ran = run::run(&mut second, &mut guest, PREFIX, 3);
    ensure!(
        ran.end == GuestEnd::TooManyExits,
        "with the extended state the guest ended {:?}",
        ran.end
    );
    let got = second.save_state();
    let mut want = got;
    want.star = state.star;
    want.lstar = state.lstar;
    want.cstar = state.cstar;
    want.sfmask = state.sfmask;
    want.kernel_gs_base = state.kernel_gs_base;
    want.ext.tsc_aux = state.ext.tsc_aux;
    want.ext.dr = state.ext.dr;
    want.ext.dr6 = state.ext.dr6;
    want.ext.tpr = state.ext.tpr;
    want.ext.fpu = state.ext.fpu;
    ensure!(
        got == want,
        "extended state not kept across a run: saved {:x?}, loaded {:x?}",
        got,
        state
    );
    ensure!(
        (GUEST_TSC..GUEST_TSC + TSC_SLACK).contains(&got.ext.tsc),
        "guest TSC set to {GUEST_TSC:#x} read {:#x} a few exits later",
        got.ext.tsc
    );
    Ok(())
}

struct Test;

impl WithBackend for Test {
    type Output = Verdict;
    fn run<B: Backend>(self) -> Verdict {
        check::<B>()
    }
}

/// The `cpustate` self test (see the module documentation); skipped without a back end.
pub fn save_and_restore() -> Outcome {
    match backend::dispatch(Test) {
        Ok(verdict) => Outcome::from(verdict),
        Err(why) => Outcome::Skipped(alloc::format!("no hardware virtualization: {why}")),
    }
}
