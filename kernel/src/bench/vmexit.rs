// SPDX-License-Identifier: MIT OR Apache-2.0
//! VM-exit round-trip cost: CPUID (absorbed in the vendor layer), the hypercall (VMCALL or
//! VMMCALL) and an I/O exit (both through the generic loop), timed inside the guest with RDTSC
//! and on the host; the hypercall also through a bare loop (VMCALL→VMRESUME, VMMCALL→VMRUN) in
//! the same run, so the ratio shows what Castor's exit path costs over the minimum.

use alloc::string::String;

use crate::arch::x86_64::instr;
use crate::kprintln;
use crate::vmm::backend::{self, Backend, WithBackend};
use crate::vmm::guest_mem::GuestMemory;
use crate::vmm::guests::{Builtin, RESULTS};
use crate::vmm::run::{self, Guest, GuestEnd};
use crate::vmm::vcpu::BareLoop;

/// Exits per host-side measurement.
const HOST_ROUNDS: u64 = 2000;

fn per(total: u64, n: u64) -> u64 {
    total / n.max(1)
}

/// Runs the benchmark under this CPU's back end and prints its figures.
pub fn run() -> Result<(), String> {
    backend::dispatch(VmExit)?
}

struct VmExit;

impl WithBackend for VmExit {
    type Output = Result<(), String>;
    fn run<B: Backend>(self) -> Self::Output {
        measure::<B>()
    }
}

fn measure<B: Backend>() -> Result<(), String> {
    let mut mem = GuestMemory::<B::Format>::new(4 << 20).map_err(|e| alloc::format!("{e:?}"))?;
    let start = Builtin::Bench
        .load(&mut mem)
        .map_err(|_| "bench guest does not fit")?;
    let mut vcpu = B::new_vcpu(0, &mem, start).map_err(|e| alloc::format!("vcpu: {e}"))?;
    let mut guest = Guest::new(mem);

    // Phase 1: the guest's own timing loops: 2 * rounds generic exits (CPUID is absorbed in
    // the back end), then the first marker VMCALL.
    let report = run::run(&mut vcpu, &mut guest, "[bench] ", 2 * HOST_ROUNDS + 1);
    if report.end != GuestEnd::TooManyExits {
        return Err(alloc::format!("bench guest ended early: {:?}", report.end));
    }
    let read =
        |mem: &mut GuestMemory<B::Format>, i: u64| mem.read_u64(RESULTS + 8 * i).unwrap_or(0);
    let rounds = read(&mut guest.mem, 3);
    if rounds == 0 {
        return Err("the bench guest stored no results".into());
    }
    let (cpuid, vmcall, io) = (
        read(&mut guest.mem, 0),
        read(&mut guest.mem, 1),
        read(&mut guest.mem, 2),
    );

    // Phase 2, timed on the host: the CPUIDs up to the next marker VMCALL, the OUTs, then
    // VMCALLs through the generic loop, then bare.
    let mut timed = |exits| {
        let t0 = instr::rdtsc();
        let r = run::run(&mut vcpu, &mut guest, "[bench] ", exits);
        let ticks = instr::rdtsc() - t0;
        match r.end {
            GuestEnd::TooManyExits => Ok(ticks),
            end => Err(alloc::format!("bench guest ended: {end:?}")),
        }
    };
    let cpuid_ticks = timed(1)?;
    let io_ticks = timed(HOST_ROUNDS)?;
    let generic_ticks = timed(HOST_ROUNDS)?;
    let bare_ticks = vcpu
        .bare_hypercall_loop(HOST_ROUNDS)
        .ok_or("bare VMCALL loop saw another exit")?;

    kprintln!(
        "bench vmexit {} (guest TSC ticks per exit, {rounds} rounds): cpuid {} hypercall {} io-out {}",
        B::NAME,
        per(cpuid, rounds),
        per(vmcall, rounds),
        per(io, rounds)
    );
    let (g, b) = (
        per(generic_ticks, HOST_ROUNDS),
        per(bare_ticks, HOST_ROUNDS),
    );
    kprintln!(
        "bench vmexit {} (host TSC ticks per exit, {HOST_ROUNDS} rounds): cpuid {} io-out {} hypercall {g}",
        B::NAME,
        per(cpuid_ticks.saturating_sub(g), HOST_ROUNDS),
        per(io_ticks, HOST_ROUNDS)
    );
    kprintln!(
        "bench vmexit {} (host TSC ticks per hypercall round trip, {HOST_ROUNDS} rounds): generic loop {g} bare hypercall-resume loop {b} ratio {}.{:02}",
        B::NAME,
        g / b.max(1),
        g * 100 / b.max(1) % 100
    );
    Ok(())
}
