//! The kernel's serial contract: what Castor prints, parsed, and assertions over it.
//!
//! * Banner: a line containing `Castor v` and `booting`.
//! * Log lines: `[cpuN LEVEL] message`, LEVEL one of ERROR, WARN, INFO, DEBUG, TRACE padded to 5.
//! * Each CPU that comes up: `cpu N online (apic id X)`.
//! * `selftest=...`: `selftest NAME: ok` (optionally followed by ` details`),
//!   `selftest NAME: FAILED: reason` or `selftest NAME: skipped (why)` (a test that does not
//!   apply to this machine, e.g. VT-x guests on an AMD CPU), then
//!   `selftest summary: P passed, F failed, S skipped`, then [`PASS_MARKER`] or [`FAIL_MARKER`]; QEMU then
//!   exits with [`QEMU_EXIT_PASS`] or [`QEMU_EXIT_FAIL`], Bochs is shut down.
//! * Without self tests: [`READY_MARKER`], then idle.
//! * `guest=module`: Castor runs its first boot module as a Multiboot guest kernel and prints
//!   `guest: starting '<module cmdline>' (<bytes> bytes, <N> MiB RAM) under <VT-x|AMD-V>`,
//!   each line of the guest's serial output prefixed with [`GUEST_PREFIX`], then one verdict
//!   ([`GuestEnd`]): `guest exited with status <N>` (then the machine exits as a success),
//!   `guest stopped: <reason>` followed by a register dump (prefixed lines), `guest: cannot
//!   load '<cmdline>': <reason>` or `guest: cannot run guests: <why>` (then it exits as a
//!   failure). Any of these may carry a log prefix (`[cpu0 INFO ] `); see [`guest_end`].
//! * A fault-tolerant pair (`role=`): the backup applies checkpoints
//!   ([`APPLIED_EPOCH_MARKER`]), takes over when the primary goes silent ([`TAKEOVER_MARKER`],
//!   after [`PEER_LOST_MARKER`], announcing repeats with [`RELEASING_MARKER`]) or stands down
//!   when the guest ended on the primary ([`STANDDOWN_MARKER`]); a primary that loses its
//!   backup goes on unprotected ([`BACKUP_LOST_MARKER`]).

use crate::outcome::Outcome;
use crate::{Emulator, Run};
use std::collections::BTreeSet;

/// The kernel's own list of self tests (`kernel/src/config/selftests.rs`, a file with no
/// dependencies), compiled into the harness too so the two cannot drift.
#[allow(dead_code, missing_docs)]
#[path = "../../kernel/src/config/selftests.rs"]
mod kernel_selftests;

/// Self tests that `selftest=all` runs, in the order they run.
pub static SELFTESTS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    use kernel_selftests::{Selection, SelfTest};
    SelfTest::ALL
        .into_iter()
        .filter(|t| t.selection() == Selection::All)
        .map(SelfTest::name)
        .collect()
});
/// Self tests that need hardware virtualization (VT-x or AMD-V) to do their work and report
/// `skipped` without it. Every emulator configuration the tests use offers one, so none may be
/// skipped there; this is for runs on other machines.
pub const NEEDS_VIRTUALIZATION: [&str; 5] = ["guests", "triple", "hostile", "dirty", "cpustate"];
/// Printed after all self tests passed.
pub const PASS_MARKER: &str = "CASTOR-SELFTEST-PASS";
/// The exit's report of the bootstrap processor's stack use: `kernel stack: <N> of <M> KiB
/// used at most`.
pub const STACK_MARKER: &str = "kernel stack: ";
/// Printed after a self test failed.
pub const FAIL_MARKER: &str = "CASTOR-SELFTEST-FAIL";
/// Printed when the kernel is up and idle (no self tests).
pub const READY_MARKER: &str = "Castor ready";
/// QEMU's exit status after the kernel wrote 0x10 to the debug-exit port.
pub const QEMU_EXIT_PASS: i32 = 0x10 << 1 | 1;
/// QEMU's exit status after the kernel wrote 0x11 (failure, bad configuration, panic).
pub const QEMU_EXIT_FAIL: i32 = 0x11 << 1 | 1;
/// Log levels as they appear between the brackets.
pub const LEVELS: [&str; 5] = ["ERROR", "WARN ", "INFO ", "DEBUG", "TRACE"];

