//! A private network namespace for emulators whose networking listens on every interface
//! (Bochs' `socket` NIC back end and `bxhub`): their traffic stays on that namespace's own
//! loopback, invisible to the machine and to other tests.
//!
//! A holder process (`unshare -n`, then `sleep`) keeps the namespace alive; programs join it
//! with `nsenter`, which `exec`s them, so the PID the harness kills is the program's own. The
//! holder is killed by its PID when the [`NetNamespace`] is dropped. Without root the
//! namespace sits inside a new user namespace (`unshare -r`) that the same user can enter.

use crate::error::{Context, Result};
use crate::process::Process;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// A private network namespace with its loopback up.
pub struct NetNamespace {
    holder: Process,
    as_root: bool,
}

impl NetNamespace {
    /// Creates the namespace and brings its loopback interface up.
    pub fn new() -> Result<NetNamespace> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let as_root = unsafe { libc::geteuid() } == 0;
        let mut cmd = Command::new("unshare");
        cmd.arg(if as_root { "-n" } else { "-rn" })
            .args([
                "sh",
                "-c",
                "ip link set lo up && echo ready && exec sleep 100000",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut holder = Process::spawn(cmd, false).context("starting unshare -n")?;
        let stdout = holder
            .take_stdout()
            .ok_or_else(|| crate::Error::new("the namespace holder has no output pipe"))?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading the namespace holder's output")?;
        if line.trim() != "ready" {
            let _ = holder.kill();
            return Err(crate::Error::new(
                "could not create a private network namespace (unshare -n, ip link set lo up)",
            ));
        }
        Ok(NetNamespace { holder, as_root })
    }

    /// A command running `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t").arg(self.holder.pid().to_string()).arg("-n");
        if !self.as_root {
            cmd.args(["-U", "--preserve-credentials"]);
        }
        cmd.arg("--").arg(program);
        cmd
    }
}

impl Drop for NetNamespace {
    fn drop(&mut self) {
        let _ = self.holder.kill();
    }
}
