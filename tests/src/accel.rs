//! Choosing QEMU's accelerator: KVM only if it can really run a guest with VMX or SVM,
//! otherwise TCG. `CASTOR_ACCEL=tcg|kvm` overrides the probe.
//!
//! Having `/dev/kvm` is not enough (some paravirtual variants cannot run ordinary guests), so
//! the probe boots a tiny Multiboot guest under `-accel kvm -cpu host` that checks CPUID for
//! VMX or SVM, turns on long-mode paging and reports through the debug-exit port. The verdict
//! is cached in `target/castor-kvm-probe` for the current host boot.

use crate::error::{Context, Error, Result};
use crate::process::Process;
use std::fs;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Environment variable that forces the accelerator.
pub const ACCEL_ENV: &str = "CASTOR_ACCEL";

/// A QEMU accelerator with the CPU model that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Software emulation, `-accel tcg -cpu max` (offers SVM, not VMX).
    Tcg,
    /// Hardware virtualization, `-accel kvm -cpu host` (nested VMX/SVM).
    Kvm,
}

impl Accel {
    /// The QEMU arguments selecting this accelerator and its CPU model.
    pub fn qemu_args(self) -> [&'static str; 4] {
        match self {
            Accel::Tcg => ["-accel", "tcg", "-cpu", "max"],
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
        }
    }

    /// Parses `tcg` or `kvm`.
    pub fn parse(name: &str) -> Result<Accel> {
        match name {
            "tcg" => Ok(Accel::Tcg),
            "kvm" => Ok(Accel::Kvm),
            other => Err(Error::new(format!(
                "{ACCEL_ENV}={other:?}: expected tcg or kvm"
            ))),
        }
    }

    /// `$CASTOR_ACCEL` if set, otherwise the probe's verdict; decided once per process.
    pub fn detect() -> Result<Accel> {
        static ACCEL: OnceLock<Result<Accel>> = OnceLock::new();
        ACCEL
            .get_or_init(|| match std::env::var(ACCEL_ENV) {
                Ok(name) => Accel::parse(&name),
                Err(_) => Ok(match cached_probe() {
                    Ok(()) => Accel::Kvm,
                    Err(why) => {
                        eprintln!("castor-tests: not using KVM ({why}); using TCG");
                        Accel::Tcg
                    }
                }),
            })
            .clone()
    }
}

/// The probe's verdict, remembered in `target/` until the host reboots (it costs seconds).
fn cached_probe() -> Result<()> {
    let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let cache = crate::target_dir().join("castor-kvm-probe");
    let verdict = match fs::read_to_string(&cache)
        .ok()
        .as_deref()
        .and_then(|c| c.split_once('\n'))
    {
        Some((id, verdict)) if !boot_id.is_empty() && id == boot_id.trim() => verdict.to_string(),
        _ => {
            let verdict = kvm_runs_guests()
                .err()
                .map_or("ok".to_string(), |e| e.to_string());
            let _ = fs::create_dir_all(crate::target_dir());
            let _ = fs::write(&cache, format!("{}\n{verdict}", boot_id.trim()));
            verdict
        }
    };
    match verdict.as_str() {
        "ok" => Ok(()),
        why => Err(Error::new(why)),
    }
}

/// The exit status QEMU reports when the probe succeeded (debug-exit value 0x10).
const PROBE_PASS: i32 = 0x10 << 1 | 1;

/// Boots the probe guest under KVM; `Ok` if it reached long-mode paging with VMX or SVM.
fn kvm_runs_guests() -> Result<()> {
    let access = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm");
    access.context("/dev/kvm")?;
    let dir = std::env::temp_dir().join(format!("castor-kvm-probe-{}", std::process::id()));
    fs::create_dir_all(&dir).context("creating the probe directory")?;
    let image = dir.join("probe.bin");
    let result = fs::write(&image, probe_image())
        .context("writing the probe image")
        .and_then(|()| {
            let mut cmd = Command::new("qemu-system-x86_64");
            cmd.args(Accel::Kvm.qemu_args())
                .args([
                    "-machine",
                    "pc",
                    "-m",
                    "16M",
                    "-display",
                    "none",
                    "-no-reboot",
                ])
                .args(["-serial", "none", "-monitor", "none", "-nodefaults"])
                .args([
                    "-device",
                    "isa-debug-exit,iobase=0xf4,iosize=0x04",
                    "-kernel",
                ])
                .arg(&image)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut qemu = Process::spawn(cmd, false).context("starting qemu-system-x86_64")?;
            let deadline = Instant::now() + Duration::from_secs(20);
            match qemu
                .wait_until(Some(deadline))
                .context("waiting for the KVM probe")?
            {
                Some(status) if status.code() == Some(PROBE_PASS) => Ok(()),
                Some(status) => Err(Error::new(format!("KVM probe guest failed: {status}"))),
                None => Err(Error::new("KVM probe guest timed out")),
            }
        });
    let _ = fs::remove_dir_all(&dir);
    result
}

