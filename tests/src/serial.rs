//! The kernel's serial console, read live from the file the emulator writes, and the marker
//! matching that judges it.
//!
//! Matching is by substring within a line. While the emulator runs only complete lines count
//! (a marker cannot match half-written); once it has exited the unterminated last line counts
//! too, since emulators may stop before a final newline is sent.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Markers that mean the kernel failed, used unless a run chooses its own.
pub const DEFAULT_FAIL_MARKERS: &[&str] = &[
    "PANIC",
    "EXCEPTION",
    ": FAILED",
    "CASTOR-SELFTEST-FAIL",
    "config error:",
];

/// What a scan of the serial log found first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A line containing the wanted marker.
    Wanted(String),
    /// A line containing a failure marker, before any wanted one.
    Failure {
        /// The failure marker that matched.
        marker: String,
        /// The whole line.
        line: String,
    },
}

/// Scans `lines` in order for the first line containing `wanted` or one of `fail`.
///
/// A line containing the wanted marker counts as wanted even if it also contains a failure
/// marker, so a test can wait for an expected failure report.
pub fn scan<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    wanted: Option<&str>,
    fail: &[String],
) -> Option<Found> {
    for line in lines {
        if wanted.is_some_and(|w| line.contains(w)) {
            return Some(Found::Wanted(line.to_string()));
        }
        if let Some(marker) = fail.iter().find(|m| line.contains(m.as_str())) {
            return Some(Found::Failure {
                marker: marker.clone(),
                line: line.to_string(),
            });
        }
    }
    None
}

/// The lines of `text` without line terminators; the unterminated tail only if `with_partial`.
pub fn lines(text: &str, with_partial: bool) -> impl Iterator<Item = &str> {
    let complete = match with_partial {
        true => text,
        false => text.rfind('\n').map_or("", |end| &text[..=end]),
    };
    complete.lines().map(|line| line.trim_end_matches('\r'))
}

/// A growing serial log file, polled for new output.
pub struct SerialLog {
    path: PathBuf,
    file: Option<File>,
    bytes: Vec<u8>,
    echo: Option<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for SerialLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialLog")
            .field("path", &self.path)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl SerialLog {
    /// A reader for `path`, which the emulator creates (it need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            file: None,
            bytes: Vec::new(),
            echo: None,
        }
    }

    /// Also copies every new byte to `sink` as it is read (live console output).
    pub fn echo_to(&mut self, sink: Box<dyn Write + Send>) {
        self.echo = Some(sink);
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads whatever the emulator has written since the last poll; returns the number of bytes.
    pub fn poll(&mut self) -> io::Result<usize> {
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(file) => self.file = Some(file),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(0);
        };
        let start = self.bytes.len();
        file.read_to_end(&mut self.bytes)?;
        let new = &self.bytes[start..];
        if let Some(echo) = self.echo.as_mut().filter(|_| !new.is_empty()) {
            echo.write_all(new)?;
            echo.flush()?;
        }
        Ok(new.len())
    }

    /// Everything read so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail() -> Vec<String> {
        DEFAULT_FAIL_MARKERS.iter().map(|m| m.to_string()).collect()
    }

    #[test]
    fn partial_lines_count_only_when_asked() {
        let text = "a\r\nb\nCASTOR-SELFTEST-PA";
        assert_eq!(lines(text, false).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(
            lines(text, true).collect::<Vec<_>>(),
            ["a", "b", "CASTOR-SELFTEST-PA"]
        );
        assert_eq!(lines("no newline yet", false).count(), 0);
    }

    #[test]
    fn the_first_decisive_line_wins() {
        let log = "boot\nselftest heap: FAILED: oom\nCASTOR-SELFTEST-PASS\n";
        let found = scan(lines(log, false), Some("CASTOR-SELFTEST-PASS"), &fail());
        let line = "selftest heap: FAILED: oom".to_string();
        assert_eq!(
            found,
            Some(Found::Failure {
                marker: ": FAILED".into(),
                line
            })
        );
    }

    #[test]
    fn a_wanted_marker_beats_a_failure_marker_on_the_same_line() {
        let log = "[cpu0 ERROR] EXCEPTION #PF (vector 14) error=0x3\n";
        let found = scan(lines(log, false), Some("EXCEPTION #PF"), &fail());
        assert_eq!(found, Some(Found::Wanted(log.trim_end().into())));
    }

    #[test]
    fn nothing_decisive_yet() {
        assert_eq!(scan(lines("a\nb\n", false), Some("c"), &fail()), None);
        assert_eq!(scan(lines("a\nb\n", false), None, &[]), None);
    }

    #[test]
    fn poll_reads_appended_output() {
        let dir = std::env::temp_dir().join(format!("castor-serial-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("serial.log");
        let mut log = SerialLog::new(&path);
        assert_eq!(log.poll().unwrap(), 0, "missing file reads as empty");
        std::fs::write(&path, "one\n").unwrap();
        assert_eq!(log.poll().unwrap(), 4);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"two\n").unwrap();
        assert_eq!(log.poll().unwrap(), 4);
        assert_eq!(log.text(), "one\ntwo\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
