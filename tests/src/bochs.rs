//! Bochs configuration (`bochsrc`) and command lines.
//!
//! Bochs boots Castor's GRUB ISO from an emulated CD. Its only headless display is `term`,
//! so the harness runs it under a pseudo-terminal ([`crate::pty`]). The Debian build has the
//! debugger compiled in, so it starts with `-rc` holding `c` (continue).

use std::path::Path;

/// The BIOS image from Debian's `bochsbios`.
pub const BIOS: &str = "/usr/share/bochs/BIOS-bochs-latest";
/// The VGA BIOS from Debian's `vgabios`.
pub const VGA_BIOS: &str = "/usr/share/vgabios/vgabios.bin";
/// The default CPU model: Intel with VMX, EPT, PML, unrestricted guest and VPID.
pub const DEFAULT_CPU_MODEL: &str = "corei7_skylake_x";
/// The AMD model with SVM and NPT.
pub const AMD_CPU_MODEL: &str = "ryzen";
/// Default emulated instructions per emulated second.
///
/// The BIOS waits seconds of emulated time before booting, and with more than one CPU Bochs
/// cannot skip that wait, so it costs `ips` × seconds instructions: a low rate boots SMP
/// machines about three times faster than 100M. Emulated time then runs faster than wall time.
pub const DEFAULT_IPS: u64 = 20_000_000;

/// A Bochs emulator setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bochs {
    /// `cpu: model=` value.
    pub cpu_model: String,
    /// `cpu: ips=` value (instructions per emulated second).
    pub ips: u64,
    /// Extra `bochsrc` lines appended as-is (NICs, PCI slots, ...).
    pub extra_config: Vec<String>,
}

/// Everything about one run that ends up in the `bochsrc`.
#[derive(Debug, Clone)]
pub struct BochsParams<'a> {
    /// The GRUB ISO to boot.
    pub iso: &'a Path,
    /// Number of CPUs (Bochs accepts a plain count).
    pub cpus: u32,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// The file COM1 writes to.
    pub serial: &'a Path,
    /// Bochs' own log file.
    pub log: &'a Path,
}

impl Default for Bochs {
    fn default() -> Self {
        Self {
            cpu_model: DEFAULT_CPU_MODEL.into(),
            ips: DEFAULT_IPS,
            extra_config: Vec::new(),
        }
    }
}

impl Bochs {
    /// Bochs with the given CPU model (e.g. [`DEFAULT_CPU_MODEL`] or [`AMD_CPU_MODEL`]).
    pub fn model(cpu_model: &str) -> Self {
        Self {
            cpu_model: cpu_model.into(),
            ..Self::default()
        }
    }

    /// Appends extra `bochsrc` lines.
    pub fn config<I: IntoIterator<Item = S>, S: Into<String>>(mut self, lines: I) -> Self {
        self.extra_config.extend(lines.into_iter().map(Into::into));
        self
    }

    /// The program to run.
    pub fn program(&self) -> &'static str {
        "bochs"
    }

    /// The debugger commands file: just continue.
    pub fn debugger_commands(&self) -> &'static str {
        "c\n"
    }

    /// The arguments for `bochs`, given the paths of the config and debugger command files.
    pub fn command_args(&self, bochsrc: &Path, commands: &Path) -> Vec<String> {
        let (rc, cmds) = (
            bochsrc.display().to_string(),
            commands.display().to_string(),
        );
        vec!["-q".into(), "-f".into(), rc, "-rc".into(), cmds]
    }

    /// The `bochsrc` for one run.
    pub fn bochsrc(&self, p: &BochsParams<'_>) -> String {
        let mut lines = vec![
            format!("megs: {}", p.memory_mib),
            // A triple fault ends the run (a Bochs panic) instead of rebooting into GRUB.
            format!(
                "cpu: model={}, count={}, ips={}, reset_on_triple_fault=0",
                self.cpu_model, p.cpus, self.ips
            ),
            format!("romimage: file={BIOS}"),
            format!("vgaromimage: file={VGA_BIOS}"),
            format!(
                "ata0-master: type=cdrom, path={}, status=inserted",
                p.iso.display()
            ),
            "boot: cdrom".into(),
            format!("com1: enabled=1, mode=file, dev={}", p.serial.display()),
            "display_library: term".into(),
            "speaker: enabled=0".into(),
            "sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy".into(),
            format!("log: {}", p.log.display()),
            "error: action=report".into(),
            "panic: action=fatal".into(),
            "port_e9_hack: enabled=1".into(),
            "clock: sync=none".into(),
        ];
        lines.extend(self.extra_config.iter().cloned());
        lines.join("\n") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bochsrc_has_everything_a_headless_run_needs() {
        let p = BochsParams {
            iso: Path::new("/r/castor.iso"),
            cpus: 2,
            memory_mib: 256,
            serial: Path::new("/r/serial.log"),
            log: Path::new("/r/bochs.log"),
        };
        let rc = Bochs::model(AMD_CPU_MODEL)
            .config(["pci: enabled=1"])
            .bochsrc(&p);
        for line in [
            "megs: 256",
            "cpu: model=ryzen, count=2, ips=20000000, reset_on_triple_fault=0",
            "romimage: file=/usr/share/bochs/BIOS-bochs-latest",
            "vgaromimage: file=/usr/share/vgabios/vgabios.bin",
            "ata0-master: type=cdrom, path=/r/castor.iso, status=inserted",
            "boot: cdrom",
            "com1: enabled=1, mode=file, dev=/r/serial.log",
            "display_library: term",
            "log: /r/bochs.log",
            "panic: action=fatal",
            "port_e9_hack: enabled=1",
            "clock: sync=none",
            "pci: enabled=1",
        ] {
            assert!(rc.lines().any(|l| l == line), "missing {line:?} in\n{rc}");
        }
        assert!(rc.ends_with("pci: enabled=1\n"), "extra lines come last");
    }

    #[test]
    fn default_model_is_skylake_x() {
        assert_eq!(Bochs::default().cpu_model, "corei7_skylake_x");
        let args = Bochs::default().command_args(Path::new("rc"), Path::new("cmds"));
        assert_eq!(args, ["-q", "-f", "rc", "-rc", "cmds"]);
    }
}