/// Prefix of every line of guest output (and of the register dump after `guest stopped:`).
pub const GUEST_PREFIX: &str = "[guest] ";
/// Castor's report that it starts a guest kernel.
pub const GUEST_STARTING: &str = "guest: starting '";
/// Castor's report that the guest ended by itself (followed by the decimal status).
pub const GUEST_EXITED: &str = "guest exited with status ";
/// Castor's report that it stopped the guest (followed by the reason).
pub const GUEST_STOPPED: &str = "guest stopped: ";
/// Castor's refusal of a boot module (followed by `<cmdline>': <reason>`).
pub const GUEST_CANNOT_LOAD: &str = "guest: cannot load '";
/// Castor's report that this machine cannot run guests (followed by why).
pub const GUEST_CANNOT_RUN: &str = "guest: cannot run guests: ";

/// A backup has applied a checkpoint: `ft: backup: applied epoch N ...` (epoch 0: the full
/// copy of guest memory).
pub const APPLIED_EPOCH_MARKER: &str = "ft: backup: applied epoch ";
/// The backup has taken over the guest: `ft: backup took over at epoch N (...)`.
pub const TAKEOVER_MARKER: &str = "ft: backup took over";
/// A backup taking over announces lines the primary may have released as it died:
/// `ft: backup: releasing K lines ...`.
pub const RELEASING_MARKER: &str = "ft: backup: releasing";
/// The guest ended on the primary and the backup stands down (its end is not the run's):
/// `ft: backup: the guest ended on the primary (status N); standing down`.
pub const STANDDOWN_MARKER: &str = "ft: backup: the guest ended on the primary";
/// The primary lost its backup and runs the guest unprotected:
/// `ft: backup lost after N ms of silence; ...`.
pub const BACKUP_LOST_MARKER: &str = "ft: backup lost after";
/// A host heard nothing from its peer for its `peer_timeout`: `link: peer lost after N ms of
/// silence`.
pub const PEER_LOST_MARKER: &str = "link: peer lost after";

/// Whether `line` is the boot banner.
pub fn is_banner(line: &str) -> bool {
    line.contains("Castor v") && line.contains("booting")
}

/// A parsed log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// The CPU that logged it.
    pub cpu: u32,
    /// The level, without padding.
    pub level: &'a str,
    /// The message.
    pub message: &'a str,
}

/// Parses `[cpuN LEVEL] message`; `None` if the line does not have that shape.
pub fn parse_log_line(line: &str) -> Option<LogLine<'_>> {
    let rest = line.strip_prefix("[cpu")?;
    let (cpu, rest) = rest.split_once(' ')?;
    let cpu = parse_decimal(cpu)?;
    let level = rest.get(..5).filter(|l| LEVELS.contains(l))?;
    let message = rest[5..].strip_prefix("] ")?;
    Some(LogLine {
        cpu,
        level: level.trim_end(),
        message,
    })
}

/// Lines that start like a log line (`[cpu`) but are malformed.
pub fn malformed_log_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    lines
        .into_iter()
        .filter(|l| l.starts_with("[cpu") && parse_log_line(l).is_none())
        .collect()
}

/// Every `cpu N online (apic id X)` report, as (N, X) in order of appearance.
pub fn online_cpus<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<(u32, String)> {
    const ONLINE: &str = " online (apic id ";
    let mut cpus = Vec::new();
    for line in lines {
        let Some(at) = line.find(ONLINE) else {
            continue;
        };
        let before = &line[..at];
        let digits = before.len() - before.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (prefix, number) = before.split_at(before.len() - digits);
        let Some(cpu) = parse_decimal(number).filter(|_| prefix.ends_with("cpu ")) else {
            continue;
        };
        let Some((apic, _)) = line[at + ONLINE.len()..].split_once(')') else {
            continue;
        };
        cpus.push((cpu, apic.to_string()));
    }
    cpus
}

/// A self test's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `ok`.
    Ok,
    /// `FAILED: reason`.
    Failed(String),
    /// `skipped (why)`.
    Skipped(String),
}

