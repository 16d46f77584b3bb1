//! Watching a started pair: [`PairHandle`] waits for markers on either host, kills one host
//! (SIGKILL to its emulator's process group, by the PID the harness started) at a recorded
//! instant, and collects both consoles into a [`PairOutcome`].

use super::Role;
use super::console::LiveConsole;
use crate::error::{Context, Error, Result};
use crate::handle::{RunHandle, WaitError};
use crate::netns::NetNamespace;
use crate::outcome::Outcome;
use crate::process::Process;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a host stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostState {
    /// The emulator runs.
    Running,
    /// The emulator ended by itself, with this status (`None`: a signal the harness did not
    /// send).
    Exited(Option<i32>),
    /// [`PairHandle::kill`] killed it.
    Killed,
}

/// A running pair. Dropping it kills both hosts.
pub struct PairHandle {
    // Field order is drop order: the console thread stops before the runs (and their
    // directories) go, the hosts die before the hub and the namespace.
    console: Option<LiveConsole>,
    hosts: [RunHandle; 2],
    killed: [Option<Instant>; 2],
    started: Instant,
    _hub: Option<Process>,
    _netns: Option<Arc<NetNamespace>>,
}

/// How both hosts of a pair ended.
#[derive(Debug)]
pub struct PairOutcome {
    /// The primary's run.
    pub primary: Outcome,
    /// The backup's run.
    pub backup: Outcome,
    /// When each host (primary, backup) was killed by the harness, after the pair's start.
    pub killed: [Option<Duration>; 2],
}

impl PairOutcome {
    /// The outcome of `role`'s host.
    pub fn host(&self, role: Role) -> &Outcome {
        match role {
            Role::Primary => &self.primary,
            Role::Backup => &self.backup,
        }
    }
}

impl PairHandle {
    pub(super) fn new(
        hosts: [RunHandle; 2],
        console: Option<LiveConsole>,
        hub: Option<Process>,
        netns: Option<Arc<NetNamespace>>,
    ) -> PairHandle {
        let started = hosts[0].started;
        PairHandle {
            console,
            hosts,
            killed: [None, None],
            started,
            _hub: hub,
            _netns: netns,
        }
    }

    /// When the primary's emulator was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The run of `role`'s host (its PID, directory, monitor, ...).
    pub fn host(&mut self, role: Role) -> &mut RunHandle {
        &mut self.hosts[role.index()]
    }

    /// Waits for a console line of `role`'s host containing `marker` (see
    /// [`RunHandle::wait_for`]).
    pub fn wait_for(&mut self, role: Role, marker: &str) -> Result<String, WaitError> {
        self.host(role).wait_for(marker)
    }

    /// `role`'s console so far.
    pub fn console(&mut self, role: Role) -> Result<String> {
        self.host(role).serial()
    }

    /// Whether `role`'s host runs, ended by itself, or was killed.
    pub fn state(&mut self, role: Role) -> Result<HostState> {
        if self.killed[role.index()].is_some() {
            return Ok(HostState::Killed);
        }
        let status = self.host(role).process.try_exit();
        let status = status.context(format!("checking the {role}'s emulator"))?;
        Ok(status.map_or(HostState::Running, |s| HostState::Exited(s.code())))
    }

    /// SIGKILLs `role`'s emulator (its whole process group) and returns the instant just
    /// before the signal went out. Fails if the host had already ended.
    pub fn kill(&mut self, role: Role) -> Result<Instant> {
        match self.state(role)? {
            HostState::Running => {}
            HostState::Exited(status) => {
                let how = status.map_or("by a signal".into(), |c| format!("with status {c}"));
                return Err(Error::new(format!("the {role} had already ended {how}")));
            }
            HostState::Killed => return Err(Error::new(format!("the {role} was killed before"))),
        }
        let at = Instant::now();
        let host = self.host(role);
        host.process
            .kill()
            .context(format!("killing the {role}'s emulator"))?;
        self.killed[role.index()] = Some(at);
        Ok(at)
    }

    /// [`PairHandle::kill`] for the primary.
    pub fn kill_primary(&mut self) -> Result<Instant> {
        self.kill(Role::Primary)
    }

    /// [`PairHandle::kill`] for the backup.
    pub fn kill_backup(&mut self) -> Result<Instant> {
        self.kill(Role::Backup)
    }

    /// When `role` was killed, after the pair's start.
    pub fn killed_after(&self, role: Role) -> Option<Duration> {
        self.killed[role.index()].map(|at| at - self.started)
    }

    /// Waits until both hosts have ended (each as [`RunHandle::wait_exit`]: by itself, by
    /// its deadline, or after a failure marker) and collects both consoles.
    pub fn wait_exit(self) -> PairOutcome {
        self.end(RunHandle::wait_exit)
    }

    /// Kills both hosts now and collects both consoles.
    pub fn stop(self) -> PairOutcome {
        self.end(RunHandle::stop)
    }

    fn end(self, how: fn(RunHandle) -> Outcome) -> PairOutcome {
        let killed = Role::BOTH.map(|role| self.killed_after(role));
        let PairHandle {
            console,
            hosts: [primary, backup],
            ..
        } = self;
        let (primary, backup) = (how(primary), how(backup));
        // Both outcomes still hold their directories: the console's last lines can be read.
        if let Some(console) = console {
            console.finish();
        }
        PairOutcome {
            primary,
            backup,
            killed,
        }
    }
}

impl std::fmt::Debug for PairHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairHandle")
            .field("primary", &self.hosts[0])
            .field("backup", &self.hosts[1])
            .field("killed", &self.killed)
            .finish()
    }
}
