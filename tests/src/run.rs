//! Starting a run ([`Run`]) and watching it ([`RunHandle`]).
//!
//! A run is one emulator booting Castor once, in its own directory, with a hard timeout.
//! Several runs can live side by side (tests run in parallel; a later test may start a
//! primary and a backup that talk over emulated NICs via the emulators' extra arguments).
//! [`crate::handle`] watches a started run.

use crate::accel::Accel;
use crate::bochs::BochsParams;
use crate::emulator::Emulator;
use crate::error::{Context, Error, Result};
use crate::handle::RunHandle;
use crate::image::{self, BootModule, IsoSpec, Loader};
use crate::netns::NetNamespace;
use crate::process::Process;
use crate::pty::{self, Pty};
use crate::qemu::{QemuBoot, QemuParams};
use crate::rundir::RunDir;
use crate::serial::{self, SerialLog};
use crate::serial_input::SerialInput;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Default timeout of a QEMU run.
pub const QEMU_TIMEOUT: Duration = Duration::from_secs(60);
/// Default timeout of a Bochs run (GRUB alone takes seconds there).
pub const BOCHS_TIMEOUT: Duration = Duration::from_secs(300);
/// Bytes of terminal output kept for diagnostics.
const TERMINAL_TAIL: usize = 64 * 1024;

/// A run to start: the emulator, the machine and Castor's command line.
pub struct Run {
    emulator: Emulator,
    name: Option<String>,
    cpus: u32,
    memory_mib: u32,
    cmdline: String,
    timeout: Option<Option<Duration>>,
    fail_markers: Vec<String>,
    modules: Vec<BootModule>,
    kernel: Option<PathBuf>,
    loader: Loader,
    echo: Option<Box<dyn Write + Send>>,
    netns: Option<Arc<NetNamespace>>,
    serial_input: Option<SerialInput>,
}

impl Run {
    /// A run of `emulator` with 1 CPU, 256 MiB, an empty command line, the emulator's default
    /// timeout and [`serial::DEFAULT_FAIL_MARKERS`].
    pub fn new(emulator: Emulator) -> Run {
        Run {
            emulator,
            name: None,
            cpus: 1,
            memory_mib: 256,
            cmdline: String::new(),
            timeout: None,
            fail_markers: serial::DEFAULT_FAIL_MARKERS
                .iter()
                .map(|m| m.to_string())
                .collect(),
            modules: Vec::new(),
            kernel: None,
            loader: Loader::Multiboot2,
            echo: None,
            netns: None,
            serial_input: None,
        }
    }

    /// Names the run directory (default: the current thread's name, i.e. the test's name).
    pub fn name(mut self, name: &str) -> Run {
        self.name = Some(name.into());
        self
    }

    /// Number of CPUs the machine has.
    pub fn cpus(mut self, cpus: u32) -> Run {
        self.cpus = cpus;
        self
    }

    /// Guest memory in MiB.
    pub fn memory_mib(mut self, mib: u32) -> Run {
        self.memory_mib = mib;
        self
    }

    /// Castor's kernel command line.
    pub fn cmdline(mut self, cmdline: &str) -> Run {
        self.cmdline = cmdline.into();
        self
    }

    /// Hard limit on the run's wall time, after which the emulator is killed.
    pub fn timeout(mut self, timeout: Duration) -> Run {
        self.timeout = Some(Some(timeout));
        self
    }

    /// No time limit (interactive use only; tests always need one).
    pub fn no_timeout(mut self) -> Run {
        self.timeout = Some(None);
        self
    }

    /// Replaces the markers whose appearance on the console means the kernel failed.
    pub fn fail_markers(mut self, markers: &[&str]) -> Run {
        self.fail_markers = markers.iter().map(|m| m.to_string()).collect();
        self
    }

    /// Adds a boot module: `module2 /boot/NAME ARGS` on an ISO; with QEMU `-kernel`, `-initrd
    /// "NAME ARGS"` with NAME a link to `path` in the run directory (so the module's Multiboot
    /// command line reads `NAME ARGS` there, and paths with spaces or commas need no escaping).
    /// NAME must be a plain file name.
    pub fn module(mut self, name: &str, path: impl Into<PathBuf>, args: &str) -> Run {
        let module = BootModule {
            name: name.into(),
            path: path.into(),
            args: args.into(),
        };
        self.modules.push(module);
        self
    }

