//! `castor-run`'s pair mode at work: watching a running pair, failing it over at
//! `--failover-at`, and ending with [`judge_pair`]'s verdict.

use super::input::PairInput;
use super::judge::{HostView, Judgement, PairView, guest_ended, judge_pair};
use crate::contract::APPLIED_EPOCH_MARKER;
use crate::error::Result;
use crate::pair::{HostState, PairHandle, Role};
use std::time::Duration;

/// How often a pair run looks at its hosts.
const POLL: Duration = Duration::from_millis(50);

/// Watches a running pair, kills the primary when `--failover-at` comes and the backup holds a
/// checkpoint (unless the guest has ended by then: [`guest_ended`]), sends what the user types to the host running the guest
/// (`input`), and returns the verdict once [`judge_pair`] has one.
pub fn watch_pair(
    pair: &mut PairHandle,
    failover_at: Option<Duration>,
    duration: Option<Duration>,
    emulator: &str,
    mut input: Option<&mut PairInput>,
) -> Result<Judgement> {
    let start = pair.started();
    let mut failover = None;
    // The failover is done, or moot because the guest ended first.
    let mut failover_settled = failover_at.is_none();
    let mut told_waiting = false;
    loop {
        let elapsed = start.elapsed();
        let mut due = !failover_settled && failover_at.is_some_and(|at| elapsed >= at);
        // A failover needs the guest protected: on a slow host the first checkpoint may come
        // later than the failover was asked for.
        if due && !pair.console(Role::Backup)?.contains(APPLIED_EPOCH_MARKER) {
            if !std::mem::replace(&mut told_waiting, true) {
                println!("castor-run: the failover waits for the backup's first checkpoint");
            }
            due = pair.state(Role::Backup)? != HostState::Running;
        }
        let mut states = [pair.state(Role::Primary)?, pair.state(Role::Backup)?];
        if let Some(input) = input.as_deref_mut() {
            input.pump(pair, states)?;
        }
        let duration_over = duration.is_some_and(|d| elapsed >= d);
        let exited = states.iter().any(|s| matches!(s, HostState::Exited(_)));
        if due || duration_over || exited {
            let serial = [pair.console(Role::Primary)?, pair.console(Role::Backup)?];
            let view = |states: [HostState; 2], failover| PairView {
                emulator,
                hosts: [0, 1].map(|i| HostView {
                    state: states[i],
                    serial: &serial[i],
                }),
                elapsed,
                duration_over,
                failover,
            };
            if due {
                failover_settled = true;
                if guest_ended(&view(states, failover)) {
                    println!(
                        "castor-run: the guest ended before the failover time; killing nothing"
                    );
                } else if states[0] == HostState::Running {
                    let at = pair.kill_primary()? - start;
                    // On stdout, between the console lines it falls between.
                    println!(
                        "castor-run: killed the primary at {:.1} s",
                        at.as_secs_f64()
                    );
                    failover = Some(at);
                    states[0] = HostState::Killed;
                }
            }
            if (duration_over || exited)
                && let Some(verdict) = judge_pair(&view(states, failover))
            {
                return Ok(verdict);
            }
        }
        std::thread::sleep(POLL);
    }
}
