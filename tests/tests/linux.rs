//! A stock Linux kernel boots under Castor by the Linux/x86 32-bit boot protocol
//! (Documentation/arch/x86/boot.rst): Debian's cloud kernel, with an initramfs given as the
//! second boot module, under QEMU (AMD-V under TCG; the host's own vendor under KVM) and under
//! Bochs (VT-x).
//!
//! The kernel is not in the repository: `CASTOR_LINUX_BZIMAGE=PATH` names one, otherwise the test
//! fetches Debian's `linux-image-cloud-amd64` once with `apt-get download` into the target
//! directory. Offline, without either, the test says `SKIPPED` and why, and passes — except
//! under CI (`CI` set, as `.ci/run` runs), where a kernel must be had and its absence fails.
//!
//! What is checked is what Linux prints before it first needs a platform device Castor does not
//! model yet (it stops at its first local APIC access for now): its banner, the command line
//! Castor passed, the e820 map from the zero page, and the initrd (RAMDISK) placed at the top
//! of guest RAM.

use castor_tests::{Emulator, Run, contract};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Guest RAM (MiB): Debian's kernel needs about 68 MiB from 16 MiB up before it reads its
/// memory map.
const GUEST_RAM_MIB: u64 = 128;
/// The kernel's command line: early serial console, no address randomisation, reboot (which
/// Castor reports as the guest stopping) instead of hanging on a panic.
const ARGS: &str = "earlyprintk=serial,ttyS0,115200 console=ttyS0 nokaslr panic=-1";

/// Runs `cmd`, returning its stdout or why it failed.
fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// A Linux bzImage: `CASTOR_LINUX_BZIMAGE`, or Debian's cloud kernel fetched (once) into the
/// target directory. The tests of this file run in parallel: the first to ask fetches, the
/// others wait for its result instead of racing it on the same directory.
fn bzimage() -> Result<PathBuf, String> {
    static KERNEL: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    KERNEL.get_or_init(fetch_bzimage).clone()
}

/// [`bzimage`]'s work, done once per test binary.
fn fetch_bzimage() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("CASTOR_LINUX_BZIMAGE") {
        return Ok(PathBuf::from(path));
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("linux-image");
    let vmlinuz = dir.join("vmlinuz");
    if vmlinuz.is_file() {
        return Ok(vmlinuz);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // The metapackage depends on the current versioned image package.
    let depends = output(Command::new("apt-cache").args(["depends", "linux-image-cloud-amd64"]))?;
    let package = depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .ok_or("apt-cache names no linux-image package for linux-image-cloud-amd64")?;
    output(
        Command::new("apt-get")
            .args(["download", package])
            .current_dir(&dir),
    )?;
    let deb = std::fs::read_dir(&dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or("apt-get download left no .deb")?;
    output(
        Command::new("sh")
            .args([
                "-c",
                "dpkg-deb --fsys-tarfile \"$1\" | tar -x -C \"$2\" ./boot",
            ])
            .args(["sh".as_ref(), deb.as_os_str(), dir.as_os_str()]),
    )?;
    let image = std::fs::read_dir(dir.join("boot"))
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .ok_or("the package holds no /boot/vmlinuz-*")?;
    std::fs::rename(&image, &vmlinuz).map_err(|e| e.to_string())?;
    // Only the kernel is kept.
    let _ = std::fs::remove_file(&deb);
    Ok(vmlinuz)
}

/// One `newc` cpio entry (the initramfs format, Documentation/driver-api/early-userspace/
/// buffer-format.rst): header, NUL-terminated name and data, each padded to 4 bytes.
fn cpio_entry(name: &str, mode: u32, data: &[u8]) -> Vec<u8> {
    let name = format!("{name}\0");
    let fields = [
        0,
        mode,
        0,
        0,
        1,
        0,
        data.len() as u32,
        0,
        0,
        0,
        0,
        name.len() as u32,
        0,
    ];
    let mut out = b"070701".to_vec();
    for field in fields {
        out.extend(format!("{field:08X}").bytes());
    }
    out.extend(name.bytes());
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend(data);
    out.resize(out.len().next_multiple_of(4), 0);
    out
}

/// A small initramfs: one file and the trailer.
fn initramfs() -> PathBuf {
    let mut cpio = cpio_entry("castor", 0o100_644, b"hello from the initrd\n");
    cpio.extend(cpio_entry("TRAILER!!!", 0, &[]));
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("castor-initramfs.cpio");
    std::fs::write(&path, cpio).expect("writing the initramfs");
    path
}

#[test]
fn qemu_boots_a_stock_linux_kernel_with_an_initrd() {
    boot_linux(Emulator::qemu(), Duration::from_secs(240));
}

#[test]
fn bochs_boots_a_stock_linux_kernel_with_an_initrd_under_vt_x() {
    boot_linux(Emulator::bochs(), Duration::from_secs(600));
}

/// Boots the kernel with [`ARGS`] and an initramfs under `emulator` and checks what Linux
/// prints.
fn boot_linux(emulator: Emulator, timeout: Duration) {
    let kernel = match bzimage() {
        Ok(kernel) => kernel,
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!(
                "no Linux kernel to boot under CI (Debian's registry should be reachable): {why}"
            )
        }
        Err(why) => {
            eprintln!("SKIPPED: no Linux kernel to boot (set CASTOR_LINUX_BZIMAGE=PATH): {why}");
            return;
        }
    };
    let initrd = initramfs();
    let outcome = Run::new(emulator)
        .cmdline(&format!("guest=module guest_ram={GUEST_RAM_MIB}"))
        .memory_mib(GUEST_RAM_MIB as u32 + 128)
        .module("guest", &kernel, ARGS)
        .module("module1", &initrd, "")
        .timeout(timeout)
        .start()
        .expect("starting the emulator")
        .wait_exit();
    let why = outcome.summary();
    contract::assert_booted(&outcome, 1);
    outcome.expect_line("guest: Linux boot protocol 2.");
    outcome.expect_line("kernel with 1 module(s)");
    let start = contract::guest_start(outcome.lines()).expect("a `guest: starting` line");
    assert_eq!(
        (start.cmdline.as_str(), start.ram_mib),
        (ARGS, GUEST_RAM_MIB),
        "{why}"
    );
    let output = contract::guest_output(outcome.lines());
    let printed = |text: &str| output.iter().any(|l| l.contains(text));
    let top = (GUEST_RAM_MIB << 20) - 1;
    for text in [
        "Linux version ".to_string(),
        format!("Command line: {ARGS}"),
        "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable".into(),
        "BIOS-e820: [mem 0x000000000009fc00-0x00000000000fffff] reserved".into(),
        format!("BIOS-e820: [mem 0x0000000000100000-{top:#018x}] usable"),
        // The initramfs (140 bytes) in the last page of guest RAM.
        format!("RAMDISK: [mem {:#010x}-{top:#010x}]", top - 4095),
    ] {
        assert!(printed(&text), "Linux did not print {text:?} ({why})");
    }
    assert!(
        outcome.line_with("PANIC").is_none(),
        "Castor panicked ({why})"
    );
}