    /// Boots this kernel ELF instead of the one [`crate::kernel::elf`] provides.
    pub fn kernel(mut self, elf: impl Into<PathBuf>) -> Run {
        self.kernel = Some(elf.into());
        self
    }

    /// Boots the Linux bzImage `kernel` on the bare emulator instead of Castor, with the
    /// command line as its own and the modules as its initrd (QEMU's `-kernel`/`-initrd`;
    /// GRUB's `linux`/`initrd` on an ISO): the native run a guest under Castor is compared
    /// with.
    pub fn linux(mut self, kernel: impl Into<PathBuf>) -> Run {
        self.kernel = Some(kernel.into());
        self.loader = Loader::Linux;
        self
    }

    /// Runs the emulator inside the private network namespace `netns` (shared with the other
    /// runs it should reach; see [`NetNamespace`]).
    pub fn netns(mut self, netns: &Arc<NetNamespace>) -> Run {
        self.netns = Some(Arc::clone(netns));
        self
    }

    /// The command starting `program`, inside the run's network namespace if it has one.
    fn command(&self, program: &str) -> Command {
        match &self.netns {
            Some(netns) => netns.command(program),
            None => Command::new(program),
        }
    }

    /// Copies the serial console to `sink` live, as it is read.
    pub fn echo_serial(mut self, sink: Box<dyn Write + Send>) -> Run {
        self.echo = Some(sink);
        self
    }

    /// Lets `input` type into the serial console (QEMU only: see [`crate::serial_input`]).
    pub fn serial_input(mut self, input: SerialInput) -> Run {
        self.serial_input = Some(input);
        self
    }

    /// Builds what the run needs (kernel, ISO) and starts the emulator.
    pub fn start(self) -> Result<RunHandle> {
        let kernel = match &self.kernel {
            Some(elf) => elf.clone(),
            None => crate::kernel::elf()?.to_path_buf(),
        };
        let name = self.name.clone().unwrap_or_else(|| {
            thread::current()
                .name()
                .filter(|n| *n != "main")
                .unwrap_or(self.emulator.name())
                .to_string()
        });
        let accel = match &self.emulator {
            Emulator::Qemu(qemu) => qemu.accel.map_or_else(Accel::detect, Ok)?,
            Emulator::Bochs(_) => Accel::Tcg,
        };
        let mut dir = RunDir::create(&name)?;
        let image = match self.emulator.needs_iso() {
            true => {
                let iso = dir.path().join("castor.iso");
                let spec = IsoSpec {
                    kernel,
                    cmdline: self.cmdline.clone(),
                    modules: self.modules.clone(),
                    loader: self.loader,
                };
                spec.build(&iso, dir.path())?;
                iso
            }
            false => kernel,
        };
        let started = Instant::now();
        let (process, monitor_path) = match &self.emulator {
            Emulator::Qemu(_) => self.spawn_qemu(&mut dir, &image, accel)?,
            Emulator::Bochs(_) => (self.spawn_bochs(&mut dir, &image)?, None),
        };
        let timeout = self.timeout.unwrap_or(Some(match self.emulator {
            Emulator::Qemu(_) => QEMU_TIMEOUT,
            Emulator::Bochs(_) => BOCHS_TIMEOUT,
        }));
        let mut serial = SerialLog::new(dir.serial_log());
        if let Some(echo) = self.echo {
            serial.echo_to(echo);
        }
        Ok(RunHandle {
            process,
            serial,
            monitor_path,
            monitor: None,
            fail_markers: self.fail_markers,
            started,
            deadline: timeout.map(|t| started + t),
            emulator: self.emulator.name(),
            dir: Some(dir),
            _netns: self.netns,
        })
    }

