//! Emulator processes: each runs in a session of its own and is killed with SIGKILL by its
//! process group, identified by the PID the harness started (Bochs ignores SIGTERM).
//!
//! Emulators are spawned from one long-lived thread with `PR_SET_PDEATHSIG = SIGKILL`, so they
//! die with the harness process even when it is killed outright (the kernel ties that signal to
//! the *thread* that forked, hence the dedicated thread). Command-line tools can also call
//! [`kill_children_on_signals`] so Ctrl-C in the terminal takes the emulator with it.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Process groups of live emulators, for the signal handler (0 = free slot).
static LIVE: [AtomicI32; 64] = [const { AtomicI32::new(0) }; 64];

/// A request to the spawner thread.
struct SpawnRequest {
    cmd: Command,
    reply: mpsc::Sender<io::Result<Child>>,
}

/// A child process in its own session, killed by process group on [`Process::kill`] and drop.
#[derive(Debug)]
pub struct Process {
    child: Child,
    status: Option<ExitStatus>,
    slot: Option<usize>,
}

impl Process {
    /// Spawns `cmd` as the leader of a new session; with `controlling_tty` its stdin (which
    /// must then be a terminal) becomes the session's controlling terminal.
    pub fn spawn(mut cmd: Command, controlling_tty: bool) -> io::Result<Process> {
        let parent = std::process::id() as libc::pid_t;
        let pre_exec = move || -> io::Result<()> {
            // SAFETY: only async-signal-safe system calls between fork and exec; none of them
            // touch memory of the parent.
            unsafe {
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                if controlling_tty && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    libc::_exit(1); // the harness died before PDEATHSIG was armed
                }
            }
            Ok(())
        };
        // SAFETY: the closure only makes async-signal-safe calls (see above).
        unsafe { cmd.pre_exec(pre_exec) };
        let (reply, answer) = mpsc::channel();
        spawner()
            .lock()
            .map_err(|_| io::Error::other("spawner lock poisoned"))?
            .send(SpawnRequest { cmd, reply })
            .map_err(|_| io::Error::other("spawner thread is gone"))?;
        let child = answer
            .recv()
            .map_err(|_| io::Error::other("spawner thread is gone"))??;
        let slot = register(child.id() as i32);
        Ok(Process {
            child,
            status: None,
            slot,
        })
    }

    /// The PID the harness started (also the process group and session id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The pipe from the process's standard output, if it was spawned with one (once).
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// The pipe to the process's standard input, if it was spawned with one (once).
    pub fn take_stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.stdin.take()
    }

    /// The exit status if the process has ended (then its group has been killed and reaped).
    pub fn try_exit(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() && self.has_exited()? {
            self.finish()?;
        }
        Ok(self.status)
    }

    /// Waits until the process ends or `deadline` passes; `None` on timeout (still running).
    pub fn wait_until(&mut self, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
        loop {
            if let Some(status) = self.try_exit()? {
                return Ok(Some(status));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the process group with SIGKILL (if still running) and reaps the leader.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        if self.status.is_none() {
            self.finish()?;
        }
        Ok(self.status.expect("finish() records the status"))
    }

    /// Whether the leader has ended, without reaping it (its PID stays reserved until then).
    fn has_exited(&self) -> io::Result<bool> {
        // SAFETY: siginfo_t is plain data; all-zero is a valid value for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        // SAFETY: `info` is a valid, writable siginfo_t; WNOWAIT leaves the child unreaped.
        let rc = unsafe { libc::waitid(libc::P_PID, self.child.id(), &mut info, flags) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: waitid succeeded, so `info` is initialised; si_pid is 0 if nothing exited.
        Ok(unsafe { info.si_pid() } != 0)
    }

    /// Kills the whole group while the unreaped leader still pins its id, then reaps it.
    fn finish(&mut self) -> io::Result<()> {
        kill_group(self.child.id() as i32);
        self.status = Some(self.child.wait()?);
        if let Some(slot) = self.slot.take() {
            LIVE[slot].store(0, Ordering::SeqCst);
        }
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

fn kill_group(pgid: i32) {
    if pgid > 0 {
        // SAFETY: kill has no memory effects; `pgid` is a group this harness created and whose
        // leader it has not reaped yet, so the id cannot belong to anyone else.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

fn register(pgid: i32) -> Option<usize> {
    (0..LIVE.len()).find(|&i| {
        LIVE[i]
            .compare_exchange(0, pgid, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    })
}

/// The spawner thread's request queue (the thread lives as long as the process).
fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("castor-spawner".into())
            .spawn(move || {
                for mut req in rx {
                    let _ = req.reply.send(req.cmd.spawn());
                }
            })
            .expect("starting the emulator spawner thread");
        Mutex::new(tx)
    })
}

extern "C" fn on_fatal_signal(signal: libc::c_int) {
    for slot in &LIVE {
        kill_group(slot.load(Ordering::SeqCst));
    }
    // SAFETY: _exit is async-signal-safe and ends the process without running Rust code.
    unsafe { libc::_exit(128 + signal) };
}

/// Makes SIGINT, SIGTERM and SIGHUP kill every live emulator before the process exits.
pub fn kill_children_on_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        let handler = on_fatal_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: the handler only makes async-signal-safe calls (atomics, kill, _exit).
        unsafe { libc::signal(signal, handler) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_takes_down_the_whole_group() {
        let dir = std::env::temp_dir().join(format!("castor-proc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("pid");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("sleep 100 & echo $! > {}; wait", pidfile.display()));
        let mut p = Process::spawn(cmd, false).unwrap();
        let start = Instant::now();
        while !pidfile.exists() || std::fs::read_to_string(&pidfile).unwrap().trim().is_empty() {
            assert!(start.elapsed() < Duration::from_secs(5));
            thread::sleep(Duration::from_millis(5));
        }
        let grandchild: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(p.wait_until(Some(Instant::now())).unwrap(), None);
        let status = p.kill().unwrap();
        assert_eq!(status.code(), None, "killed by a signal");
        thread::sleep(Duration::from_millis(50));
        // SAFETY: signal 0 only checks whether the process exists.
        let alive = unsafe { libc::kill(grandchild, 0) } == 0;
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            !alive || is_zombie(grandchild),
            "grandchild {grandchild} survived"
        );
    }

    fn is_zombie(pid: i32) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    }

    #[test]
    fn exit_status_is_reported() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 33"]);
        let mut p = Process::spawn(cmd, false).unwrap();
        let status = p
            .wait_until(Some(Instant::now() + Duration::from_secs(10)))
            .unwrap();
        assert_eq!(status.and_then(|s| s.code()), Some(33));
    }
}
