//! `castor-run`'s terminal input: what the user types goes to the serial console of the host
//! that runs the guest now (see [`input_target`]).
//!
//! Line mode: the terminal is left as it is (canonical, echoing), so the user edits a line
//! locally and Enter sends it, newline included. Castor's console is line based (a guest's
//! output reaches it as whole `[guest] ` lines, and `castor-run` prefixes whole lines with the
//! host's role), so a guest's per-key echo could not show before the newline anyway; line mode
//! also keeps Ctrl-C for stopping the run and leaves no terminal to restore when `castor-run`
//! is killed. Bytes go to the guest as typed (Enter is `\n`; a guest tty maps either end of
//! line).
//!
//! Stdin is read only when it can carry input: a terminal whose foreground this process is
//! (reading from the background would stop it with SIGTTIN), a pipe, a socket or a file. Tests
//! and CI run with stdin at `/dev/null` or closed, and nothing is read. Reading happens on a
//! thread of its own, so the run never waits for input.

use crate::pair::{HostState, PairHandle, Role};
use crate::serial_input::{Sent, SerialInput};
use crate::{contract, error::Result};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

/// Typed bytes kept while no host can take them (before QEMU connects, during a failover);
/// more is dropped.
const MAX_PENDING: usize = 64 * 1024;
/// How often the single-host forwarder looks for input.
const POLL: Duration = Duration::from_millis(20);

/// The host that gets what the user types: the primary while it runs and the backup has not
/// taken over; the backup once it reported taking over (it runs the guest now) and while it
/// runs; nobody in between (input waits for the backup).
pub fn input_target(states: [HostState; 2], backup_took_over: bool) -> Option<Role> {
    let running = |role: Role| states[role.index()] == HostState::Running;
    match backup_took_over {
        false => running(Role::Primary).then_some(Role::Primary),
        true => running(Role::Backup).then_some(Role::Backup),
    }
}

/// Input read from stdin (or another reader) on a thread, waiting to be sent.
pub struct Typed {
    chunks: Receiver<Vec<u8>>,
    pending: Vec<u8>,
}

impl Typed {
    /// Reads stdin, if it can carry input (see the module documentation).
    pub fn stdin() -> Option<Typed> {
        stdin_readable().then(|| Typed::from_reader(std::io::stdin()))
    }

    /// Reads `reader` on a thread until its end.
    pub fn from_reader(mut reader: impl Read + Send + 'static) -> Typed {
        let (tx, chunks) = mpsc::channel();
        let spawned = thread::Builder::new()
            .name("typed-input".into())
            .spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = reader.read(&mut buf) {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            });
        // Without the thread the channel is closed at once: no input, as with /dev/null.
        drop(spawned);
        Typed {
            chunks,
            pending: Vec::new(),
        }
    }

    /// Collects what was typed and sends it all to `target`, if there is one and it is
    /// connected; otherwise keeps it (up to [`MAX_PENDING`] bytes).
    pub fn pump(&mut self, target: Option<&SerialInput>) {
        while let Ok(chunk) = self.chunks.try_recv() {
            let room = MAX_PENDING - self.pending.len();
            self.pending
                .extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        if let Some(target) = target
            && !self.pending.is_empty()
            && target.send(&self.pending) == Sent::Delivered
        {
            self.pending.clear();
        }
    }

    /// Bytes waiting to be sent.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Forwards everything typed to `input` on a thread of its own, until its host goes.
    pub fn forward(mut self, input: SerialInput) {
        let _ = thread::Builder::new()
            .name("forward-input".into())
            .spawn(move || {
                while !input.is_closed() {
                    self.pump(Some(&input));
                    thread::sleep(POLL);
                }
            });
    }
}

/// A pair's input: the typed bytes, both hosts' serial lines and whether the backup has taken
/// over.
pub struct PairInput {
    typed: Typed,
    lines: [SerialInput; 2],
    backup_took_over: bool,
}

impl PairInput {
    /// Input `typed` for the pair whose hosts' serial lines are `lines` (primary first).
    pub fn new(typed: Typed, lines: [SerialInput; 2]) -> PairInput {
        PairInput {
            typed,
            lines,
            backup_took_over: false,
        }
    }