impl Verdict {
    /// Whether the test failed.
    pub fn is_failed(&self) -> bool {
        matches!(self, Verdict::Failed(_))
    }
}

/// Every `selftest NAME: ok [details]` / `FAILED: reason` / `skipped (why)`, in order.
pub fn selftest_results<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<(String, Verdict)> {
    let mut results = Vec::new();
    for line in lines {
        let Some((_, rest)) = line.split_once("selftest ") else {
            continue;
        };
        let Some((name, verdict)) = rest.split_once(": ") else {
            continue;
        };
        if name == "summary" || name.contains(' ') {
            continue;
        }
        let verdict = match verdict.trim_end() {
            v if v == "ok" || v.starts_with("ok ") => Verdict::Ok,
            v if v.starts_with("skipped") => {
                let why = v["skipped".len()..]
                    .trim()
                    .trim_start_matches('(')
                    .trim_end_matches(')');
                Verdict::Skipped(why.to_string())
            }
            v => match v.strip_prefix("FAILED") {
                Some(reason) => Verdict::Failed(reason.trim_start_matches(':').trim().to_string()),
                None => continue,
            },
        };
        results.push((name.to_string(), verdict));
    }
    results
}

/// The last `selftest summary: P passed, F failed, S skipped`, as (P, F, S).
pub fn selftest_summary<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<(u32, u32, u32)> {
    lines
        .into_iter()
        .filter_map(|l| {
            let (passed, failed) = two_numbers(l, "selftest summary: ", " passed, ", " failed")?;
            let (_, skipped) = two_numbers(l, " passed, ", " failed, ", " skipped")?;
            Some((passed, failed, skipped))
        })
        .last()
}

/// The last `wx audit: N mappings checked, W writable+executable`, as (N, W).
pub fn wx_audit<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<(u32, u32)> {
    let tail = " writable+executable";
    lines
        .into_iter()
        .filter_map(|l| two_numbers(l, "wx audit: ", " mappings checked, ", tail))
        .last()
}

/// Parses `...{head}A{middle}B{tail}...` into (A, B).
fn two_numbers(line: &str, head: &str, middle: &str, tail: &str) -> Option<(u32, u32)> {
    let (_, rest) = line.split_once(head)?;
    let (a, rest) = rest.split_once(middle)?;
    let (b, _) = rest.split_once(tail)?;
    Some((parse_decimal(a)?, parse_decimal(b)?))
}

fn parse_decimal_u64(s: &str) -> Option<u64> {
    match !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        true => s.parse().ok(),
        false => None,
    }
}

fn parse_decimal(s: &str) -> Option<u32> {
    match !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        true => s.parse().ok(),
        false => None,
    }
}

/// A line's text without a log prefix (`[cpu0 INFO ] `), if it has one.
fn message(line: &str) -> &str {
    parse_log_line(line).map_or(line, |l| l.message)
}

/// The guest's output: every line carrying [`GUEST_PREFIX`] (after an optional log prefix),
/// with the prefix removed, in order.
pub fn guest_output<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    lines
        .into_iter()
        .filter_map(|l| message(l).strip_prefix(GUEST_PREFIX))
        .collect()
}

/// Castor's `guest: starting ...` report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestStart {
    /// The module's command line as Castor passes it to the guest.
    pub cmdline: String,
    /// Size of the module in bytes.
    pub bytes: u64,
    /// Guest RAM in MiB.
    pub ram_mib: u64,
    /// The virtualization back end (`VT-x`, `AMD-V`).
    pub backend: String,
}

/// Parses the first `guest: starting '<cmdline>' (<bytes> bytes, <N> MiB RAM) under <backend>`.
pub fn guest_start<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<GuestStart> {
    lines.into_iter().find_map(|line| {
        let rest = message(line).strip_prefix(GUEST_STARTING)?;
        let (cmdline, rest) = rest.rsplit_once("' (")?;
        let (bytes, rest) = rest.split_once(" bytes, ")?;
        let (ram, backend) = rest.split_once(" MiB RAM) under ")?;
        Some(GuestStart {
            cmdline: cmdline.to_string(),
            bytes: parse_decimal_u64(bytes)?,
            ram_mib: parse_decimal_u64(ram)?,
            backend: backend.trim_end().to_string(),
        })
    })
}

