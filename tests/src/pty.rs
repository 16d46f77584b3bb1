//! Pseudo-terminals for emulators that insist on a terminal (Bochs' `term` display).
//!
//! The child gets the slave side as stdin/stdout/stderr (and, via [`crate::process`], as its
//! controlling terminal); a thread drains the master so the child never blocks on output, and
//! keeps the last bytes for diagnostics.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::thread;

/// Terminal size the child sees.
const COLUMNS: u16 = 80;
const ROWS: u16 = 25;

/// Both ends of a fresh pseudo-terminal (close-on-exec, so other children never inherit them).
#[derive(Debug)]
pub struct Pty {
    /// The side the harness reads.
    pub master: OwnedFd,
    /// The side the child uses as its terminal.
    pub slave: OwnedFd,
}

impl Pty {
    /// Opens a pseudo-terminal of 80x25 characters.
    pub fn open() -> io::Result<Pty> {
        let (mut master, mut slave): (RawFd, RawFd) = (-1, -1);
        let size = libc::winsize {
            ws_row: ROWS,
            ws_col: COLUMNS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors into the given locations; a null name buffer
        // and null termios are allowed, `size` is a valid winsize.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: openpty succeeded, so both descriptors are open and owned by nobody else.
        let pty = unsafe {
            Pty {
                master: OwnedFd::from_raw_fd(master),
                slave: OwnedFd::from_raw_fd(slave),
            }
        };
        set_cloexec(&pty.master)?;
        set_cloexec(&pty.slave)?;
        Ok(pty)
    }

    /// A `Stdio` for the child that refers to the slave side.
    pub fn slave_stdio(&self) -> io::Result<Stdio> {
        Ok(Stdio::from(self.slave.try_clone()?))
    }
}

fn set_cloexec(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: F_SETFD on a descriptor we own has no memory effects.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    match rc < 0 {
        true => Err(io::Error::last_os_error()),
        false => Ok(()),
    }
}

/// The last bytes a terminal showed.
#[derive(Debug, Default)]
pub struct Tail {
    bytes: VecDeque<u8>,
    limit: usize,
}

impl Tail {
    /// An empty tail that keeps at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            bytes: VecDeque::new(),
            limit,
        }
    }

    /// Appends output, dropping the oldest bytes beyond the limit.
    pub fn push(&mut self, data: &[u8]) {
        self.bytes.extend(data);
        let excess = self.bytes.len().saturating_sub(self.limit);
        self.bytes.drain(..excess);
    }

    /// The kept output as text, with terminal escape sequences removed.
    pub fn text(&self) -> String {
        let bytes: Vec<u8> = self.bytes.iter().copied().collect();
        strip_escapes(&String::from_utf8_lossy(&bytes))
    }
}

/// Starts a thread that reads `master` until the terminal closes, keeping the last `limit` bytes.
pub fn drain(master: OwnedFd, limit: usize) -> Arc<Mutex<Tail>> {
    let tail = Arc::new(Mutex::new(Tail::new(limit)));
    let sink = Arc::clone(&tail);
    let mut file = File::from(master);
    thread::Builder::new()
        .name("castor-pty-drain".into())
        .spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once every slave descriptor is closed (the child is gone).
            while let Ok(n @ 1..) = file.read(&mut buf) {
                if let Ok(mut tail) = sink.lock() {
                    tail.push(&buf[..n]);
                }
            }
        })
        .expect("starting a pty drain thread");
    tail
}

/// Removes ANSI/VT100 escape sequences and carriage returns, keeping printable text.
pub fn strip_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // Character-set selection and similar two-byte-argument sequences.
                Some('(' | ')' | '*' | '+') => {
                    chars.next();
                }
                _ => {}
            },
            '\r' => {}
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_newest_bytes() {
        let mut tail = Tail::new(4);
        tail.push(b"abc");
        tail.push(b"def");
        assert_eq!(tail.text(), "cdef");
    }

    #[test]
    fn escapes_are_stripped() {
        let raw = "\x1b[2J\x1b[1;1Hbochs: error\r\n\x1b(Bnext\x1b[0m\x07 line";
        assert_eq!(strip_escapes(raw), "bochs: error\nnext line");
    }

    #[test]
    fn a_child_writing_to_the_pty_is_drained() {
        let pty = Pty::open().unwrap();
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "tty; echo hello-from-child"])
            .stdin(pty.slave_stdio().unwrap())
            .stdout(pty.slave_stdio().unwrap())
            .stderr(pty.slave_stdio().unwrap());
        let Pty { master, slave } = pty;
        let mut child = crate::process::Process::spawn(cmd, true).unwrap();
        drop(slave);
        let tail = drain(master, 1024);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        child
            .wait_until(Some(deadline))
            .unwrap()
            .expect("child exits");
        while !tail.lock().unwrap().text().contains("hello-from-child") {
            assert!(
                std::time::Instant::now() < deadline,
                "{}",
                tail.lock().unwrap().text()
            );
            thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(tail.lock().unwrap().text().contains("/dev/pts/"));
    }
}
