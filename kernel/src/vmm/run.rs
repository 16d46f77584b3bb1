// SPDX-License-Identifier: MIT OR Apache-2.0
//! The generic monitor loop: one `match` over vendor-neutral exits, whatever the back end.

use alloc::string::String;
use alloc::vec::Vec;

use alloc::boxed::Box;

use super::acpi;
use super::chipset::Chipset;
use super::decode::cache::DecodeCache;
use super::decode::mmio::{self, MmioDevice, MmioError, MmioInstruction};
use super::devices::virtio::VirtioNet;
use super::devices::{Effect, PortBus, debug_exit::DebugExit, serial::Serial};
use super::guest_mem::GuestMemory;
use super::guest_nic;
use super::hypercall::{self, Call};
use super::nic_io::NetHost;
use super::vcpu::{Exit, InterruptSource, Vcpu, Width};
use crate::arch::x86_64::{instr, time};
use crate::mm::pagetable::Format;
use crate::vmm::devices::irq::IrqSink;

/// How a guest run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestEnd {
    /// The guest wrote this status to the debug-exit port or called `EXIT`.
    Exited(u64),
    /// Triple fault, or HLT with interrupts off: the guest cannot continue.
    Shutdown,
    /// HLT with interrupts enabled but no timer armed, nothing pending and no UART that input
    /// could make interrupt: nothing can wake it.
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
    /// An access to a device page by an instruction Castor does not emulate (or whose bytes it
    /// could not read).
    BadMmio {
        /// Guest-physical address.
        gpa: u64,
        /// What went wrong.
        error: MmioError,
    },
    /// The exit budget ran out.
    TooManyExits,
}

/// A guest's resources.
pub struct Guest<F: Format> {
    /// RAM and nested page tables.
    pub mem: GuestMemory<F>,
    /// Interrupt controllers, timers and PM registers.
    pub chipset: Chipset,
    /// Other port devices.
    pub bus: PortBus,
    /// The network card, if the guest has one (`guest_nic`; the monitor moves its frames with
    /// [`service_nic`](Self::service_nic)).
    pub nic: Option<VirtioNet>,
    /// Bytes typed at the host's console that the guest's UART has no room for yet.
    console_in: Vec<u8>,
    /// Host TSC before which the host's console is not looked at again (a TSC compare is all
    /// an exit pays for it).
    console_poll_tsc: u64,
    /// Recent decodes of instructions that accessed device pages.
    mmio_decodes: DecodeCache<MmioInstruction>,
}

/// How often, at most, the host's console is polled for input (each poll is a port access).
const CONSOLE_POLL_NS: u64 = 1_000_000;
/// Nanoseconds in a second.
const NS: u64 = 1_000_000_000;
/// Most typed bytes held for the guest while its UART is full.
const CONSOLE_HELD: usize = 4096;

impl<F: Format> Guest<F> {
    /// A guest with `mem` as its RAM and the standard devices: the chipset, COM1, the
    /// debug-exit port; the ACPI tables that describe them are written to RAM at
    /// [`acpi::DEFAULT_BASE`] (in the BIOS area every loader reports as reserved) if RAM
    /// reaches that far.
    pub fn new(mem: GuestMemory<F>) -> Self {
        Self::booted(mem, None)
    }

    /// As [`new`](Self::new), with a network card of MAC address `mac` (`guest_nic`), which
    /// the ACPI tables describe.
    pub fn with_nic(mem: GuestMemory<F>, mac: [u8; 6]) -> Self {
        Self::booted(mem, Some(VirtioNet::new(mac)))
    }

    fn booted(mem: GuestMemory<F>, nic: Option<VirtioNet>) -> Self {
        let mut guest = Self::with_devices(mem);
        let mut platform = acpi::Platform::pc(guest.mem.size());
        if nic.is_some() {
            platform.devices.push(guest_nic::acpi_device());
        }
        guest.nic = nic;
        match acpi::build(&platform, acpi::DEFAULT_BASE) {
            Ok(tables) => {
                let _written = guest.mem.write(tables.base, &tables.bytes);
                debug_assert!(_written, "build checked that the tables fit in RAM");
            }
            Err(e) => log::info!("guest without ACPI tables: {e}"),
        }
        guest
    }

    /// A guest resumed from a checkpoint: `mem` holds its RAM as it was (ACPI tables
    /// included, which are not written again), `devices` the device state
    /// [`save_devices`](Self::save_devices) captured.
    pub fn resumed(
        mem: GuestMemory<F>,
        devices: &[u8],
    ) -> Result<Self, super::devices::state::StateError> {
        let mut guest = Self::with_devices(mem);
        guest.restore_devices(devices)?;
        Ok(guest)
    }