/// How Castor said a guest ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestEnd {
    /// `guest exited with status N`: the guest's own exit (debug-exit port or EXIT hypercall).
    Exited(u64),
    /// `guest stopped: reason`: the guest faulted, halted for good or did something Castor
    /// does not handle.
    Stopped(String),
    /// `guest: cannot load '<cmdline>': reason`: the module is not a kernel Castor can load.
    CannotLoad(String),
    /// `guest: cannot run guests: why`: no usable hardware virtualization.
    CannotRun(String),
}

impl GuestEnd {
    /// Parses one line as a verdict. `guest stopped:` may carry [`GUEST_PREFIX`] (it heads the
    /// register dump); the others are Castor's own lines and must not, so guest output that
    /// merely looks like a verdict does not count.
    pub fn parse(line: &str) -> Option<GuestEnd> {
        let text = message(line);
        if let Some(rest) = text.strip_prefix(GUEST_EXITED) {
            return parse_decimal_u64(rest.trim_end()).map(GuestEnd::Exited);
        }
        if let Some(rest) = text.strip_prefix(GUEST_CANNOT_LOAD) {
            return Some(GuestEnd::CannotLoad(rest.trim_end().to_string()));
        }
        if let Some(rest) = text.strip_prefix(GUEST_CANNOT_RUN) {
            return Some(GuestEnd::CannotRun(rest.trim_end().to_string()));
        }
        let text = text.strip_prefix(GUEST_PREFIX).unwrap_or(text);
        let rest = text.strip_prefix(GUEST_STOPPED)?;
        Some(GuestEnd::Stopped(rest.trim_end().to_string()))
    }
}

/// Castor's verdict on the guest: the *last* line [`GuestEnd::parse`] accepts (Castor reports
/// after all of the guest's output, so a guest printing a look-alike cannot override it).
pub fn guest_end<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<GuestEnd> {
    lines.into_iter().filter_map(GuestEnd::parse).last()
}

/// Asserts a boot on `cpus` CPUs: exactly one banner, well-formed log lines, and exactly one
/// `online` report for each of CPUs 0..cpus with distinct APIC ids.
pub fn assert_booted(outcome: &Outcome, cpus: u32) {
    let why = outcome.summary();
    let banners = outcome.lines().filter(|l| is_banner(l)).count();
    // More than one banner means the machine reset and booted again.
    assert_eq!(banners, 1, "{}: banner lines ({why})", outcome.emulator);
    let malformed = malformed_log_lines(outcome.lines());
    assert!(malformed.is_empty(), "malformed log lines: {malformed:#?}");
    let online = online_cpus(outcome.lines());
    let numbers: Vec<u32> = online.iter().map(|(cpu, _)| *cpu).collect();
    assert_eq!(
        numbers.iter().copied().collect::<BTreeSet<_>>(),
        (0..cpus).collect(),
        "online CPUs ({why})"
    );
    assert_eq!(
        numbers.len(),
        cpus as usize,
        "each CPU reports online once: {online:?}"
    );
    let apics: BTreeSet<&String> = online.iter().map(|(_, apic)| apic).collect();
    assert_eq!(
        apics.len(),
        online.len(),
        "APIC ids must be distinct: {online:?}"
    );
}

/// Asserts a `selftest=all` run on `cpus` CPUs passed: [`assert_booted`], every self test in
/// [`SELFTESTS`] reported exactly once, `ok` — or `skipped` if named in `may_skip` — and none
/// failed, the summary agrees, the pass marker is present, and the emulator exited by itself
/// (QEMU with [`QEMU_EXIT_PASS`]).
pub fn assert_selftest_pass(outcome: &Outcome, cpus: u32, may_skip: &[&str]) {
    assert_selftests_pass(outcome, cpus, &SELFTESTS, may_skip);
}

