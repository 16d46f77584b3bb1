//! Watching a started run: [`RunHandle`] waits for serial markers or the emulator's exit,
//! talks to QEMU's monitor, and turns the run into an [`Outcome`].

use crate::error::{Context, Error, Result};
use crate::monitor::{self, Monitor, TlbEntry};
use crate::netns::NetNamespace;
use crate::outcome::Outcome;
use crate::process::Process;
use crate::rundir::RunDir;
use crate::serial::{self, Found, SerialLog};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How long [`RunHandle::wait_exit`] lets a kernel run on after a failure marker.
pub const FAILURE_GRACE: Duration = Duration::from_secs(5);
/// Serial log polling interval.
const POLL: Duration = Duration::from_millis(10);

/// Why [`RunHandle::wait_for`] gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitError {
    /// A failure marker appeared first.
    Failure {
        /// The marker.
        marker: String,
        /// The line it appeared on.
        line: String,
    },
    /// The emulator exited without printing the marker.
    Exited {
        /// Its exit status (`None` if killed by a signal).
        code: Option<i32>,
    },
    /// The run's deadline passed.
    TimedOut {
        /// Time since the start.
        after: Duration,
    },
    /// The harness itself failed (reading the log, ...).
    Harness(Error),
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::Failure { marker, line } => {
                write!(f, "failure marker {marker:?} in {line:?}")
            }
            WaitError::Exited { code: Some(code) } => {
                write!(f, "emulator exited with status {code}")
            }
            WaitError::Exited { code: None } => write!(f, "emulator was killed by a signal"),
            WaitError::TimedOut { after } => {
                write!(f, "timed out after {:.1}s", after.as_secs_f64())
            }
            WaitError::Harness(e) => write!(f, "harness error: {e}"),
        }
    }
}

impl std::error::Error for WaitError {}

/// A running emulator. Dropping it kills the emulator (and, while panicking, prints the
/// diagnostics and keeps the run directory).
pub struct RunHandle {
    // Declared first so it is dropped (the emulator killed) before the directory.
    pub(crate) process: Process,
    pub(crate) serial: SerialLog,
    pub(crate) monitor_path: Option<PathBuf>,
    pub(crate) monitor: Option<Monitor>,
    pub(crate) fail_markers: Vec<String>,
    pub(crate) started: Instant,
    pub(crate) deadline: Option<Instant>,
    pub(crate) emulator: &'static str,
    pub(crate) dir: Option<RunDir>,
    /// The private network namespace the emulator runs in, kept alive as long as it runs.
    pub(crate) _netns: Option<Arc<NetNamespace>>,
}

impl fmt::Debug for RunHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunHandle")
            .field("emulator", &self.emulator)
            .field("pid", &self.process.pid())
            .field("dir", &self.dir())
            .finish()
    }
}

impl RunHandle {
    /// The PID of the emulator (also its process group).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The run's directory.
    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("the directory lives until the handle is consumed")
            .path()
    }

    /// The serial output so far.
    pub fn serial(&mut self) -> Result<String> {
        self.serial.poll().context("reading the serial log")?;
        Ok(self.serial.text())
    }

    /// Waits for a serial line containing `marker` and returns it.
    ///
    /// Fails if a failure marker appears on an earlier line, the emulator exits first, or
    /// the run's deadline passes (the emulator keeps running then; drop the handle to kill it).
    /// The whole log is searched, so the order of several `wait_for` calls does not matter.
    pub fn wait_for(&mut self, marker: &str) -> Result<String, WaitError> {
        let mut first = true;
        loop {
            // Exit first, then the log: output written just before the exit is not missed.
            let exited = self.process.try_exit().context("checking the emulator");
            let exited = exited.map_err(WaitError::Harness)?;
            let new = self.serial.poll().context("reading the serial log");
            let new = new.map_err(WaitError::Harness)?;
            if new > 0 || first || exited.is_some() {
                let text = self.serial.text();
                match serial::scan(
                    serial::lines(&text, exited.is_some()),
                    Some(marker),
                    &self.fail_markers,
                ) {
                    Some(Found::Wanted(line)) => return Ok(line),
                    Some(Found::Failure { marker, line }) => {
                        return Err(WaitError::Failure { marker, line });
                    }
                    None => {}
                }
                first = false;
            }
            if let Some(status) = exited {
                return Err(WaitError::Exited {
                    code: status.code(),
                });
            }
            if self.past_deadline() {
                return Err(WaitError::TimedOut {
                    after: self.started.elapsed(),
                });
            }
            thread::sleep(POLL);
        }
    }

    /// Waits until the emulator exits, the deadline passes (then kills it), or a failure
    /// marker has been on the console for [`FAILURE_GRACE`] without the kernel exiting.
    pub fn wait_exit(mut self) -> Outcome {
        let mut failed_at: Option<Instant> = None;
        let mut timed_out = false;
        let mut first = true;
        loop {
            if matches!(self.process.try_exit(), Ok(Some(_)) | Err(_)) {
                break;
            }
            let new = self.serial.poll().unwrap_or(0);
            if (new > 0 || std::mem::take(&mut first)) && failed_at.is_none() {
                let text = self.serial.text();
                if serial::scan(serial::lines(&text, false), None, &self.fail_markers).is_some() {
                    failed_at = Some(Instant::now());
                }
            }
            if failed_at.is_some_and(|t| t.elapsed() >= FAILURE_GRACE) {
                break;
            }
            if self.past_deadline() {
                timed_out = true;
                break;
            }
            thread::sleep(POLL);
        }
        self.finish(timed_out)
    }

    /// SIGKILLs the emulator (its whole process group) now, as a host dies; its console stays
    /// readable, and [`RunHandle::stop`] then gives its outcome.
    pub fn kill(&mut self) -> Result<()> {
        self.process
            .kill()
            .map(drop)
            .context("killing the emulator")
    }

    /// Kills the emulator now (for kernels that halt or idle) and returns the outcome.
    pub fn stop(self) -> Outcome {
        self.finish(false)
    }

    /// Runs a QEMU monitor command and returns its output.
    pub fn monitor(&mut self, command: &str) -> Result<String> {
        if self.monitor.is_none() {
            let Some(path) = &self.monitor_path else {
                return Err(Error::new(format!("{} has no QEMU monitor", self.emulator)));
            };
            let limit = Instant::now() + Duration::from_secs(10);
            let deadline = self.deadline.map_or(limit, |d| d.min(limit));
            self.monitor = Some(Monitor::connect(path, deadline)?);
        }
        self.monitor
            .as_mut()
            .expect("connected above")
            .command(command)
    }

    /// The current page-table mappings of CPU 0, from QEMU's `info tlb`.
    pub fn info_tlb(&mut self) -> Result<Vec<TlbEntry>> {
        Ok(monitor::parse_info_tlb(&self.monitor("info tlb")?))
    }

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn finish(mut self, timed_out: bool) -> Outcome {
        let status = self.process.kill().ok();
        let _ = self.serial.poll();
        // A status is only the emulator's own when it exited before being killed.
        let exit_code = status.and_then(|s| s.code());
        let dir = self
            .dir
            .take()
            .expect("the directory lives until the handle is consumed");
        let serial = self.serial.text();
        Outcome::new(
            serial,
            exit_code,
            timed_out,
            &self.fail_markers,
            self.started.elapsed(),
            self.emulator,
            dir,
        )
    }
}