    /// `mem` with the standard devices as firmware leaves them.
    fn with_devices(mem: GuestMemory<F>) -> Self {
        let mut bus = PortBus::default();
        bus.attach(Box::new(Serial::default()));
        bus.attach(Box::new(DebugExit));
        Self {
            chipset: Chipset::new(mem.size()),
            mem,
            bus,
            nic: None,
            console_in: Vec::new(),
            console_poll_tsc: 0,
            mmio_decodes: DecodeCache::default(),
        }
    }

    /// Drives the interrupt lines of the bus devices (the UART's IRQ4) to their levels now.
    fn drive_bus_lines(&mut self) {
        for (line, level) in self.bus.irq_lines() {
            self.chipset.interrupts_mut().set_level(line, level);
        }
    }

    /// Hands what was typed at the host's console to the guest's UART (at most every
    /// [`CONSOLE_POLL_NS`]); what it has no room for waits, bounded by [`CONSOLE_HELD`] (the
    /// host UART holds the rest). On a pair this runs on the host that runs the guest only, and
    /// input becomes part of the UART state the next checkpoint carries.
    #[inline]
    fn feed_console(&mut self) {
        let now = instr::rdtsc();
        if now >= self.console_poll_tsc {
            self.poll_console(now);
        }
    }

    /// [`feed_console`](Self::feed_console) once its time has come (`now`, a TSC reading).
    fn poll_console(&mut self, now: u64) {
        // Before calibration the TSC is taken as 1 GHz, as `time::now_ns` takes it.
        let hz = match time::tsc_hz() {
            0 => NS,
            hz => hz,
        };
        self.console_poll_tsc = now + hz * CONSOLE_POLL_NS / NS;
        let mut buf = [0u8; 64];
        if self.console_in.len() < CONSOLE_HELD {
            let n = crate::console::poll_input(&mut buf);
            self.console_in.extend_from_slice(&buf[..n]);
        }
        if !self.console_in.is_empty() {
            let taken = self.bus.push_input(&self.console_in);
            self.console_in.drain(..taken);
            self.drive_bus_lines();
        }
    }

    /// The state of every device, the chipset's guest time included, as one versioned blob
    /// (`devices::blob`). Call while the guest is stopped.
    pub fn save_devices(&self) -> Vec<u8> {
        use super::devices::blob;
        blob::encode_with_nic(
            &self.chipset.save_state(),
            &self.bus.save_state(),
            &blob::nic_section(self.nic.as_ref()),
        )
    }

    /// Loads a blob [`save_devices`](Self::save_devices) wrote, possibly on another host; guest
    /// time resumes from the saved value. All or nothing: on error no device changed.
    fn restore_devices(&mut self, bytes: &[u8]) -> Result<(), super::devices::state::StateError> {
        let sections = super::devices::blob::decode(bytes)?;
        let chipset = Chipset::restore_state(sections.chipset, self.mem.size())?;
        let nic = super::devices::blob::restore_nic(sections.nic)?;
        self.bus.restore_state(sections.bus)?;
        self.chipset = chipset;
        self.nic = nic;
        self.drive_bus_lines();
        self.drive_nic_line();
        Ok(())
    }

