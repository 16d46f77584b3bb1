//! QEMU configuration and command lines.

use crate::accel::Accel;
use crate::image::BootModule;
use std::path::Path;

/// How QEMU boots Castor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QemuBoot {
    /// `-kernel ELF -append ARGS`: QEMU's own Multiboot 1 loader (fast, no firmware menu).
    Kernel,
    /// `-cdrom ISO -boot d`: SeaBIOS and GRUB, Multiboot 2, like Bochs and bare metal.
    Cdrom,
}

/// A QEMU emulator setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qemu {
    /// Boot path.
    pub boot: QemuBoot,
    /// `-machine` type (`q35` or `pc`).
    pub machine: String,
    /// Accelerator; `None` means [`Accel::detect`].
    pub accel: Option<Accel>,
    /// `-icount shift=VALUE,sleep=off` (e.g. `"3"` or `"auto"`): emulated time follows the
    /// instruction count instead of the host clock; `None` leaves it off unless
    /// `$CASTOR_QEMU_ICOUNT` is set, empty keeps it off. See [`Qemu::icount`].
    pub icount: Option<String>,
    /// Extra arguments appended as-is (NICs, netdevs, ...).
    pub extra_args: Vec<String>,
}

/// Environment variable that turns on `-icount` for runs that do not choose themselves.
pub const ICOUNT_ENV: &str = "CASTOR_QEMU_ICOUNT";

/// Everything about one run that ends up on QEMU's command line.
#[derive(Debug, Clone)]
pub struct QemuParams<'a> {
    /// The kernel ELF ([`QemuBoot::Kernel`]) or the ISO ([`QemuBoot::Cdrom`]).
    pub image: &'a Path,
    /// Castor's command line (only used with [`QemuBoot::Kernel`]; an ISO carries its own).
    pub cmdline: &'a str,
    /// Boot modules, passed with `-initrd` for [`QemuBoot::Kernel`].
    pub modules: &'a [BootModule],
    /// Number of CPUs.
    pub cpus: u32,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// The file the first serial port writes to.
    pub serial: &'a Path,
    /// A unix socket the harness listens on for the first serial port's input
    /// ([`crate::serial_input`]); the port then writes to `serial` through the socket
    /// character device's log file.
    pub serial_input: Option<&'a Path>,
    /// The monitor's unix socket.
    pub monitor: &'a Path,
    /// The accelerator to use.
    pub accel: Accel,
}

impl Qemu {
    /// Boots the kernel ELF directly with `-kernel`.
    pub fn kernel() -> Self {
        Self {
            boot: QemuBoot::Kernel,
            machine: "q35".into(),
            accel: None,
            icount: None,
            extra_args: Vec::new(),
        }
    }

    /// Derives emulated time from the instruction count (`-icount shift=SHIFT,sleep=off`,
    /// 2^SHIFT ns per instruction). Under plain TCG emulated time follows the host clock, so a
    /// loaded host makes the guest miss timer ticks; with icount it cannot, at the price of
    /// running all vCPUs on one host thread. Ignored under KVM.
    pub fn icount(mut self, shift: &str) -> Self {
        self.icount = Some(shift.into());
        self
    }

    /// Emulated time follows the host clock whatever `$CASTOR_QEMU_ICOUNT` says: for runs
    /// that compare a guest's timers with the host's (with icount and `sleep=off` an idle
    /// guest's sleep takes no host time at all).
    pub fn host_clock(mut self) -> Self {
        self.icount = Some(String::new());
        self
    }

    /// Applies `$CASTOR_QEMU_ICOUNT` if this setup did not choose an icount itself.
    pub fn with_env_defaults(mut self) -> Self {
        if self.icount.is_none() {
            self.icount = std::env::var(ICOUNT_ENV).ok().filter(|v| !v.is_empty());
        }
        self
    }

    /// Boots a GRUB ISO with `-cdrom`.
    pub fn cdrom() -> Self {
        Self {
            boot: QemuBoot::Cdrom,
            ..Self::kernel()
        }
    }

