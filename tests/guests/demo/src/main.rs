// SPDX-License-Identifier: MIT OR Apache-2.0
//! castor-demo: the fault-tolerance demo guest, a Multiboot 1 kernel.
//!
//! It dirties memory at a steady pace and prints a hash chain over it, one line per step, so a
//! failover from a primary Castor host to its backup shows in the output, and the host-side
//! checker (castor-tests' `demo` module) can prove that the output continued with no gap, no
//! repeat and no rewind, and that the guest's memory survived intact.
//!
//! boot.S enters long mode (4 GiB identity mapped with 2 MiB pages) and calls [`demo_main`],
//! which:
//!
//! 1. programs COM1 (115200 8N1) and installs the IDT;
//! 2. reads the Multiboot command line ([`args`]: `pages=N span=M hz=H steps=S`) and checks
//!    that the working set, `span` pages from the first page boundary after the image, fits in
//!    the RAM the loader reports; a bad value prints `demo: error: bad argument '<word>': <why>`
//!    and exits with [`EXIT_BAD_ARGS`];
//! 3. prints `demo: pages=<N> span=<M> hz=<H>`, zeroes the working set and starts the PIT
//!    (IRQ0 through the 8259A, [`timer`]);
//! 4. then, once per period, halting in between, runs step `k` = 0, 1, ... ([`work`] defines
//!    the computation exactly) and prints exactly one line `demo: step=<k> chain=<16 hex
//!    digits>`;
//! 5. after `steps` steps (if nonzero) exits with status 0.
//!
//! Work mode (`work=<seconds>`, for benchmarks) replaces 3-5: it prints `demo: pages=<N>
//! span=<M> words=<W> work=<seconds>`, zeroes the working set, starts the PIT at
//! [`WORK_TICK_HZ`], then runs the same steps back to back without printing them (rewriting
//! `words=` words of each page, 512 unless asked: [`work`]). About every 64 pages of work it
//! reads port 0x61 (so a hypervisor gets an exit on which to deliver due timer ticks) and the
//! tick count; about once per second of PIT time it prints `demo: work <steps> steps in <ms>
//! ms (<cycles> TSC cycles)` (the steps, PIT time and TSC cycles since the previous such line),
//! and once `seconds` of PIT time have passed `demo: work total <steps> steps in <ms> ms
//! (<cycles> TSC cycles)`, then exits with status 0 ([`meter`]). Serial output costs VM exits,
//! so the lines are few. The steps per PIT second are the work rate on the guest's own clock;
//! the TSC cycles time the same steps on a clock that no lost timer tick can slow.
//!
//! Echo mode (`echo=1`) replaces 3-5: it prints `demo: echo ready`, then one line `demo: got
//! '<line>' (irq4 <N>)` per line typed on COM1, taken through IRQ4, and exits with status 0
//! after `quit` ([`echo`]).
//!
//! Exiting writes the status to the debug-exit port 0xF4 with a 32-bit OUT (QEMU's
//! `isa-debug-exit` ends with exit code `(status << 1) | 1`; Castor reports `guest exited with
//! status <status>`), then halts with interrupts masked. A CPU exception prints `demo: error:
//! exception ...` and exits with [`EXIT_EXCEPTION`].
//!
//! Under `qemu-system-x86_64 -kernel castor-demo -append "steps=40" -device
//! isa-debug-exit,iobase=0xf4,iosize=4` it runs without Castor: the reference behaviour.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]
// The pure parts (argument parsing, pacing, the hash chain) also build on the host for their
// unit tests, where the bare-metal code that uses them is absent.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

mod args;
mod meter;
mod pace;
mod work;

#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod echo;
#[cfg(target_os = "none")]
mod instr;
#[cfg(target_os = "none")]
mod interrupts;
#[cfg(target_os = "none")]
mod multiboot;
#[cfg(target_os = "none")]
mod timer;

/// Work mode's timer rate: 10 ms ticks, enough to time one-second reports to 1% with few
/// interrupts.
pub const WORK_TICK_HZ: u64 = 100;

/// Exit status after `steps` steps (or, in work mode, its time).
pub const EXIT_DONE: u32 = 0;
/// Exit status after a refused command line (or unusable boot information).
pub const EXIT_BAD_ARGS: u32 = 2;
/// Exit status after a CPU exception.
pub const EXIT_EXCEPTION: u32 = 3;

#[cfg(target_os = "none")]
core::arch::global_asm!(
    include_str!("boot.S"),
    main = sym demo_main,
    exception = sym interrupts::exception,
    ticks = sym timer::TICKS,
    irq4s = sym echo::IRQ4S,
    options(att_syntax)
);

#[cfg(target_os = "none")]
use console::say;