/// As [`assert_selftest_pass`] for a run of exactly the self tests `tests`.
pub fn assert_selftests_pass(outcome: &Outcome, cpus: u32, tests: &[&str], may_skip: &[&str]) {
    assert_booted(outcome, cpus);
    let results = selftest_results(outcome.lines());
    let failed: Vec<_> = results.iter().filter(|(_, v)| v.is_failed()).collect();
    assert!(failed.is_empty(), "self tests failed: {failed:?}");
    assert_eq!(
        results.len(),
        tests.len(),
        "self tests reported: {results:?}"
    );
    for name in tests {
        let verdicts: Vec<_> = results
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(
            verdicts.len(),
            1,
            "selftest {name} reported {verdicts:?} ({})",
            outcome.summary()
        );
        let allowed = *verdicts[0] == Verdict::Ok
            || (may_skip.contains(name) && matches!(verdicts[0], Verdict::Skipped(_)));
        assert!(
            allowed,
            "selftest {name}: {:?} ({})",
            verdicts[0],
            outcome.summary()
        );
    }
    let count = |want: fn(&Verdict) -> bool| results.iter().filter(|(_, v)| want(v)).count() as u32;
    let summary = selftest_summary(outcome.lines());
    assert_eq!(
        summary,
        Some((
            count(|v| *v == Verdict::Ok),
            0,
            count(|v| matches!(v, Verdict::Skipped(_)))
        )),
        "selftest summary ({})",
        outcome.summary()
    );
    outcome.expect_line(PASS_MARKER);
    assert!(
        outcome.line_with(FAIL_MARKER).is_none(),
        "{FAIL_MARKER} printed"
    );
    outcome.expect_no_timeout();
    if outcome.emulator == "qemu" {
        outcome.expect_exit_code(QEMU_EXIT_PASS);
    }
    assert_stack_report(outcome);
}

/// The exit's `kernel stack: <N> of <M> KiB used at most` line: the painted stack was used
/// (N > 0) and did not run out (N < M).
pub fn assert_stack_report(outcome: &Outcome) {
    let line = outcome.expect_line(STACK_MARKER);
    let used = crate::scrape::number_after(line, STACK_MARKER);
    let size = crate::scrape::number_after(line, " of ");
    assert!(0 < used && used < size, "{line}");
}

/// Boots `selftest=` with exactly `tests` under `emulator` on `cpus` CPUs and asserts
/// [`assert_selftests_pass`] (nothing may be skipped).
pub fn boot_selftests(emulator: Emulator, cpus: u32, tests: &[&str]) {
    let run = Run::new(emulator)
        .cpus(cpus)
        .cmdline(&format!("selftest={}", tests.join(",")));
    let outcome = run.start().expect("starting the emulator").wait_exit();
    assert_selftests_pass(&outcome, cpus, tests, &[]);
}