    /// Sends what was typed to [`input_target`] of the hosts in `states`; looks for the
    /// backup's takeover once the primary no longer runs.
    pub fn pump(&mut self, pair: &mut PairHandle, states: [HostState; 2]) -> Result<()> {
        if !self.backup_took_over && states[Role::Primary.index()] != HostState::Running {
            self.backup_took_over = pair
                .console(Role::Backup)?
                .contains(contract::TAKEOVER_MARKER);
        }
        let target = input_target(states, self.backup_took_over);
        self.typed
            .pump(target.map(|role| &self.lines[role.index()]));
        Ok(())
    }
}

/// Whether stdin can carry input: a terminal with this process in its foreground, or a pipe,
/// socket or file.
fn stdin_readable() -> bool {
    let fd = std::io::stdin().as_raw_fd();
    // SAFETY: fstat writes into the zeroed `stat` it is given; `fd` may be closed (then it
    // fails and nothing is read).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return false;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFREG => true,
        // SAFETY: isatty, tcgetpgrp and getpgrp only query the descriptor and this process.
        libc::S_IFCHR => unsafe { libc::isatty(fd) == 1 && libc::tcgetpgrp(fd) == libc::getpgrp() },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockdir::SocketDir;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    use HostState::{Exited, Killed, Running};

    #[test]
    fn input_goes_to_the_primary_until_the_backup_takes_over() {
        // Both running: the primary.
        assert_eq!(input_target([Running, Running], false), Some(Role::Primary));
        // The backup died: still the primary.
        assert_eq!(
            input_target([Running, Exited(Some(1))], false),
            Some(Role::Primary)
        );
        // The primary was killed, the backup has not taken over yet: input waits.
        assert_eq!(input_target([Killed, Running], false), None);
        assert_eq!(input_target([Exited(None), Running], false), None);
        // Takeover: the backup runs the guest now.
        assert_eq!(input_target([Killed, Running], true), Some(Role::Backup));
        // A backup that took over while the primary still runs (the link failed): the
        // backup's guest is the one whose output is released from now on.
        assert_eq!(input_target([Running, Running], true), Some(Role::Backup));
        // Nobody left.
        assert_eq!(input_target([Killed, Exited(Some(0))], true), None);
        assert_eq!(
            input_target([Exited(Some(0)), Exited(Some(0))], false),
            None
        );
    }

    /// Waits until `typed` has read `n` bytes.
    fn read(typed: &mut Typed, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while typed.pending().len() < n {
            assert!(Instant::now() < deadline, "input never arrived");
            typed.pump(None);
            thread::sleep(POLL);
        }
    }

    #[test]
    fn typed_bytes_wait_for_a_host_then_go_to_it_in_order() {
        let (mut user, terminal) = UnixStream::pair().unwrap();
        let mut typed = Typed::from_reader(terminal);
        user.write_all(b"echo hi\n").unwrap();
        read(&mut typed, 8);
        user.write_all(b"exit\n").unwrap();
        read(&mut typed, 13);
        // A host whose QEMU has not connected: the bytes stay.
        let waiting = SerialInput::new();
        typed.pump(Some(&waiting));
        assert_eq!(typed.pending(), b"echo hi\nexit\n");
        // A connected host gets them all.
        let dir = SocketDir::create().unwrap();
        let path = dir.socket("serial.sock").unwrap();
        let line = SerialInput::new();
        line.serve(&path, &dir.socket("serial.log").unwrap())
            .unwrap();
        let mut qemu = UnixStream::connect(&path).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !typed.pending().is_empty() {
            assert!(Instant::now() < deadline, "never delivered");
            typed.pump(Some(&line));
            thread::sleep(POLL);
        }
        let mut got = [0u8; 13];
        qemu.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"echo hi\nexit\n");
    }

    #[test]
    fn pending_input_is_bounded() {
        let mut typed = Typed::from_reader(std::io::repeat(b'y').take(MAX_PENDING as u64 + 99));
        read(&mut typed, MAX_PENDING);
        thread::sleep(POLL);
        typed.pump(None);
        assert_eq!(typed.pending().len(), MAX_PENDING);
    }
}
