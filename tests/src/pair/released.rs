//! The guest output a pair released: the primary's, then the backup's after its takeover.

use crate::contract::{RELEASING_MARKER, TAKEOVER_MARKER};
use crate::outcome::Outcome;
use crate::scrape::{number_after, word_after};
use crate::serial;

use super::PairOutcome;

/// The guest's released lines in a console, without the `[guest] ` prefix. A last line cut
/// short by the kill (the UART was mid-line) counts as not released.
pub fn guest_lines(outcome: &Outcome) -> Vec<&str> {
    serial::lines(&outcome.serial, false)
        .filter_map(|l| l.strip_prefix("[guest] "))
        .collect()
}

/// The backup's released lines without those it announced may repeat the primary's last ones
/// (`ft: backup: releasing K lines the primary may have released as it died`): of its first
/// K lines, the longest run that equals the end of the primary's output is dropped. Anything
/// else repeated stays, for the caller's checks to catch.
pub fn without_announced_repeats<'a>(
    primary: &[&str],
    backup: Vec<&'a str>,
    outcome: &Outcome,
) -> Vec<&'a str> {
    let announced = outcome
        .line_with(RELEASING_MARKER)
        .map_or(0, |l| number_after(l, "releasing") as usize)
        .min(backup.len());
    let overlap = (0..=announced)
        .rev()
        .find(|&k| primary.ends_with(&backup[..k]))
        .unwrap_or(0);
    if overlap > 0 {
        println!("ft failover: {overlap} of {announced} announced lines repeated the primary's");
    }
    backup[overlap..].to_vec()
}

/// The guest output `pair` released as one sequence: the primary's lines, then the backup's
/// without the announced repeats.
pub fn released(pair: &PairOutcome) -> Vec<&str> {
    released_by_chain(&[&pair.primary, &pair.backup])
}

/// The guest output a chain of hosts released, each having taken the guest over from the one
/// before: every host's lines in turn, without the repeats each takeover announced.
pub fn released_by_chain<'a>(hosts: &[&'a Outcome]) -> Vec<&'a str> {
    let mut lines: Vec<&str> = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let own = guest_lines(host);
        let own = match i {
            0 => own,
            _ => without_announced_repeats(&lines, own, host),
        };
        lines.extend(own);
    }
    lines
}

/// With `digests=on`: the backup's memory when it took over at epoch N equals the primary's
/// at epoch N (the digests both print). Returns the epoch; an error says what differs.
pub fn check_takeover_digest(pair: &PairOutcome) -> Result<u64, String> {
    check_digest_between(&pair.primary, &pair.backup)
}

/// [`check_takeover_digest`] for a `backup` that took the guest over from `primary`.
pub fn check_digest_between(primary: &Outcome, backup: &Outcome) -> Result<u64, String> {
    let took = backup
        .line_with(TAKEOVER_MARKER)
        .ok_or("the backup did not take over")?;
    let epoch = number_after(took, "at epoch");
    if !took.contains("memory digest") {
        return Err(format!("no memory digest at the takeover: {took}"));
    }
    // The last such line: a primary that took a new backup streams anew from epoch 0.
    let sent = format!("ft: epoch {epoch} sent:");
    let sent = primary
        .lines_with(&sent)
        .last()
        .ok_or(format!("the primary never finished sending epoch {epoch}"))?;
    match word_after(sent, "memory digest") == word_after(took, "memory digest") {
        true => Ok(epoch),
        false => Err(format!(
            "the backup's memory at takeover differs from the primary's at epoch {epoch}"
        )),
    }
}
