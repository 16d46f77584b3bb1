//! Per-run directories: `target/castor-runs/<name>-<pid>-<n>`, holding the serial log, the
//! emulator's log, the ISO and config files; the run's unix sockets are in a short private
//! directory of their own ([`SocketDir`]), so they work from a checkout at any path.
//!
//! A directory is removed when its run is dropped, unless the thread is panicking (a failed
//! test: then the serial log and the emulator's log tails are printed and the directory kept),
//! [`RunDir::keep`] was called, or `CASTOR_KEEP_RUNS` is set.

use crate::error::{Context, Result};
use crate::pty::Tail;
use crate::sockdir::SocketDir;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Environment variable that keeps every run directory.
pub const KEEP_ENV: &str = "CASTOR_KEEP_RUNS";

/// Lines of each emulator log shown in diagnostics.
const LOG_TAIL_LINES: usize = 60;

/// Longest name part, to keep directory names readable.
const MAX_NAME: usize = 48;

/// A run's private directory.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    logs: Vec<PathBuf>,
    terminal: Option<Arc<Mutex<Tail>>>,
    keep: bool,
    /// Made when the first socket is asked for.
    sockets: Option<SocketDir>,
}

impl RunDir {
    /// Creates a fresh, empty directory for a run called `name` in `target/castor-runs/`.
    pub fn create(name: &str) -> Result<RunDir> {
        RunDir::create_in(&crate::target_dir().join("castor-runs"), name)
    }

    /// Creates a fresh, empty directory for a run called `name` in `parent`.
    pub fn create_in(parent: &Path, name: &str) -> Result<RunDir> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let leaf = format!("{}-{}-{n}", sanitize(name), std::process::id());
        let path = parent.join(leaf);
        if path.exists() {
            // Left over from an earlier process that had the same PID.
            fs::remove_dir_all(&path).context(format!("removing stale {}", path.display()))?;
        }
        fs::create_dir_all(&path).context(format!("creating {}", path.display()))?;
        Ok(RunDir {
            path,
            logs: Vec::new(),
            terminal: None,
            keep: false,
            sockets: None,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The serial log's path inside the directory.
    pub fn serial_log(&self) -> PathBuf {
        self.path.join("serial.log")
    }

    /// A file for the emulator's own log, shown (its tail) in diagnostics.
    pub fn log_file(&mut self, name: &str) -> PathBuf {
        let path = self.path.join(name);
        self.logs.push(path.clone());
        path
    }

    /// A path for the unix socket `name` of this run, in its private socket directory (made
    /// on first use, removed with the run), whatever this directory's own path.
    pub fn socket(&mut self, name: &str) -> Result<PathBuf> {
        let sockets = match &mut self.sockets {
            Some(sockets) => sockets,
            none => none.insert(SocketDir::create()?),
        };
        sockets.socket(name)
    }

    /// Shows the emulator's terminal output (its tail) in diagnostics.
    pub fn set_terminal(&mut self, tail: Arc<Mutex<Tail>>) {
        self.terminal = Some(tail);
    }

    /// Keeps the directory after the run.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// The full serial log, the emulator logs' tails and the terminal's tail, for a person.
    pub fn diagnostics(&self) -> String {
        let mut out = format!("==== castor run directory: {}\n", self.path.display());
        let serial = fs::read(self.serial_log()).unwrap_or_default();
        let _ = write!(
            out,
            "---- serial.log ----\n{}\n",
            String::from_utf8_lossy(&serial)
        );
        out + &self.emulator_logs()
    }

    /// The emulator logs' tails and the terminal's tail.
    pub fn emulator_logs(&self) -> String {
        let mut out = String::new();
        for log in &self.logs {
            let text = fs::read(log).unwrap_or_default();
            let text = String::from_utf8_lossy(&text);
            let name = log.file_name().unwrap_or_default().to_string_lossy();
            let _ = write!(
                out,
                "---- {name} (last {LOG_TAIL_LINES} lines) ----\n{}\n",
                last_lines(&text)
            );
        }
        if let Some(tail) = self.terminal.as_ref().and_then(|t| t.lock().ok()) {
            let text = tail.text();
            let _ = write!(
                out,
                "---- terminal (last {LOG_TAIL_LINES} lines) ----\n{}\n",
                last_lines(&text)
            );
        }
        out
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}==== kept {}", self.diagnostics(), self.path.display());
        } else if !self.keep && std::env::var_os(KEEP_ENV).is_none() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// A name safe for a directory: letters, digits, `-` and `_`, at most [`MAX_NAME`] characters.
fn sanitize(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let clean = clean.trim_matches('_');
    let clean = if clean.len() > MAX_NAME {
        &clean[clean.len() - MAX_NAME..]
    } else {
        clean
    };
    match clean.is_empty() {
        true => "run".into(),
        false => clean.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};

    #[test]
    fn names_are_sanitized_and_bounded() {
        assert_eq!(sanitize("boot::qemu_one_cpu"), "boot__qemu_one_cpu");
        assert_eq!(sanitize(""), "run");
        assert_eq!(sanitize(&"x".repeat(100)).len(), MAX_NAME);
    }

    #[test]
    fn directories_are_unique_and_removed_when_dropped() {
        let a = RunDir::create("unit").unwrap();
        let b = RunDir::create("unit").unwrap();
        assert_ne!(a.path(), b.path());
        let path = a.path().to_path_buf();
        assert!(path.is_dir());
        drop(a);
        assert!(!path.exists() || std::env::var_os(KEEP_ENV).is_some());
    }

    /// A run directory whose path is longer than a unix socket path may be still gets sockets
    /// that bind and connect (what a QEMU monitor needs), and they go with the run.
    #[test]
    fn sockets_work_from_a_deep_run_directory() {
        let deep = crate::target_dir()
            .join("castor-runs")
            .join(format!("deep-{}", std::process::id()))
            .join("a-checkout-at-an-ordinary-but-long-path".repeat(3));
        let mut dir = RunDir::create_in(&deep, "unit-sockets").unwrap();
        assert!(
            dir.path().as_os_str().len() > 108,
            "{}",
            dir.path().display()
        );
        let path = dir.socket("monitor.sock").unwrap();
        let listener = UnixListener::bind(&path).unwrap();
        let mut client = UnixStream::connect(&path).unwrap();
        client.write_all(b"info status\n").unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let mut got = [0; 12];
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"info status\n");
        assert_eq!(dir.socket("serial.sock").unwrap().parent(), path.parent());
        let socket_dir = path.parent().unwrap().to_path_buf();
        drop(dir);
        assert!(!socket_dir.exists(), "{}", socket_dir.display());
        let _ = fs::remove_dir_all(deep.parent().unwrap());
    }

    #[test]
    fn diagnostics_show_the_serial_log_and_log_tails() {
        let mut dir = RunDir::create("unit-diag").unwrap();
        fs::write(dir.serial_log(), "Castor v0 booting\n").unwrap();
        let log = dir.log_file("emu.log");
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        fs::write(log, text).unwrap();
        let d = dir.diagnostics();
        assert!(d.contains("Castor v0 booting"));
        assert!(d.contains("line 99") && d.contains("line 40") && !d.contains("line 39\n"));
    }
}