/// Load address of the probe (Multiboot's usual 1 MiB).
const LOAD: u32 = 0x10_0000;
/// Offset of the code after the Multiboot header.
const CODE: usize = 0x20;

/// 32-bit code, entered by the Multiboot loader in protected mode without paging:
///
/// ```text
///  mov $1,%eax; cpuid; bt $5,%ecx; jc 1f              # VMX?
///  mov $0x80000001,%eax; cpuid; bt $2,%ecx; jc 1f     # SVM?
///  mov $0x11,%al; out %al,$0xf4; hlt                   # neither: exit status 35
/// 1: mov $0x101000,%eax; mov %eax,%cr3                  # PML4 at +0x1000
///  mov %cr4,%eax; or $0x20,%eax; mov %eax,%cr4          # PAE
///  mov $0xc0000080,%ecx; rdmsr; or $0x100,%eax; wrmsr  # EFER.LME
///  mov %cr0,%eax; or $0x80000000,%eax; mov %eax,%cr0   # paging: long (compatibility) mode
///  mov $0x10,%al; out %al,$0xf4                        # exit status 33
/// 2: hlt; jmp 2b
/// ```
const PROBE_CODE: [u8; 80] = [
    0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0xa2, 0x0f, 0xba, 0xe1, 0x05, 0x72, 0x12, 0xb8, 0x01, 0x00,
    0x00, 0x80, 0x0f, 0xa2, 0x0f, 0xba, 0xe1, 0x02, 0x72, 0x05, 0xb0, 0x11, 0xe6, 0xf4, 0xf4, 0xb8,
    0x00, 0x10, 0x10, 0x00, 0x0f, 0x22, 0xd8, 0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0,
    0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00, 0x01, 0x00, 0x00, 0x0f, 0x30, 0x0f, 0x20,
    0xc0, 0x0d, 0x00, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0, 0xb0, 0x10, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd,
];

/// The probe as a flat Multiboot 1 image (a.out kludge): header, code, and identity-mapping
/// page tables (PML4 at +0x1000 → PDPT at +0x2000 → PD at +0x3000 with one 2 MiB page).
fn probe_image() -> Vec<u8> {
    let mut image = vec![0u8; 0x4000];
    let (magic, flags) = (0x1bad_b002u32, 1u32 << 16);
    let header = [
        magic,
        flags,
        magic.wrapping_add(flags).wrapping_neg(),
        LOAD,
        LOAD,
        0,
        0,
    ];
    for (i, word) in header.iter().chain([&(LOAD + CODE as u32)]).enumerate() {
        image[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
    }
    image[CODE..CODE + PROBE_CODE.len()].copy_from_slice(&PROBE_CODE);
    let tables = [
        (0x1000, u64::from(LOAD) + 0x2003),
        (0x2000, u64::from(LOAD) + 0x3003),
        (0x3000, 0x83),
    ];
    for (offset, entry) in tables {
        image[offset..offset + 8].copy_from_slice(&entry.to_le_bytes());
    }
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_header_is_a_valid_multiboot1_header() {
        let image = probe_image();
        let word = |i: usize| u32::from_le_bytes(image[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!(word(0), 0x1bad_b002);
        assert_eq!(word(0).wrapping_add(word(1)).wrapping_add(word(2)), 0);
        assert_eq!(word(7), LOAD + CODE as u32, "entry");
    }

    #[test]
    fn accel_names_parse() {
        assert_eq!(Accel::parse("kvm"), Ok(Accel::Kvm));
        assert_eq!(Accel::parse("tcg"), Ok(Accel::Tcg));
        assert!(Accel::parse("hvf").is_err());
    }
}