    /// The guest executed HLT with interrupts enabled: waits (spinning on guest time) until
    /// an interrupt is pending. False if none can ever come: no timer armed, and no UART whose
    /// interrupt typed input would raise ([`PortBus::wakes_on_input`](super::devices::PortBus::wakes_on_input);
    /// with one, it waits for input as long as it takes).
    fn wait_for_interrupt<'n>(&mut self, mut net: Option<&mut (dyn NetHost<F> + 'n)>) -> bool {
        let frames_can_wake = net.is_some() && self.nic.is_some();
        let mut idle = |guest: &mut Self| {
            guest.feed_console();
            if let Some(host) = net.as_deref_mut() {
                guest.service_nic(host);
            }
            guest.chipset.pending().is_some()
        };
        loop {
            if self.chipset.pending().is_some() {
                return true;
            }
            let Some(deadline) = self.chipset.next_deadline() else {
                // No timer: only typed input (or a frame) can wake the guest, if its UART (or
                // its card) would interrupt.
                while self.bus.wakes_on_input() || frames_can_wake {
                    if idle(self) {
                        return true;
                    }
                    core::hint::spin_loop();
                }
                return false;
            };
            while self.chipset.now_ns() < deadline {
                if idle(self) {
                    return true;
                }
                core::hint::spin_loop();
            }
        }
    }

    fn port_in(&mut self, port: u16, width: Width) -> u32 {
        let now = self.chipset.now_ns();
        match self.chipset.read(port, width, now) {
            Some(value) => value,
            None => {
                let value = self.bus.read(port, width);
                if self.bus.take_accessed() {
                    self.drive_bus_lines();
                }
                value
            }
        }
    }

    fn port_out(&mut self, port: u16, width: Width, value: u32) -> Effect {
        let now = self.chipset.now_ns();
        match self.chipset.write(port, width, value, now) {
            Some(effect) => effect,
            None => {
                let effect = self.bus.write(port, width, value);
                if self.bus.take_accessed() {
                    self.drive_bus_lines();
                }
                effect
            }
        }
    }

    /// Emulates the instruction that accessed the device page at `gpa` (`decode::mmio`) and
    /// moves the vCPU past it.
    fn emulate_mmio(&mut self, vcpu: &mut dyn Vcpu, gpa: u64) -> Step {
        let bad = |error| Step::End(GuestEnd::BadMmio { gpa, error });
        let Ok(ctx) = vcpu.instruction_context() else {
            return Step::End(GuestEnd::BadAccess { gpa, write: false });
        };
        let fetched = self.mmio_decodes.get(
            &ctx.paging,
            &mut self.mem,
            ctx.linear_ip,
            ctx.mode,
            |s, m, l, c| mmio::fetch(s, m, l, c),
        );
        let insn = match fetched {
            Ok(insn) => insn,
            Err(e) => return bad(e),
        };
        let (mut rsp, mut rflags) = (ctx.rsp, ctx.rflags);
        let mut regs = mmio::Registers {
            gprs: vcpu.regs(),
            rsp: &mut rsp,
            rflags: &mut rflags,
        };
        let mut devices = GuestMmio {
            chipset: &mut self.chipset,
            nic: self.nic.as_mut(),
        };
        let step = match insn.execute(gpa, &mut regs, &mut devices) {
            Ok(done) => match vcpu.complete_instruction(rsp, rflags, done.advance) {
                Ok(()) => Step::Continue,
                Err(_) => Step::End(GuestEnd::BadAccess { gpa, write: true }),
            },
            Err(e) => bad(e),
        };
        self.drive_nic_line();
        step
    }

    /// Whether guest-physical `gpa` is a device register page (the APICs', the card's).
    fn decodes_mmio(&self, gpa: u64) -> bool {
        self.chipset.decodes_mmio(gpa) || (self.nic.is_some() && guest_nic::offset(gpa).is_some())
    }
}

/// The device pages an MMIO access can reach: the chipset's APIC pages and the network card's
/// register window.
struct GuestMmio<'a> {
    chipset: &'a mut Chipset,
    nic: Option<&'a mut VirtioNet>,
}

impl MmioDevice for GuestMmio<'_> {
    fn read(&mut self, gpa: u64, width: Width) -> u64 {
        match (self.nic.as_deref_mut(), guest_nic::offset(gpa)) {
            (Some(nic), Some(offset)) => nic.mmio_read(offset, width),
            _ => MmioDevice::read(&mut *self.chipset, gpa, width),
        }
    }

    fn write(&mut self, gpa: u64, width: Width, value: u64) {
        match (self.nic.as_deref_mut(), guest_nic::offset(gpa)) {
            (Some(nic), Some(offset)) => nic.mmio_write(offset, width, value),
            _ => MmioDevice::write(&mut *self.chipset, gpa, width, value),
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
    out: &mut Vec<String>,
) -> u64 {
    if len > hypercall::MAX_CONSOLE_WRITE {
        return hypercall::ERROR;
    }
    match guest.mem.slice_mut(gpa, len as usize) {
        Some(bytes) => {
            out.extend(String::from_utf8_lossy(bytes).lines().map(String::from));
            len
        }
        None => hypercall::ERROR,
    }
}

/// What one exit amounted to, for whoever drives the guest ([`run`] here, the
/// fault-tolerant pair elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Handled; enter the guest again.
    Continue,
    /// A host interrupt stopped the guest (already handled).
    HostInterrupt,
    /// The back end's preemption timer stopped the guest.
    Preempted,
    /// HLT with interrupts enabled: enter again once the chipset has an interrupt pending.
    Halt,
    /// A write to guest RAM that the nested page tables forbid (a write-protected page).
    WriteFault {
        /// Guest-physical address.
        gpa: u64,
    },
    /// The guest cannot go on.
    End(GuestEnd),
}

