//! Building the Castor kernel ELF (and the test guest kernels `castor-mbtest` and
//! `castor-demo`) with a nested `cargo build`.
//!
//! Both build into their own target directory (`target/kernel`) so the nested cargo never
//! waits on the lock the outer `cargo test` holds on `target/`; cargo's own locking makes
//! concurrent test processes safe. Within one process each build runs at most once.

use crate::error::{Context, Error, Result};
use crate::workspace_root;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The kernel's target triple.
pub const TARGET: &str = "x86_64-unknown-none";

/// Environment variable naming a prebuilt kernel ELF to use instead of building one.
pub const KERNEL_ENV: &str = "CASTOR_KERNEL";

/// The kernel's package (and binary) name.
pub const KERNEL_PACKAGE: &str = "castor-kernel";
/// The test guest kernel's package and binary name (`tests/guests/mbtest/`): a Multiboot 1
/// kernel that reports what it was handed and exits with the `status=` from its command line.
pub const MBTEST_PACKAGE: &str = "castor-mbtest";
/// The fault-tolerance demo guest's package and binary name (`tests/guests/demo/`): a Multiboot 1
/// kernel that dirties memory at a steady pace and prints a hash chain over it (see
/// [`crate::demo`]).
pub const DEMO_PACKAGE: &str = "castor-demo";

/// Variables the outer cargo may set that would redirect or change the nested build.
const LEAKY_ENV: &[&str] = &[
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
];

/// Where the nested build's artifacts go.
pub fn target_dir() -> PathBuf {
    crate::target_dir().join("kernel")
}

/// The path of the kernel ELF that [`build`] produces.
pub fn elf_path() -> PathBuf {
    target_dir().join(TARGET).join("release").join("castor")
}

/// The path of the `castor-mbtest` ELF that [`build_mbtest`] produces.
pub fn mbtest_path() -> PathBuf {
    target_dir()
        .join(TARGET)
        .join("release")
        .join(MBTEST_PACKAGE)
}

/// The path of the `castor-demo` ELF that [`build_demo`] produces.
pub fn demo_path() -> PathBuf {
    target_dir().join(TARGET).join("release").join(DEMO_PACKAGE)
}

/// What to do with cargo's progress output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildOutput {
    /// Show it (command-line tools).
    Inherit,
    /// Capture it and include it in the error on failure (tests).
    Capture,
}

/// The command that builds the kernel, run from the workspace root.
pub fn build_command() -> Command {
    package_build_command(KERNEL_PACKAGE)
}

/// The command that builds `package` for [`TARGET`] in release mode into [`target_dir`].
fn package_build_command(package: &str) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "-p", package, "--release", "--target", TARGET])
        .arg("--target-dir")
        .arg(target_dir());
    for var in LEAKY_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// Builds the kernel now and returns its ELF path.
pub fn build(output: BuildOutput) -> Result<PathBuf> {
    build_package(KERNEL_PACKAGE, "the kernel", elf_path(), output)
}

/// Builds `castor-mbtest` now and returns its ELF path.
pub fn build_mbtest(output: BuildOutput) -> Result<PathBuf> {
    build_package(MBTEST_PACKAGE, MBTEST_PACKAGE, mbtest_path(), output)
}

/// Builds `castor-demo` now and returns its ELF path.
pub fn build_demo(output: BuildOutput) -> Result<PathBuf> {
    build_package(DEMO_PACKAGE, DEMO_PACKAGE, demo_path(), output)
}

fn build_package(package: &str, what: &str, elf: PathBuf, output: BuildOutput) -> Result<PathBuf> {
    let mut cmd = package_build_command(package);
    let running = format!("running cargo build for {what}");
    let status = match output {
        BuildOutput::Inherit => cmd.status().context(running)?,
        BuildOutput::Capture => {
            let out = cmd.stdin(Stdio::null()).output().context(running)?;
            if !out.status.success() {
                return Err(Error::new(format!(
                    "{what} build failed ({}):\n{}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
            out.status
        }
    };
    if !status.success() {
        return Err(Error::new(format!("{what} build failed ({status})")));
    }
    if !elf.is_file() {
        return Err(Error::new(format!(
            "{what} build succeeded but {} is missing",
            elf.display()
        )));
    }
    Ok(elf)
}

/// `$CASTOR_KERNEL` if it is set, otherwise a fresh [`build`].
pub fn prebuilt_or_build(output: BuildOutput) -> Result<PathBuf> {
    let Some(path) = std::env::var_os(KERNEL_ENV) else {
        return build(output);
    };
    let path = PathBuf::from(path);
    match path.is_file() {
        true => Ok(path),
        false => Err(Error::new(format!(
            "{KERNEL_ENV}={} is not a file",
            path.display()
        ))),
    }
}

/// The kernel ELF for tests: [`prebuilt_or_build`], done at most once per process.
pub fn elf() -> Result<&'static Path> {
    static ELF: OnceLock<Result<PathBuf>> = OnceLock::new();
    let elf = ELF.get_or_init(|| prebuilt_or_build(BuildOutput::Capture));
    elf.as_deref().map_err(Clone::clone)
}

/// The `castor-mbtest` guest kernel ELF for tests: [`build_mbtest`], done at most once per
/// process.
pub fn mbtest() -> Result<&'static Path> {
    static ELF: OnceLock<Result<PathBuf>> = OnceLock::new();
    let elf = ELF.get_or_init(|| build_mbtest(BuildOutput::Capture));
    elf.as_deref().map_err(Clone::clone)
}

/// The `castor-demo` guest kernel ELF for tests: [`build_demo`], done at most once per process.
pub fn demo() -> Result<&'static Path> {
    static ELF: OnceLock<Result<PathBuf>> = OnceLock::new();
    let elf = ELF.get_or_init(|| build_demo(BuildOutput::Capture));
    elf.as_deref().map_err(Clone::clone)
}
