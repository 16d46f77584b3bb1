//! `castor-run --reprotect`: a chain of failovers, each followed by a new backup. Hosts A, B, C,
//! ... share one Ethernet segment (a [`Segment`]); A starts as the primary and B as its backup;
//! at each `--failover-at` (or once the guest is protected, if later) the host running the
//! guest is SIGKILLed, and once its backup reports the takeover a fresh host joins the
//! survivor as its new backup. Consoles stream with each line prefixed by the host's name and
//! starting role (`A primary | ...`).

use super::judge::Judgement;
use crate::contract::{APPLIED_EPOCH_MARKER, TAKEOVER_MARKER};
use crate::error::{Error, Result};
use crate::pair::LiveConsole;
use crate::pair::Role;
use crate::pair::segment::{Segment, SegmentHost};
use std::io::Write;
use std::time::{Duration, Instant};

/// What a primary says once its new backup holds the guest.
const PROTECTED_AGAIN: &str = "ft: primary: protected again from epoch";
/// How often the chain looks at its hosts.
const POLL: Duration = Duration::from_millis(50);

/// One host of the chain, with its console.
struct Host {
    name: char,
    run: SegmentHost,
    _console: LiveConsole,
}

/// Starts the next host of `seg` as `role`, streaming its console to `sink()`.
fn start(
    seg: &mut Segment,
    name: char,
    role: Role,
    sink: &dyn Fn() -> Box<dyn Write + Send>,
) -> Result<Host> {
    let run = seg.start(&name.to_string(), role)?;
    let prefix = format!("{name} {:<7} | ", role.name());
    let console = LiveConsole::start_prefixed(vec![(prefix, run.run.serial.path().into())], sink());
    Ok(Host {
        name,
        run,
        _console: console,
    })
}

/// Whether `host`'s emulator ended (by itself: the guest ended, or Castor failed).
fn ended(host: &mut Host) -> Result<Option<Option<i32>>> {
    let status = host
        .run
        .run
        .process
        .try_exit()
        .map_err(|e| Error::new(e.to_string()))?;
    Ok(status.map(|s| s.code()))
}

/// Runs the chain on `seg`: fails over at each of `failovers` (after the start), until
/// `duration` (or Ctrl-C) and returns the verdict.
pub fn run_chain(
    seg: &mut Segment,
    failovers: &[Duration],
    duration: Option<Duration>,
    sink: &dyn Fn() -> Box<dyn Write + Send>,
) -> Result<Judgement> {
    let start_time = Instant::now();
    let mut names = ('A'..='Z').chain('a'..='z');
    let mut next = || names.next().ok_or_else(|| Error::new("out of host names"));
    let mut primary = start(seg, next()?, Role::Primary, sink)?;
    let mut backup = start(seg, next()?, Role::Backup, sink)?;
    let mut dead: Vec<Host> = Vec::new();
    let mut pending = failovers.iter().copied();
    let mut due = pending.next();
    loop {
        let elapsed = start_time.elapsed();
        for host in [&mut primary, &mut backup] {
            if let Some(code) = ended(host)? {
                let ok = code == Some(0);
                return Ok(Judgement {
                    code: if ok { 0 } else { 1 },
                    message: format!("{} ended (status {code:?})", host.name),
                    failed: !ok,
                });
            }
        }
        if due.is_some_and(|at| elapsed >= at) {
            due = pending.next();
            // A failover needs the guest protected: on a slow host the first checkpoint (or
            // a new backup's copy) may come later than the failover was asked for.
            backup
                .run
                .run
                .wait_for(APPLIED_EPOCH_MARKER)
                .map_err(|e| Error::new(format!("{} never held the guest: {e}", backup.name)))?;
            primary.run.run.kill()?;
            println!(
                "castor-run: killed {} (the primary) at {:.1} s",
                primary.name,
                start_time.elapsed().as_secs_f64()
            );
            backup
                .run
                .run
                .wait_for(TAKEOVER_MARKER)
                .map_err(|e| Error::new(format!("{} did not take over: {e}", backup.name)))?;
            let joining = start(seg, next()?, Role::Backup, sink)?;
            println!(
                "castor-run: {} joins {} as its new backup",
                joining.name, backup.name
            );
            dead.push(std::mem::replace(&mut primary, backup));
            backup = joining;
            if due.is_some() {
                // The next failover needs the guest protected again, as its new primary sees
                // it (the new backup may have applied a checkpoint whose acknowledgement is
                // still on its way).
                primary.run.run.wait_for(PROTECTED_AGAIN).map_err(|e| {
                    Error::new(format!("{} not protected again: {e}", primary.name))
                })?;
            }
        }
        if duration.is_some_and(|d| elapsed >= d) {
            let all = failovers.len();
            return Ok(Judgement {
                code: 0,
                message: format!(
                    "ran {:.1} s; {all} failovers, the guest now on {} with {} as backup",
                    elapsed.as_secs_f64(),
                    primary.name,
                    backup.name
                ),
                failed: false,
            });
        }
        std::thread::sleep(POLL);
    }
}
