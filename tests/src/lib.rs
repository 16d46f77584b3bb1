//! Castor's emulator test harness.
//!
//! It builds the kernel ([`kernel`]), packs it into a GRUB ISO when needed ([`image`]), boots it
//! headless under QEMU ([`qemu`]) or Bochs ([`bochs`]) and judges the run from the serial console
//! ([`serial`], [`contract`]) and QEMU's debug-exit status. [`Run`] is the entry point:
//!
//! ```no_run
//! use castor_tests::{Emulator, Run};
//! let outcome = Run::new(Emulator::qemu()).cpus(2).cmdline("selftest=all").start()?.wait_exit();
//! castor_tests::contract::assert_selftest_pass(&outcome, 2, &[]);
//! # Ok::<(), castor_tests::Error>(())
//! ```
//!
//! Every run gets its own directory under `target/castor-runs/` (its unix sockets: a short
//! private one under `/tmp`, [`sockdir`], so any checkout path works); emulators run in their own
//! session and are killed with SIGKILL by process group when the run ends, times out, or its
//! handle is dropped (also while a test panics). See the `castor-run` and `castor-image`
//! binaries for the command-line front ends used by `scripts/`.
//!
//! Environment variables:
//!
//! * `CASTOR_KERNEL=ELF`: boot this kernel instead of building one ([`kernel`]).
//! * `CASTOR_ACCEL=tcg|kvm`: force QEMU's accelerator instead of probing KVM ([`accel`]).
//! * `CASTOR_QEMU_ICOUNT=SHIFT|auto`: derive QEMU's emulated time from the instruction count
//!   ([`qemu::Qemu::icount`]).
//! * `CASTOR_KEEP_RUNS=1`: keep every run directory, not just failed ones ([`rundir`]).

pub mod accel;
pub mod benchtable;
pub mod bochs;
pub mod cli;
pub mod contract;
pub mod demo;
pub mod emulator;
pub mod error;
pub mod guestnet;
pub mod handle;
pub mod hub;
pub mod image;
pub mod kernel;
pub mod linux;
pub mod monitor;
pub mod netclient;
pub mod netns;
pub mod outcome;
pub mod pair;
pub mod plot;
pub mod process;
pub mod pty;
pub mod qemu;
pub mod random;
pub mod router;
pub mod run;
pub mod rundir;
pub mod scrape;
pub mod serial;
pub mod serial_input;
pub mod sockdir;
pub mod witness;

pub use emulator::Emulator;
pub use error::{Error, Result};
pub use handle::{RunHandle, WaitError};
pub use netns::NetNamespace;
pub use outcome::Outcome;
pub use run::Run;

use std::path::{Path, PathBuf};

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
}

/// `<workspace>/target`, where the kernel build, run directories and ISOs go.
pub fn target_dir() -> PathBuf {
    workspace_root().join("target")
}
