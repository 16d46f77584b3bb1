//! Typing into a QEMU host's serial line ([`SerialInput`]).
//!
//! A run given a [`SerialInput`] ([`crate::Run::serial_input`]) connects QEMU's first serial
//! port to a unix socket the harness listens on, `-chardev socket,server=off`, and the harness
//! writes what it types into the socket. A thread drains what QEMU sends on the socket into
//! `serial.log` (the console the harness reads, exactly as with `-serial file:`), so the port
//! never stalls, and marks the input closed when QEMU goes.
//!
//! The harness writes the log itself rather than leaving it to QEMU's `logfile=`: QEMU logs a
//! byte its socket refused for the moment (EAGAIN, a full socket buffer: one skb per byte the
//! UART sends) and logs it again when the UART retries it, so a busy host's log gained
//! doubled characters.

use crate::error::{Context, Result};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long the harness waits for QEMU to connect (it does so while starting, before the
/// machine runs).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the accepting thread looks for QEMU's connection.
const ACCEPT_POLL: Duration = Duration::from_millis(10);

/// Where the serial line stands.
#[derive(Debug, Default)]
enum Line {
    /// QEMU has not connected yet.
    #[default]
    Waiting,
    /// Connected: writes reach the serial port.
    Open(Arc<UnixStream>),
    /// QEMU went (or never came): nothing typed reaches it any more.
    Closed,
}

/// The input side of one host's serial line, shared by the harness thread that serves the
/// socket and whoever types. Clones refer to the same line.
#[derive(Debug, Clone, Default)]
pub struct SerialInput(Arc<Mutex<Line>>);

/// What became of bytes offered to [`SerialInput::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Written to the serial line.
    Delivered,
    /// QEMU has not connected yet: keep the bytes and try again.
    NotYet,
    /// The line is gone with its emulator.
    Closed,
}

impl SerialInput {
    /// A line not connected yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `bytes` to the serial line, if it is open. A write error (QEMU died) closes it.
    pub fn send(&self, bytes: &[u8]) -> Sent {
        let stream = match &*self.lock() {
            Line::Waiting => return Sent::NotYet,
            Line::Closed => return Sent::Closed,
            Line::Open(stream) => Arc::clone(stream),
        };
        match (&*stream).write_all(bytes) {
            Ok(()) => Sent::Delivered,
            Err(_) => {
                self.set(Line::Closed);
                Sent::Closed
            }
        }
    }

    /// The line's emulator has gone (or never connected).
    pub fn is_closed(&self) -> bool {
        matches!(*self.lock(), Line::Closed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Line> {
        // A thread that panicked holding the lock left a valid `Line` behind.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, line: Line) {
        *self.lock() = line;
    }

    /// Listens on `path` for QEMU's connection (call before starting QEMU) and serves it on a
    /// thread: accepts one connection, opens the line, drains what QEMU sends into `log`
    /// (created empty now) until QEMU closes it, then closes the line.
    pub(crate) fn serve(&self, path: &Path, log: &Path) -> Result<()> {
        let listener = UnixListener::bind(path).context(format!("binding {}", path.display()))?;
        listener
            .set_nonblocking(true)
            .context("serial input socket")?;
        let log = File::create(log).context(format!("creating {}", log.display()))?;
        let line = self.clone();
        thread::Builder::new()
            .name("serial-input".into())
            .spawn(move || line.accept_and_drain(&listener, log))
            .context("starting the serial input thread")?;
        Ok(())
    }

    fn accept_and_drain(&self, listener: &UnixListener, mut log: File) {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    thread::sleep(ACCEPT_POLL);
                }
                Err(_) => return self.set(Line::Closed),
            }
        };
        let stream = Arc::new(stream);
        if stream.set_nonblocking(false).is_err() {
            return self.set(Line::Closed);
        }
        self.set(Line::Open(Arc::clone(&stream)));
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = (&*stream).read(&mut buf) {
            // The console is what the harness judges: a write error ends the line.
            if log.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        self.set(Line::Closed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockdir::SocketDir;

    #[test]
    fn bytes_reach_the_connected_peer_and_the_line_closes_with_it() {
        let dir = SocketDir::create().unwrap();
        let path = dir.socket("serial.sock").unwrap();
        let log = dir.socket("serial.log").unwrap();
        let input = SerialInput::new();
        assert_eq!(input.send(b"early"), Sent::NotYet);
        input.serve(&path, &log).unwrap();
        let mut qemu = UnixStream::connect(&path).unwrap();
        qemu.write_all(b"console output, drained").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while input.send(b"ls\n") == Sent::NotYet {
            assert!(Instant::now() < deadline, "the line never opened");
            thread::sleep(ACCEPT_POLL);
        }
        let mut got = [0u8; 3];
        qemu.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ls\n");
        drop(qemu);
        while !input.is_closed() {
            assert!(Instant::now() < deadline, "the line never closed");
            thread::sleep(ACCEPT_POLL);
        }
        assert_eq!(input.send(b"late"), Sent::Closed);
        assert_eq!(std::fs::read(&log).unwrap(), b"console output, drained");
    }
}