/// The debug-exit port.
#[cfg(target_os = "none")]
const DEBUG_EXIT: u16 = 0xF4;

/// Ends the demo with `status` on the debug-exit port, then halts for good.
#[cfg(target_os = "none")]
pub fn exit(status: u32) -> ! {
    // SAFETY: the debug-exit port; writing it ends the machine (or does nothing without one).
    unsafe { instr::outl(DEBUG_EXIT, status) };
    instr::halt_forever()
}

/// The first page boundary after the image (linker.ld's `__bss_end` is one).
#[cfg(target_os = "none")]
fn working_set_base() -> u64 {
    unsafe extern "C" {
        /// linker.ld: the end of .bss, page aligned.
        static __bss_end: u8;
    }
    core::ptr::addr_of!(__bss_end) as u64
}

/// Reads the boot information and the command line; prints why and exits if they are unusable.
/// Nothing it returns borrows the loader's memory, which the working set may overwrite.
#[cfg(target_os = "none")]
fn configure(magic: u32, info: u32) -> args::Params {
    // SAFETY: boot.S passes EAX and EBX as the loader left them; the Multiboot loader
    // guarantees the structure and its strings when EAX holds the magic (checked first). They
    // stay unchanged until the working set is zeroed, after this function returns.
    let boot = match unsafe { multiboot::read(magic, info) } {
        Ok(boot) => boot,
        Err(error) => {
            say!("error: {error}");
            exit(EXIT_BAD_ARGS)
        }
    };
    let checked = args::parse(boot.cmdline).and_then(|params| {
        args::check_fits(&params, working_set_base(), boot.ram_end)?;
        Ok(params)
    });
    match checked {
        Ok(params) => params,
        Err(error) => {
            say!("error: {error}");
            exit(EXIT_BAD_ARGS)
        }
    }
}

/// The demo, called by boot.S in long mode with the loader's EAX and EBX.
#[cfg(target_os = "none")]
extern "C" fn demo_main(magic: u32, info: u32) -> ! {
    console::init();
    interrupts::install();
    let params = configure(magic, info);
    if params.echo {
        echo::run()
    }
    match params.work {
        Some(secs) => say!(
            "pages={} span={} words={} work={secs}",
            params.pages,
            params.span,
            params.words
        ),
        None => say!(
            "pages={} span={} hz={}",
            params.pages,
            params.span,
            params.hz
        ),
    }
    let base = working_set_base() as *mut work::Page;
    // SAFETY: `configure` checked that `span` pages from `base` lie in RAM, which is identity
    // mapped; they start after the image, stack and page tables, and nothing else uses them
    // (the loader's command line, if it was there, is no longer referenced).
    let mem = unsafe { core::slice::from_raw_parts_mut(base, params.span as usize) };
    let mut work = work::Work::new(mem, params.pages, params.words);
    if let Some(secs) = params.work {
        work_mode(&mut work, params.pages, secs)
    }
    let mut pacer = timer::start(pace::Pace::for_hz(params.hz));
    while params.steps == 0 || work.next_step() < params.steps {
        pacer.wait();
        let (k, chain) = work.step();
        say!("step={k} chain={chain:016x}");
    }
    exit(EXIT_DONE)
}

/// Work mode: steps back to back for `secs` seconds of PIT time, reported by [`meter`]. The
/// clock is read ([`timer::Pacer::poll_ticks`], no exit: ticks arrive only if the hypervisor
/// interrupts the guest by itself) after every [`meter::poll_every`] steps, about once per
/// [`meter::POLL_PAGES`] pages of work, so reading costs the same share whatever `pages` is.
#[cfg(target_os = "none")]
fn work_mode(work: &mut work::Work<'_>, pages: u64, secs: u64) -> ! {
    let pace = pace::Pace::for_hz(WORK_TICK_HZ);
    let clock = timer::start(pace);
    let read = || meter::Reading {
        ticks: clock.poll_ticks(),
        tsc: instr::rdtsc(),
    };
    let mut meter = meter::Meter::new(pace, secs, read());
    let every = meter::poll_every(pages);
    loop {
        work.step();
        if !work.next_step().is_multiple_of(every) {
            continue;
        }
        let (steps, now) = (work.next_step(), read());
        if let Some(interval) = meter.after_step(steps, now) {
            say!("work {interval}");
        }
        if meter.done(now) {
            say!("work total {}", meter.total(steps, now));
            exit(EXIT_DONE)
        }
    }
}

/// No panics are expected; one prints what it can and halts.
#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    say!("error: panic: {}", info.message());
    exit(EXIT_EXCEPTION)
}

/// Host builds (e.g. `cargo build --workspace`) get a stub that explains what this is.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("castor-demo is a guest kernel: build it with --target x86_64-unknown-none");
    std::process::exit(2);
}