/// Boots `selftest=all` under `emulator` on `cpus` CPUs and asserts [`assert_selftest_pass`].
pub fn boot_selftest_all(emulator: Emulator, cpus: u32, may_skip: &[&str]) {
    let run = Run::new(emulator).cpus(cpus).cmdline("selftest=all");
    let outcome = run.start().expect("starting the emulator").wait_exit();
    assert_selftest_pass(&outcome, cpus, may_skip);
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "Castor v0.1.0 booting\n\
        [cpu0 INFO ] cpu 0 online (apic id 0)\n\
        [cpu1 DEBUG] cpu 1 online (apic id 2)\n\
        [cpu0 INFO ] selftest alloc: ok (256 frames)\n\
        selftest wx: okay?\n\
        [cpu0 ERROR] selftest heap: FAILED: out of memory: 3 pages\n\
        [cpu0 INFO ] wx audit: 42 mappings checked, 0 writable+executable\n\
        [cpu0 INFO ] selftest guests: skipped (no VT-x)\n\
        [cpu0 INFO ] selftest summary: 1 passed, 1 failed, 1 skipped\n\
        [cpu0 WARN] bad\n\
        [cpu12 TRACE] x\n";

    #[test]
    fn log_lines_parse() {
        let line = parse_log_line("[cpu12 TRACE] x").unwrap();
        assert_eq!(
            line,
            LogLine {
                cpu: 12,
                level: "TRACE",
                message: "x"
            }
        );
        let warn = parse_log_line("[cpu0 WARN ] careful").unwrap();
        assert_eq!((warn.level, warn.message), ("WARN", "careful"));
        assert_eq!(malformed_log_lines(LOG.lines()), ["[cpu0 WARN] bad"]);
        assert!(parse_log_line("[cpux INFO ] y").is_none());
    }

    #[test]
    fn online_reports_parse() {
        let mut lines: Vec<&str> = LOG.lines().collect();
        lines.push("cpu 3 online (apic id 0x6)");
        lines.push("gpu 4 online (apic id 1)");
        let expected = [(0, "0"), (1, "2"), (3, "0x6")].map(|(c, a)| (c, a.to_string()));
        assert_eq!(online_cpus(lines), expected);
    }

    #[test]
    fn selftest_lines_parse() {
        let results = selftest_results(LOG.lines());
        let expected = [
            ("alloc".to_string(), Verdict::Ok),
            (
                "heap".to_string(),
                Verdict::Failed("out of memory: 3 pages".to_string()),
            ),
            (
                "guests".to_string(),
                Verdict::Skipped("no VT-x".to_string()),
            ),
        ];
        assert_eq!(results, expected);
        assert_eq!(selftest_summary(LOG.lines()), Some((1, 1, 1)));
        assert_eq!(wx_audit(LOG.lines()), Some((42, 0)));
        assert!(LOG.lines().any(is_banner));
    }

    const GUEST_LOG: &str = "[cpu0 INFO ] guest: starting 'status=7 a='b' (3072 bytes, 8 MiB RAM) under VT-x\n\
        [guest] mbtest: hello from a Multiboot guest\n\
        [guest] guest exited with status 9\n\
        [cpu0 INFO ] [guest] mbtest: exit status 7\n\
        [cpu0 INFO ] guest exited with status 7\n";

    #[test]
    fn guest_reports_parse() {
        let start = guest_start(GUEST_LOG.lines()).unwrap();
        assert_eq!(
            start,
            GuestStart {
                cmdline: "status=7 a='b".into(),
                bytes: 3072,
                ram_mib: 8,
                backend: "VT-x".into()
            }
        );
        assert_eq!(
            guest_output(GUEST_LOG.lines()),
            [
                "mbtest: hello from a Multiboot guest",
                "guest exited with status 9",
                "mbtest: exit status 7"
            ]
        );
        // The guest's look-alike line does not count; Castor's own (last) one does.
        assert_eq!(guest_end(GUEST_LOG.lines()), Some(GuestEnd::Exited(7)));
        assert_eq!(guest_end(GUEST_LOG.lines().take(3)), None);
    }

    #[test]
    fn guest_verdicts_parse() {
        let parse = GuestEnd::parse;
        assert_eq!(
            parse("[guest] guest stopped: Shutdown"),
            Some(GuestEnd::Stopped("Shutdown".into()))
        );
        assert_eq!(
            parse("[cpu0 ERROR] guest stopped: BadAccess { gpa: 0x1000 }"),
            Some(GuestEnd::Stopped("BadAccess { gpa: 0x1000 }".into()))
        );
        assert_eq!(
            parse("guest: cannot load 'junk x=1': no Multiboot header"),
            Some(GuestEnd::CannotLoad(
                "junk x=1': no Multiboot header".into()
            ))
        );
        assert_eq!(
            parse("[cpu0 ERROR] guest: cannot run guests: no VMX"),
            Some(GuestEnd::CannotRun("no VMX".into()))
        );
        assert_eq!(
            parse("guest exited with status 4294967295"),
            Some(GuestEnd::Exited(u64::from(u32::MAX)))
        );
        for no in [
            "guest exited with status x",
            "guest exited with status ",
            "[guest] guest: cannot run guests: fake",
            "mbtest: exit status 7",
        ] {
            assert_eq!(parse(no), None, "{no:?}");
        }
        // A stop after a guest line that looks like an exit: the last verdict wins.
        let log = "[guest] mbtest: x\n[guest] guest stopped: Halted\n[guest] RIP=0x10\n";
        assert_eq!(
            guest_end(log.lines()),
            Some(GuestEnd::Stopped("Halted".into()))
        );
    }

    #[test]
    fn exit_statuses_follow_qemu_debug_exit() {
        assert_eq!((QEMU_EXIT_PASS, QEMU_EXIT_FAIL), (33, 35));
    }
}
