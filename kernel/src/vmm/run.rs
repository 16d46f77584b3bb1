// SPDX-License-Identifier: MIT OR Apache-2.0
//! The generic monitor loop: one `match` over vendor-neutral exits, whatever the back end.

use alloc::string::String;
use alloc::vec::Vec;

use alloc::boxed::Box;

use super::chipset::Chipset;
use super::devices::{Effect, PortBus, debug_exit::DebugExit, serial::Serial};
use super::guest_mem::GuestMemory;
use super::hypercall::{self, Call};
use super::vcpu::{Exit, InterruptSource, Vcpu, Width};
use crate::mm::pagetable::Format;

/// How a guest run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestEnd {
    /// The guest wrote this status to the debug-exit port or called `EXIT`.
    Exited(u64),
    /// Triple fault, or HLT with interrupts off: the guest cannot continue.
    Shutdown,
    /// HLT with interrupts enabled but no timer armed and nothing pending: nothing can wake it.
    Halted,
    /// The hardware refused to enter the guest.
    EntryFailed(u64),
    /// An exit the monitor does not handle.
    Unhandled {
        /// Vendor exit code.
        code: u64,
        /// Vendor qualification.
        info: u64,
    },
    /// An access outside guest RAM with no device behind it.
    BadAccess {
        /// Guest-physical address.
        gpa: u64,
        /// It was a write.
        write: bool,
    },
    /// The exit budget ran out.
    TooManyExits,
}

/// A guest's resources.
pub struct Guest<F: Format> {
    /// RAM and nested page tables.
    pub mem: GuestMemory<F>,
    /// PIC, PIT and RTC.
    pub chipset: Chipset,
    /// Other port devices.
    pub bus: PortBus,
}

impl<F: Format> Guest<F> {
    /// A guest with `mem` as its RAM and the standard devices: the chipset, COM1, the
    /// debug-exit port.
    pub fn new(mem: GuestMemory<F>) -> Self {
        let mut bus = PortBus::default();
        bus.attach(Box::new(Serial::default()));
        bus.attach(Box::new(DebugExit));
        let chipset = Chipset::new(mem.size());
        Self { mem, chipset, bus }
    }

    /// The guest executed HLT with interrupts enabled: waits (spinning on guest time) until
    /// an interrupt is pending. False if none can ever come (no timer armed).
    fn wait_for_interrupt(&mut self) -> bool {
        loop {
            if self.chipset.pending().is_some() {
                return true;
            }
            let Some(deadline) = self.chipset.next_deadline() else {
                return false;
            };
            while self.chipset.now_ns() < deadline {
                core::hint::spin_loop();
            }
        }
    }

    fn port_in(&mut self, port: u16, width: Width) -> u32 {
        let now = self.chipset.now_ns();
        match self.chipset.read(port, width, now) {
            Some(value) => value,
            None => self.bus.read(port, width),
        }
    }

    fn port_out(&mut self, port: u16, width: Width, value: u32) -> Effect {
        let now = self.chipset.now_ns();
        if self.chipset.write(port, width, value, now) {
            Effect::None
        } else {
            self.bus.write(port, width, value)
        }
    }
}

/// Result of a run.
#[derive(Debug)]
pub struct RunReport {
    /// Why it ended.
    pub end: GuestEnd,
    /// Console lines the guest produced (serial and `CONSOLE_WRITE`).
    pub output: Vec<String>,
    /// Exits the generic loop handled.
    pub exits: u64,
    /// Of those, host interrupts that arrived while the guest ran.
    pub host_interrupts: u64,
    /// Of those, expiries of the back end's preemption timer.
    pub preemptions: u64,
}

fn console_write<F: Format>(
    guest: &mut Guest<F>,
    gpa: u64,
    len: u64,
    prefix: &str,
    out: &mut Vec<String>,
) -> u64 {
    if len > hypercall::MAX_CONSOLE_WRITE {
        return hypercall::ERROR;
    }
    match guest.mem.slice_mut(gpa, len as usize) {
        Some(bytes) => {
            for line in String::from_utf8_lossy(bytes).lines() {
                crate::kprintln!("{prefix}{line}");
                out.push(String::from(line));
            }
            len
        }
        None => hypercall::ERROR,
    }
}

/// Runs `vcpu` until the guest ends or `max_exits` exits were handled, printing guest output
/// as it appears (each line prefixed with `prefix`). Failures dump the vCPU state; the host
/// keeps running whatever the guest did.
pub fn run<F: Format>(
    vcpu: &mut dyn Vcpu,
    guest: &mut Guest<F>,
    prefix: &str,
    max_exits: u64,
) -> RunReport {
    let mut output = Vec::new();
    let (mut exits, mut host_interrupts, mut preemptions) = (0, 0, 0);
    let end = loop {
        if exits >= max_exits {
            break GuestEnd::TooManyExits;
        }
        exits += 1;
        let exit = vcpu.run(&mut guest.chipset, &mut guest.mem);
        let end = match exit {
            Exit::IoIn { port, width } => {
                let value = guest.port_in(port, width);
                vcpu.complete_io_in(value);
                None
            }
            Exit::IoOut { port, width, value } => match guest.port_out(port, width, value) {
                Effect::Exit(status) => Some(GuestEnd::Exited(u64::from(status))),
                Effect::None => None,
            },
            Exit::Hypercall => {
                let regs = *vcpu.regs();
                let result = match hypercall::decode(&regs) {
                    Call::Version => u64::from(super::cpuid::HYPERCALL_ABI_VERSION),
                    Call::ConsoleWrite { gpa, len } => {
                        console_write(guest, gpa, len, prefix, &mut output)
                    }
                    Call::Exit(status) => break GuestEnd::Exited(status),
                    Call::Unknown(_) => hypercall::ERROR,
                };
                vcpu.regs().rax = result;
                None
            }
            Exit::NestedPageFault { gpa, write, .. } => Some(GuestEnd::BadAccess { gpa, write }),
            Exit::Halt => (!guest.wait_for_interrupt()).then_some(GuestEnd::Halted),
            Exit::Shutdown => Some(GuestEnd::Shutdown),
            Exit::EntryFailed { code } => Some(GuestEnd::EntryFailed(code)),
            Exit::HostInterrupt => {
                host_interrupts += 1;
                None
            }
            Exit::Preempted => {
                preemptions += 1;
                None
            }
            Exit::Unhandled { code, info } => Some(GuestEnd::Unhandled { code, info }),
        };
        for line in guest.bus.take_output(false) {
            crate::kprintln!("{prefix}{line}");
            output.push(line);
        }
        if let Some(end) = end {
            break end;
        }
    };
    for line in guest.bus.take_output(true) {
        crate::kprintln!("{prefix}{line}");
        output.push(line);
    }
    if !matches!(end, GuestEnd::Exited(_) | GuestEnd::TooManyExits) {
        let mut dump = String::new();
        let _ = vcpu.dump(&mut dump);
        crate::kprintln!("{prefix}guest stopped: {end:?}");
        for line in dump.lines() {
            crate::kprintln!("{prefix}{line}");
        }
    }
    RunReport {
        end,
        output,
        exits,
        host_interrupts,
        preemptions,
    }
}
