// SPDX-License-Identifier: MIT OR Apache-2.0
//! Built-in guests run under VT-x with EPT: a 64-bit guest checking CPUID, hypercalls and port
//! I/O; a real-mode guest (unrestricted guest); a guest that triple faults, after which the host
//! must still be running (this test goes on to report).

use alloc::boxed::Box;

use super::{Outcome, Verdict};
use crate::ensure;
use crate::vmm::devices::{PortBus, debug_exit::DebugExit, serial::Serial};
use crate::vmm::guest_mem::GuestMemory;
use crate::vmm::guests::Builtin;
use crate::vmm::run::{self, Guest, GuestEnd, RunReport};
use crate::vmm::vmx::caps::VmxCaps;
use crate::vmm::vmx::ept::EptFormat;
use crate::vmm::vmx::vcpu::VmxVcpu;

const GUEST_RAM: u64 = 4 << 20;
const MAX_EXITS: u64 = 10_000;

fn run_builtin(which: Builtin) -> Result<RunReport, alloc::string::String> {
    let mut mem =
        GuestMemory::<EptFormat>::new(GUEST_RAM).map_err(|e| alloc::format!("guest RAM: {e:?}"))?;
    let start = which.load(&mut mem).map_err(|_| "guest does not fit")?;
    let mut vcpu = VmxVcpu::new(0, &mem, start).map_err(|e| alloc::format!("vcpu: {e}"))?;
    let mut bus = PortBus::default();
    bus.attach(Box::new(Serial::default()));
    bus.attach(Box::new(DebugExit));
    let mut guest = Guest { mem, bus };
    Ok(run::run(&mut vcpu, &mut guest, "[guest] ", MAX_EXITS))
}

fn has(report: &RunReport, line: &str) -> bool {
    report.output.iter().any(|l| l == line)
}

/// The three built-in guests end as designed.
pub fn builtin() -> Outcome {
    if VmxCaps::read().is_err() {
        return Outcome::Skipped("no VT-x on this CPU; the AMD-V back end is not written yet");
    }
    Outcome::from(check_all())
}

fn check_all() -> Verdict {
    let r = run_builtin(Builtin::Long64)?;
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
    let r = run_builtin(Builtin::Real)?;
    ensure!(
        r.end == GuestEnd::Exited(0x32),
        "real-mode guest ended {:?}",
        r.end
    );
    ensure!(
        has(&r, "guest16: hello from real mode"),
        "real-mode guest output missing"
    );
    let r = run_builtin(Builtin::TripleFault)?;
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
        "64-bit guest exited 0x31 after {exits64} exits, real-mode guest 0x32, triple fault stopped that guest only"
    ))
}
