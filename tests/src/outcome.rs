//! The result of a finished run, with helpers that assert on it.
//!
//! An `Outcome` owns the run's directory: if a test panics while it is alive (e.g. one of
//! the `expect_*` assertions fails), the full serial log and the emulator's log tails are
//! printed and the directory is kept.

use crate::rundir::RunDir;
use crate::serial;
use std::path::Path;
use std::time::Duration;

/// How a run ended and what the kernel printed.
#[derive(Debug)]
pub struct Outcome {
    /// The whole serial log.
    pub serial: String,
    /// The emulator's exit status; `None` if the harness killed it (timeout or stop).
    pub exit_code: Option<i32>,
    /// The run hit its timeout.
    pub timed_out: bool,
    /// The first line that matched one of the run's failure markers.
    pub failure: Option<String>,
    /// Wall time from start to end.
    pub elapsed: Duration,
    /// `"qemu"` or `"bochs"`.
    pub emulator: &'static str,
    dir: RunDir,
}

impl Outcome {
    pub(crate) fn new(
        serial: String,
        exit_code: Option<i32>,
        timed_out: bool,
        fail_markers: &[String],
        elapsed: Duration,
        emulator: &'static str,
        dir: RunDir,
    ) -> Outcome {
        let failure = match serial::scan(serial::lines(&serial, true), None, fail_markers) {
            Some(serial::Found::Failure { line, .. }) => Some(line),
            _ => None,
        };
        Outcome {
            serial,
            exit_code,
            timed_out,
            failure,
            elapsed,
            emulator,
            dir,
        }
    }

    /// The serial log's lines (without line terminators).
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        serial::lines(&self.serial, true)
    }

    /// The first line containing `marker`.
    pub fn line_with(&self, marker: &str) -> Option<&str> {
        self.lines().find(|l| l.contains(marker))
    }

    /// All lines containing `marker`.
    pub fn lines_with<'a>(&'a self, marker: &'a str) -> impl Iterator<Item = &'a str> {
        self.lines().filter(move |l| l.contains(marker))
    }

    /// The first line containing `marker`; panics (printing the diagnostics) if there is none.
    pub fn expect_line(&self, marker: &str) -> &str {
        match self.line_with(marker) {
            Some(line) => line,
            None => panic!(
                "{}: no serial line contains {marker:?} ({})",
                self.emulator,
                self.summary()
            ),
        }
    }

    /// Panics unless the emulator exited by itself with status `code`.
    pub fn expect_exit_code(&self, code: i32) {
        assert_eq!(
            self.exit_code,
            Some(code),
            "{}: wrong exit status ({})",
            self.emulator,
            self.summary()
        );
    }

    /// Panics if the run timed out.
    pub fn expect_no_timeout(&self) {
        assert!(
            !self.timed_out,
            "{}: timed out ({})",
            self.emulator,
            self.summary()
        );
    }

    /// A one-line account of how the run ended.
    pub fn summary(&self) -> String {
        let end = match (self.timed_out, self.exit_code) {
            (true, _) => "timed out".to_string(),
            (false, Some(code)) => format!("exited with status {code}"),
            (false, None) => "stopped by the harness".to_string(),
        };
        let failure = self
            .failure
            .as_deref()
            .map(|l| format!(", failure line {l:?}"))
            .unwrap_or_default();
        format!("{end} after {:.1}s{failure}", self.elapsed.as_secs_f64())
    }

    /// The run's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Keeps the run's directory after the outcome is dropped.
    pub fn keep_dir(&mut self) {
        self.dir.keep();
    }

    /// The serial log, emulator log tails and terminal tail, for a person.
    pub fn diagnostics(&self) -> String {
        self.dir.diagnostics()
    }

    /// The emulator's own log tails and terminal tail (without the serial log).
    pub fn emulator_logs(&self) -> String {
        self.dir.emulator_logs()
    }
}