    /// Appends extra command-line arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The program to run.
    pub fn program(&self) -> &'static str {
        "qemu-system-x86_64"
    }

    /// The full argument list for one run.
    pub fn command_args(&self, p: &QemuParams<'_>) -> Vec<String> {
        let mut args: Vec<String> = vec!["-machine".into(), self.machine.clone()];
        args.extend(p.accel.qemu_args().map(String::from));
        args.extend([
            "-smp".into(),
            p.cpus.to_string(),
            "-m".into(),
            format!("{}M", p.memory_mib),
        ]);
        // `-display none` rather than `-nographic`: the latter turns on SeaBIOS' serial console,
        // which would mix firmware output into the kernel's log.
        args.extend(["-display", "none", "-no-reboot"].map(String::from));
        args.extend(serial_args(p.serial, p.serial_input));
        args.extend([
            "-monitor".into(),
            format!("unix:{},server,nowait", p.monitor.display()),
        ]);
        args.extend(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"].map(String::from));
        let icount = self.icount.as_ref().filter(|s| !s.is_empty());
        if let Some(shift) = icount.filter(|_| p.accel == Accel::Tcg) {
            args.extend(["-icount".into(), format!("shift={shift},sleep=off")]);
        }
        match self.boot {
            QemuBoot::Kernel => {
                args.extend(["-kernel".into(), p.image.display().to_string()]);
                args.extend(["-append".into(), p.cmdline.to_string()]);
                if !p.modules.is_empty() {
                    args.extend(["-initrd".into(), initrd_arg(p.modules)]);
                }
            }
            QemuBoot::Cdrom => {
                args.extend(["-cdrom".into(), p.image.display().to_string()]);
                args.extend(["-boot".into(), "d".into()]);
            }
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// QEMU's Multiboot module list: `path args` entries separated by commas (commas doubled).
fn initrd_arg(modules: &[BootModule]) -> String {
    let entry = |m: &BootModule| {
        let text = match m.args.is_empty() {
            true => m.path.display().to_string(),
            false => format!("{} {}", m.path.display(), m.args),
        };
        text.replace(',', ",,")
    };
    modules.iter().map(entry).collect::<Vec<_>>().join(",")
}

/// QEMU's options for the first serial port: output to the file `log`, or with `input`, both
/// ways through that socket, whose other end writes the log ([`crate::serial_input`]; QEMU's
/// option syntax doubles commas in values).
fn serial_args(log: &Path, input: Option<&Path>) -> Vec<String> {
    let quote = |path: &Path| path.display().to_string().replace(',', ",,");
    match input {
        None => vec!["-serial".into(), format!("file:{}", log.display())],
        Some(socket) => vec![
            "-chardev".into(),
            format!("socket,id=com1,path={},server=off", quote(socket)),
            "-serial".into(),
            "chardev:com1".into(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn params<'a>(modules: &'a [BootModule]) -> QemuParams<'a> {
        QemuParams {
            image: Path::new("/k/castor"),
            cmdline: "selftest=all cpus=4",
            modules,
            cpus: 4,
            memory_mib: 256,
            serial: Path::new("/r/serial.log"),
            serial_input: None,
            monitor: Path::new("/r/monitor.sock"),
            accel: Accel::Tcg,
        }
    }

    #[test]
    fn kernel_boot_command_line() {
        let args = Qemu::kernel()
            .args(["-s"])
            .command_args(&params(&[]))
            .join(" ");
        assert_eq!(
            args,
            "-machine q35 -accel tcg -cpu max -smp 4 -m 256M -display none -no-reboot \
             -serial file:/r/serial.log -monitor unix:/r/monitor.sock,server,nowait \
             -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
             -kernel /k/castor -append selftest=all cpus=4 -s"
        );
    }

    #[test]
    fn cdrom_boot_uses_the_iso_and_kvm_when_asked() {
        let mut p = params(&[]);
        p.accel = Accel::Kvm;
        let args = Qemu::cdrom().icount("3").command_args(&p).join(" ");
        assert!(!args.contains("-icount"), "icount is a TCG option");
        assert!(args.contains("-accel kvm -cpu host"));
        assert!(args.ends_with("-cdrom /k/castor -boot d"));
        assert!(!args.contains("-append"));
    }

    #[test]
    fn serial_input_connects_the_port_to_the_harness_socket_and_logs_its_output() {
        let mut p = params(&[]);
        p.serial_input = Some(Path::new("/s/a,b.sock"));
        let args = Qemu::kernel().command_args(&p).join(" ");
        assert!(!args.contains("-serial file:"));
        assert!(args.contains(
            " -chardev socket,id=com1,path=/s/a,,b.sock,server=off \
             -serial chardev:com1 "
        ));
    }

    #[test]
    fn icount_under_tcg() {
        let args = Qemu::kernel()
            .icount("auto")
            .command_args(&params(&[]))
            .join(" ");
        assert!(args.contains(" -icount shift=auto,sleep=off "));
        let args = Qemu::kernel().host_clock().with_env_defaults();
        assert!(
            !args
                .command_args(&params(&[]))
                .join(" ")
                .contains("-icount")
        );
    }

    #[test]
    fn modules_become_initrd_entries() {
        let m = |name: &str, args: &str| BootModule {
            name: name.into(),
            path: PathBuf::from(format!("/m/{name}")),
            args: args.into(),
        };
        let modules = [m("a", "x=1,2"), m("b", "")];
        let args = Qemu::kernel().command_args(&params(&modules));
        let i = args.iter().position(|a| a == "-initrd").unwrap();
        assert_eq!(args[i + 1], "/m/a x=1,,2,/m/b");
    }
}