/// Runs `vcpu` to its next exit and handles it; console lines the guest completed are
/// appended to `out` (not printed). Inlined into its callers' loops: every exit pays for a
/// call otherwise.
#[inline(always)]
pub fn step<F: Format>(vcpu: &mut dyn Vcpu, guest: &mut Guest<F>, out: &mut Vec<String>) -> Step {
    guest.feed_console();
    let exit = vcpu.run(&mut guest.chipset, &mut guest.mem);
    let step = match exit {
        Exit::IoIn { port, width } => {
            let value = guest.port_in(port, width);
            vcpu.complete_io_in(value);
            Step::Continue
        }
        Exit::IoOut { port, width, value } => match guest.port_out(port, width, value) {
            Effect::Exit(status) => Step::End(GuestEnd::Exited(u64::from(status))),
            // Powered off: ended, with nothing wrong.
            Effect::PowerOff => Step::End(GuestEnd::Exited(0)),
            // No reboot yet: a reset ends the guest as a triple fault (a reset on a PC) does.
            Effect::Reset => Step::End(GuestEnd::Shutdown),
            Effect::None => Step::Continue,
        },
        Exit::Hypercall => {
            let result = match hypercall::decode(vcpu.regs()) {
                Call::Version => u64::from(super::cpuid::HYPERCALL_ABI_VERSION),
                Call::ConsoleWrite { gpa, len } => console_write(guest, gpa, len, out),
                Call::Exit(status) => return Step::End(GuestEnd::Exited(status)),
                Call::Unknown(_) => hypercall::ERROR,
            };
            vcpu.regs().rax = result;
            Step::Continue
        }
        Exit::NestedPageFault { gpa, write, .. } if write && gpa < guest.mem.size() => {
            Step::WriteFault { gpa }
        }
        Exit::NestedPageFault {
            gpa,
            exec: false,
            paging_structure: false,
            ..
        } if guest.decodes_mmio(gpa) => guest.emulate_mmio(vcpu, gpa),
        Exit::NestedPageFault { gpa, write, .. } => Step::End(GuestEnd::BadAccess { gpa, write }),
        Exit::Halt => Step::Halt,
        Exit::Shutdown => Step::End(GuestEnd::Shutdown),
        Exit::EntryFailed { code } => Step::End(GuestEnd::EntryFailed(code)),
        Exit::HostInterrupt => Step::HostInterrupt,
        Exit::Preempted => Step::Preempted,
        Exit::Unhandled { code, info } => Step::End(GuestEnd::Unhandled { code, info }),
    };
    guest
        .bus
        .take_output_into(out, matches!(step, Step::End(_)));
    step
}

/// Prints why the guest stopped, with a register dump, unless it exited by itself.
pub fn report_end(vcpu: &mut dyn Vcpu, end: GuestEnd, prefix: &str) {
    if matches!(end, GuestEnd::Exited(_) | GuestEnd::TooManyExits) {
        return;
    }
    let mut dump = String::new();
    let _ = vcpu.dump(&mut dump);
    crate::kprintln!("{prefix}guest stopped: {end:?}");
    for line in dump.lines() {
        crate::kprintln!("{prefix}{line}");
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
    run_with_nic(vcpu, guest, prefix, max_exits, None)
}

/// As [`run`], moving the frames of the guest's network card to and from `net` after every
/// exit and while the guest waits in HLT (a received frame can wake it).
pub fn run_with_nic<'n, F: Format>(
    vcpu: &mut dyn Vcpu,
    guest: &mut Guest<F>,
    prefix: &str,
    max_exits: u64,
    mut net: Option<&mut (dyn NetHost<F> + 'n)>,
) -> RunReport {
    let mut output = Vec::new();
    let (mut exits, mut host_interrupts, mut preemptions) = (0, 0, 0);
    let end = loop {
        if exits >= max_exits {
            break GuestEnd::TooManyExits;
        }
        exits += 1;
        let printed = output.len();
        let step = step(vcpu, guest, &mut output);
        for line in &output[printed..] {
            crate::kprintln!("{prefix}{line}");
        }
        if let Some(host) = net.as_deref_mut() {
            guest.service_nic(host);
        }
        match step {
            Step::Continue => {}
            Step::HostInterrupt => host_interrupts += 1,
            Step::Preempted => preemptions += 1,
            Step::Halt => {
                if !guest.wait_for_interrupt(net.as_deref_mut()) {
                    break GuestEnd::Halted;
                }
            }
            Step::WriteFault { gpa } => break GuestEnd::BadAccess { gpa, write: true },
            Step::End(end) => break end,
        }
    };
    let printed = output.len();
    output.extend(guest.bus.take_output(true));
    for line in &output[printed..] {
        crate::kprintln!("{prefix}{line}");
    }
    report_end(vcpu, end, prefix);
    RunReport {
        end,
        output,
        exits,
        host_interrupts,
        preemptions,
    }
}
