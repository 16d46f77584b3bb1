//! The live console of a pair: both hosts' serial logs tailed by one thread and written line by
//! line to one sink, each line prefixed by its host's role (`primary | ...`, `backup  | ...`),
//! in the order the lines arrive.

use super::Role;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How often the console thread looks for new output.
const POLL: Duration = Duration::from_millis(20);

/// Splits one host's console bytes into prefixed lines.
#[derive(Debug)]
pub struct LinePrefixer {
    prefix: String,
    partial: Vec<u8>,
}

impl LinePrefixer {
    /// A splitter whose lines start with `role`'s prefix ([`Role::prefix`]).
    pub fn new(role: Role) -> LinePrefixer {
        LinePrefixer::with_prefix(role.prefix())
    }

    /// A splitter whose lines start with `prefix`.
    pub fn with_prefix(prefix: &str) -> LinePrefixer {
        LinePrefixer {
            prefix: prefix.into(),
            partial: Vec::new(),
        }
    }

    /// Takes the next bytes of the console and returns the lines they complete, prefixed and
    /// newline-terminated (carriage returns dropped, invalid UTF-8 replaced).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.partial.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            lines.push(self.line(&line[..end]));
        }
        lines
    }

    /// The unterminated last line, if any (once the console has ended).
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.partial);
        (!rest.is_empty()).then(|| self.line(&rest))
    }

    fn line(&self, bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes);
        format!("{}{}\n", self.prefix, text.trim_end_matches('\r'))
    }
}

/// One tailed serial log.
struct Source {
    path: PathBuf,
    file: Option<File>,
    lines: LinePrefixer,
}

impl Source {
    /// Writes the lines completed since the last call to `sink`.
    fn pump(&mut self, sink: &mut dyn Write) -> io::Result<()> {
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(file) => self.file = Some(file),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        let mut new = Vec::new();
        if let Some(file) = self.file.as_mut() {
            file.read_to_end(&mut new)?;
        }
        for line in self.lines.push(&new) {
            sink.write_all(line.as_bytes())?;
        }
        sink.flush()
    }
}

/// The thread streaming both consoles; [`LiveConsole::finish`] (or drop) writes what is left,
/// including unterminated last lines, and stops it.
#[derive(Debug)]
pub struct LiveConsole {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LiveConsole {
    /// Starts tailing `logs` (each host's role and serial log file, which the emulator creates)
    /// into `sink`.
    pub fn start(logs: Vec<(Role, PathBuf)>, sink: Box<dyn Write + Send>) -> LiveConsole {
        let logs = logs
            .into_iter()
            .map(|(role, path)| (role.prefix().to_string(), path))
            .collect();
        LiveConsole::start_prefixed(logs, sink)
    }

    /// Starts tailing `logs` (each with the prefix of its lines) into `sink`.
    pub fn start_prefixed(
        logs: Vec<(String, PathBuf)>,
        mut sink: Box<dyn Write + Send>,
    ) -> LiveConsole {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let mut sources: Vec<Source> = logs
            .into_iter()
            .map(|(prefix, path)| Source {
                path,
                file: None,
                lines: LinePrefixer::with_prefix(&prefix),
            })
            .collect();
        let thread = thread::Builder::new()
            .name("castor-pair-console".into())
            .spawn(move || {
                loop {
                    // Read the flag first: a last pump after it was set sees everything
                    // written before.
                    let last = stopping.load(Ordering::SeqCst);
                    for source in &mut sources {
                        // A closed sink (e.g. `| head`) only ends the echo, not the run.
                        if source.pump(&mut *sink).is_err() {
                            return;
                        }
                    }
                    if last {
                        break;
                    }
                    thread::sleep(POLL);
                }
                for source in &mut sources {
                    if let Some(line) = source.lines.finish() {
                        let _ = sink.write_all(line.as_bytes());
                    }
                }
                let _ = sink.flush();
            })
            .expect("starting the console thread");
        LiveConsole {
            stop,
            thread: Some(thread),
        }
    }

    /// Writes the rest of both consoles and stops the thread.
    pub fn finish(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LiveConsole {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// A [`Write`] sink whose bytes can be read back while it is written to (a live console
/// captured by a test or a tool).
#[derive(Debug, Clone, Default)]
pub struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    /// An empty buffer.
    pub fn new() -> SharedBuffer {
        SharedBuffer::default()
    }

    /// Everything written so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut bytes = self
            .0
            .lock()
            .map_err(|_| io::Error::other("console buffer lock poisoned"))?;
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_prefixed_once_complete() {
        let mut p = LinePrefixer::new(Role::Backup);
        assert!(p.push(b"Castor v0 boo").is_empty());
        assert_eq!(
            p.push(b"ting\r\nlink: paired\n[guest] x"),
            ["backup  | Castor v0 booting\n", "backup  | link: paired\n"]
        );
        assert_eq!(p.push(b"\n\n"), ["backup  | [guest] x\n", "backup  | \n"]);
        assert_eq!(p.finish(), None);
        p.push(b"half");
        assert_eq!(p.finish().as_deref(), Some("backup  | half\n"));
        assert_eq!(
            LinePrefixer::new(Role::Primary).push(b"\xffa\n"),
            ["primary | \u{fffd}a\n"]
        );
    }

    #[test]
    fn both_logs_stream_in_arrival_order_and_tails_are_flushed() {
        let dir = crate::rundir::RunDir::create("unit-console").unwrap();
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        let out = SharedBuffer::new();
        let console = LiveConsole::start(
            vec![(Role::Primary, a.clone()), (Role::Backup, b.clone())],
            Box::new(out.clone()),
        );
        let append = |path: &PathBuf, text: &str| {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            file.write_all(text.as_bytes()).unwrap();
        };
        let wait_for = |text: &str| {
            let start = std::time::Instant::now();
            while !out.text().contains(text) {
                assert!(start.elapsed() < Duration::from_secs(10), "{}", out.text());
                thread::sleep(Duration::from_millis(5));
            }
        };
        append(&a, "one\n");
        wait_for("primary | one\n");
        append(&b, "two\nthr");
        wait_for("backup  | two\n");
        append(&a, "four\n");
        wait_for("primary | four\n");
        append(&b, "ee");
        console.finish();
        assert_eq!(
            out.text(),
            "primary | one\nbackup  | two\nprimary | four\nbackup  | three\n"
        );
    }
}