    fn spawn_qemu(
        &self,
        dir: &mut RunDir,
        image: &Path,
        accel: Accel,
    ) -> Result<(Process, Option<PathBuf>)> {
        let Emulator::Qemu(qemu) = &self.emulator else {
            unreachable!("called for QEMU only")
        };
        let qemu = qemu.clone().with_env_defaults();
        let monitor = dir.socket("monitor.sock")?;
        let serial = dir.serial_log();
        let serial_input = match &self.serial_input {
            Some(input) => {
                let socket = dir.socket("serial.sock")?;
                input.serve(&socket, &serial)?;
                Some(socket)
            }
            None => None,
        };
        let modules = match qemu.boot {
            QemuBoot::Kernel => link_modules(&self.modules, dir.path())?,
            QemuBoot::Cdrom => Vec::new(), // on the ISO
        };
        let params = QemuParams {
            image,
            cmdline: &self.cmdline,
            modules: &modules,
            cpus: self.cpus,
            memory_mib: self.memory_mib,
            serial: &serial,
            serial_input: serial_input.as_deref(),
            monitor: &monitor,
            accel,
        };
        let log = File::create(dir.log_file("qemu.log")).context("creating qemu.log")?;
        let mut cmd = self.command(qemu.program());
        cmd.args(qemu.command_args(&params))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("qemu.log")?)
            .stderr(log);
        let process = Process::spawn(cmd, false).context(format!("starting {}", qemu.program()))?;
        Ok((process, Some(monitor)))
    }

    fn spawn_bochs(&self, dir: &mut RunDir, iso: &Path) -> Result<Process> {
        let Emulator::Bochs(bochs) = &self.emulator else {
            unreachable!("called for Bochs only")
        };
        if self.serial_input.is_some() {
            return Err(Error::new(
                "serial input needs QEMU; Bochs' console is a file",
            ));
        }
        let serial = dir.serial_log();
        let log = dir.log_file("bochs.log");
        let params = BochsParams {
            iso,
            cpus: self.cpus,
            memory_mib: self.memory_mib,
            serial: &serial,
            log: &log,
        };
        let (rc, commands) = (
            dir.path().join("bochsrc"),
            dir.path().join("bochs-commands"),
        );
        fs::write(&rc, bochs.bochsrc(&params)).context("writing bochsrc")?;
        fs::write(&commands, bochs.debugger_commands()).context("writing the Bochs commands")?;
        let pty = Pty::open().context("opening a pty for Bochs")?;
        let mut cmd = self.command(bochs.program());
        cmd.args(bochs.command_args(&rc, &commands))
            .current_dir(dir.path())
            .env("TERM", "xterm")
            .stdin(pty.slave_stdio().context("pty")?)
            .stdout(pty.slave_stdio().context("pty")?)
            .stderr(pty.slave_stdio().context("pty")?);
        let process = Process::spawn(cmd, true).context(format!("starting {}", bochs.program()))?;
        let Pty { master, slave } = pty;
        drop(slave); // the drain thread sees EOF once Bochs has gone
        dir.set_terminal(pty::drain(master, TERMINAL_TAIL));
        Ok(process)
    }
}

/// Links each module into `dir` under its name and returns the modules with those relative
/// paths (QEMU runs in `dir`).
fn link_modules(modules: &[BootModule], dir: &Path) -> Result<Vec<BootModule>> {
    let mut linked = Vec::new();
    for module in modules {
        image::check_module_name(&module.name)?;
        let target = fs::canonicalize(&module.path)
            .context(format!("boot module {}", module.path.display()))?;
        std::os::unix::fs::symlink(&target, dir.join(&module.name))
            .context(format!("linking boot module {}", module.name))?;
        linked.push(BootModule {
            path: PathBuf::from(&module.name),
            ..module.clone()
        });
    }
    Ok(linked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_linked_into_the_run_directory_under_their_names() {
        let dir = RunDir::create("unit-link").unwrap();
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let module = |name: &str, path: &Path| BootModule {
            name: name.into(),
            path: path.to_path_buf(),
            args: "a=1, b".into(),
        };
        let linked = link_modules(&[module("guest", &file)], dir.path()).unwrap();
        assert_eq!(linked, [module("guest", Path::new("guest"))]);
        let target = fs::read_link(dir.path().join("guest")).unwrap();
        assert_eq!(target, fs::canonicalize(&file).unwrap());
        let missing = module("other", Path::new("/nonexistent/module"));
        assert!(link_modules(&[missing], dir.path()).is_err());
        assert!(link_modules(&[module("../x", &file)], dir.path()).is_err());
    }
}
