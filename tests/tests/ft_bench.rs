//! Fault-tolerance benchmarks: figures printed, not timed tests (absolute emulator times are
//! noisy; each ratio comes from one run). Run with `--nocapture` (`scripts/test` does) and,
//! like `scripts/test`, with `CASTOR_QEMU_ICOUNT=3`: QEMU's clock then follows its instruction
//! count, so rates are taken from the guest's own reports, not from wall time. The guest times
//! its work on two clocks: its PIT (timer interrupts, which a monitor that holds the guest or
//! delivers ticks late makes lose time) and the TSC it reads from the host (cycles converted
//! with the TSC rate Castor prints at boot), which nothing can slow; both are printed, and the
//! share of TSC time the PIT saw shows lost ticks.
//!
//! One test measures, in order:
//!
//! 1. for each of two workloads, the demo guest in work mode (`work=<s> pages=N span=M`: steps
//!    back to back, the rate reported on the guest's PIT clock) on one Castor host without
//!    fault tolerance, then on a QEMU primary/backup pair asked for 40 epochs/s
//!    (`epoch_min=epoch_max=25`): the work rate the primary released over the rate alone, the
//!    epochs/s achieved, and from the primary's final `ft: primary:` summary the stun/copy
//!    ratio (stun time ÷ time to copy the same dirty pages) and wire bytes per dirty page ÷
//!    4096. The workloads: the demo's 64 pages per step over 4 MiB, which dirties far more per
//!    epoch than the emulated link carries in 25 ms (the epochs then stretch to the transfer),
//!    and a one-page working set that the link can keep up with;
//! 2. a failover: a pair running the paced demo, the primary SIGKILLed, and the wall time from
//!    the kill to the backup's first released step line.
//!
//! Another measures the heavy workload on pairs whose primary has one CPU, then two (the
//! checkpoint pipeline beside the guest), on the host clock; another the stun/copy ratio on
//! VT-x, on a Bochs pair.
//!
//! Only what must hold is asserted: each guest ran to completion and reported consistently,
//! the figures are present and parse, and the failover's released output is the demo's exact
//! step sequence. (Harvest time against RAM size is `bench_harvest_*` in `bench.rs`.)

use castor_tests::contract::{
    self, APPLIED_EPOCH_MARKER, GuestEnd, STANDDOWN_MARKER, TAKEOVER_MARKER,
};
use castor_tests::demo::{DemoParams, WorkParams, WorkRun, check_released, check_work};
use castor_tests::pair::released::released;
use castor_tests::pair::{Pair, Role};
use castor_tests::qemu::Qemu;
use castor_tests::scrape::{decimal_after, number_after};
use castor_tests::{Emulator, Outcome, Run, kernel};
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Seconds of work per run: long enough that the primary's summary (every 5 s) has timed a
/// plain copy of a dirty set.
const WORK_SECS: u64 = 8;
/// The workloads: the demo's default working set, one page, and the default working set with
/// an eighth of each page rewritten per step (the rest keeps its contents, so a page sent
/// before can travel as the bytes that changed).
const WORKLOADS: [WorkParams; 3] = [
    WorkParams {
        pages: 64,
        span: 1024,
        words: 512,
        secs: WORK_SECS,
    },
    WorkParams {
        pages: 1,
        span: 1,
        words: 512,
        secs: WORK_SECS,
    },
    WorkParams {
        pages: 64,
        span: 1024,
        words: 64,
        secs: WORK_SECS,
    },
];
/// Guest RAM in every run (MiB).
const GUEST_RAM_MIB: u32 = 32;
/// Epoch length for 40 epochs per second.
const EPOCH_MS: u32 = 25;
/// Wall-time limit of each emulator.
const HOST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the paced demo runs on the primary before the kill.
const KILL_AFTER: Duration = Duration::from_millis(1500);

fn demo() -> &'static Path {
    kernel::demo().expect("building castor-demo")
}

/// Checks that Castor reported the guest's exit with status 0 and that the guest's released
/// lines are one complete work run with `work`.
fn work_run(work: &WorkParams, outcome: &Outcome) -> WorkRun {
    let why = outcome.summary();
    assert_eq!(
        contract::guest_end(outcome.lines()),
        Some(GuestEnd::Exited(0)),
        "{why}"
    );
    let output = contract::guest_output(outcome.lines());
    check_work(work, output).unwrap_or_else(|v| panic!("{v} ({why})"))
}

/// The TSC rate in Hz that Castor reports (`timers: TSC <MHz> MHz, ...`).
fn tsc_hz(outcome: &Outcome) -> f64 {
    let line = outcome.expect_line("timers: TSC ");
    let mhz = decimal_after(line, "timers: TSC ");
    assert!(mhz > 0.0, "no TSC rate: {line}");
    mhz * 1e6
}

/// What a work run reported, with the TSC rate of its host.
struct Measured {
    run: WorkRun,
    tsc_hz: f64,
}

impl Measured {
    /// Steps per second on the guest's PIT clock.
    fn pit_rate(&self) -> f64 {
        self.run.total.steps_per_sec()
    }

    /// Steps per second on the TSC.
    fn tsc_rate(&self) -> f64 {
        self.run.total.steps_per_tsc_sec(self.tsc_hz)
    }

    /// PIT time over TSC time.
    fn pit_share(&self) -> f64 {
        self.run.total.ms as f64 / 1000.0 / self.run.total.tsc_secs(self.tsc_hz)
    }
}

/// The work guest on one Castor host, without fault tolerance.
fn work_without_ft(work: &WorkParams) -> Measured {
    work_alone(work, Emulator::qemu())
}

/// [`work_without_ft`] under `emulator`.
fn work_alone(work: &WorkParams, emulator: Emulator) -> Measured {
    let outcome = Run::new(emulator)
        .cmdline(&format!("guest=module guest_ram={GUEST_RAM_MIB}"))
        .module("guest", demo(), &work.args())
        .fail_markers(&["PANIC", "demo: error:"])
        .timeout(HOST_TIMEOUT)
        .start()
        .expect("starting QEMU")
        .wait_exit();
    outcome.expect_no_timeout();
    Measured {
        run: work_run(work, &outcome),
        tsc_hz: tsc_hz(&outcome),
    }
}

/// The primary's `ft: primary: <N> epochs ...` summary (kernel/src/pair/stats.rs).
#[derive(Debug)]
struct Summary {
    epochs: f64,
    epochs_per_sec: f64,
    dirty: f64,
    stun_us: f64,
    harvest_us: f64,
    copy_us: f64,
    stun_per_copy: f64,
    wire_bytes: f64,
    wire_ratio: f64,
    /// Pages sent as deltas, and the copy cache's hit rate (%).
    deltas: f64,
    cache_hits: f64,
    link_kib: f64,
}

impl Summary {
    fn parse(line: &str) -> Summary {
        let after = |key: &str| decimal_after(line, key);
        Summary {
            epochs: after("ft: primary:"),
            epochs_per_sec: after("epochs ("),
            dirty: after("dirty"),
            stun_us: after("stun"),
            harvest_us: after("harvest"),
            copy_us: after("copy of the same pages"),
            stun_per_copy: after("stun/copy"),
            wire_bytes: after("wire"),
            wire_ratio: after("bytes/page ("),
            deltas: after("deltas"),
            cache_hits: after("copies,"),
            link_kib: after("link"),
        }
    }
}

/// The work guest on a QEMU pair at 40 epochs/s: what the primary released, and its last
/// summary.
fn work_with_ft(work: &WorkParams) -> (Measured, Summary) {
    work_on_pair(work, |pair| pair)
}

/// [`work_with_ft`] on the pair `setup` makes of the usual one.
fn work_on_pair(work: &WorkParams, setup: impl FnOnce(Pair) -> Pair) -> (Measured, Summary) {
    let pair = Pair::qemu()
        .guest(demo(), &work.args())
        .guest_ram_mib(GUEST_RAM_MIB)
        .epoch_ms(EPOCH_MS, EPOCH_MS)
        .timeout(HOST_TIMEOUT);
    let h = setup(pair).start().expect("starting the pair");
    let outcome = h.wait_exit();
    let primary = &outcome.primary;
    primary.expect_no_timeout();
    let protecting = format!("epochs {EPOCH_MS}-{EPOCH_MS} ms");
    assert!(
        primary
            .expect_line("ft: primary: protecting")
            .contains(&protecting),
        "{}",
        primary.summary()
    );
    let run = Measured {
        run: work_run(work, primary),
        tsc_hz: tsc_hz(primary),
    };
    // The backup heard of the end and stood down (it never took over).
    outcome
        .backup
        .expect_line(&format!("{STANDDOWN_MARKER} (status 0)"));
    let line = primary
        .lines()
        .filter(|l| l.starts_with("ft: primary: ") && l.contains(" epochs ("))
        .last()
        .unwrap_or_else(|| panic!("no summary ({})", primary.summary()));
    println!("{line}");
    print_sender_line(primary);
    let summary = Summary::parse(line);
    assert!(
        summary.epochs > 0.0 && summary.dirty > 0.0,
        "no epochs of dirty pages: {line}"
    );
    assert!(
        summary.copy_us > 0.0,
        "the summary never timed a copy (the run was shorter than its 5 s period?): {line}"
    );
    assert!(
        (summary.wire_ratio - summary.wire_bytes / 4096.0).abs() < 0.002,
        "wire ratio consistent with its bytes: {line}"
    );
    (run, summary)
}

/// Prints where the primary's sender spent its time (its last report), checking the line adds
/// up: pages encoded, and a share of the elapsed time no larger than all of it; then how often
/// the guest's CPU took the checkpoint lock besides its stuns.
fn print_sender_line(primary: &Outcome) {
    let line = last_line(primary, "ft: primary: sender: ");
    println!("{line}");
    let pages = number_after(line, "sender: ");
    let share = line
        .split("ms; ")
        .nth(1)
        .and_then(|s| s.split('%').next())
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no share: {line}"));
    assert!(pages > 0, "pages encoded: {line}");
    assert!(
        (0.0..=100.0).contains(&share),
        "a share of the time: {line}"
    );
    let holds = last_line(primary, "ft: primary: guest CPU: ");
    println!("{holds}");
    let (held, waited) = (
        number_after(holds, "lock "),
        number_after(holds, "waited for it "),
    );
    assert!(waited <= held, "waits are holds: {holds}");
}

/// The primary's last line that starts with `prefix`.
fn last_line<'o>(primary: &'o Outcome, prefix: &str) -> &'o str {
    primary
        .lines()
        .filter(|l| l.starts_with(prefix))
        .last()
        .unwrap_or_else(|| panic!("no line {prefix:?} ({})", primary.summary()))
}

/// A pair running the paced demo loses its primary: wall time from the kill to the backup's
/// first released step line, and the backup's takeover line.
fn failover() -> (Duration, u32, String) {
    let params = DemoParams::default();
    let pair = Pair::qemu()
        .guest(demo(), &params.args(0))
        .guest_ram_mib(GUEST_RAM_MIB)
        .timeout(HOST_TIMEOUT);
    let peer_timeout = pair.effective_peer_timeout_ms();
    let mut h = pair.start().expect("starting the pair");
    h.wait_for(Role::Backup, &format!("{APPLIED_EPOCH_MARKER}0"))
        .expect("the backup applies the full copy");
    h.wait_for(Role::Primary, "[guest] demo: step=")
        .expect("the primary releases guest output");
    sleep(KILL_AFTER);
    let killed = h.kill_primary().expect("killing the primary");
    h.wait_for(Role::Backup, "[guest] demo: step=")
        .expect("the backup releases guest output");
    let failover = killed.elapsed();
    let took = h
        .wait_for(Role::Backup, TAKEOVER_MARKER)
        .expect("the backup took over");
    sleep(Duration::from_secs(1));
    let outcome = h.stop();
    let (primary, backup) = (&outcome.primary, &outcome.backup);
    // The backup may repeat the primary's last lines, announced (output commit's one window).
    let summary = check_released(&params, released(&outcome));
    let summary = summary.unwrap_or_else(|v| {
        panic!(
            "released output is wrong: {v}\n--- primary ---\n{}\n--- backup ---\n{}",
            primary.summary(),
            backup.summary()
        )
    });
    assert_eq!(summary.first, 0, "the output starts at step 0");
    assert!(
        contract::guest_output(backup.lines())
            .iter()
            .any(|l| l.starts_with("demo: step=")),
        "the backup released steps"
    );
    (failover, peer_timeout, took)
}

/// Measures `work` alone and with FT and prints the figures.
fn work_rates(work: &WorkParams) {
    let alone = work_without_ft(work);
    let (with_ft, summary) = work_with_ft(work);
    let (a, b) = (with_ft.tsc_rate(), alone.tsc_rate());
    let WorkParams {
        pages, span, words, ..
    } = work;
    println!(
        "ft bench: work rate with FT at 40 epochs/s / without FT = {:.3} ({a:.1} vs {b:.1} \
         steps/s on the host TSC; pages={pages} span={span} words={words}: {:.0} vs {:.0} \
         pages/s)",
        a / b,
        a * *pages as f64,
        b * *pages as f64,
    );
    let (a, b) = (with_ft.pit_rate(), alone.pit_rate());
    let range = |m: &Measured| {
        let (lo, hi) = m.run.rate_range();
        format!("{lo:.0}-{hi:.0}")
    };
    println!(
        "ft bench:   on the guest's PIT clock: {:.3} ({a:.1} vs {b:.1} steps/s, per second {} \
         vs {}); the PIT saw {:.0}% of the TSC's time with FT, {:.0}% without",
        a / b,
        range(&with_ft),
        range(&alone),
        with_ft.pit_share() * 100.0,
        alone.pit_share() * 100.0,
    );
    let tsc_secs = with_ft.run.total.tsc_secs(with_ft.tsc_hz);
    println!(
        "ft bench: epochs achieved {:.1}/s of 40 asked ({} epochs in the guest's {tsc_secs:.1} \
         s on the TSC; the summary says {}/s), dirty {} pages/epoch",
        summary.epochs / tsc_secs,
        summary.epochs,
        summary.epochs_per_sec,
        summary.dirty
    );
    println!(
        "ft bench: stun / copy of the same dirty set = {:.2} ({} us vs {} us, harvest {} us)",
        summary.stun_per_copy, summary.stun_us, summary.copy_us, summary.harvest_us
    );
    println!(
        "ft bench: wire bytes per dirty page / 4096 = {:.3} ({} bytes/page, {} pages sent as \
         deltas, copy cache hits {}%, link {} KiB/s)",
        summary.wire_ratio,
        summary.wire_bytes,
        summary.deltas,
        summary.cache_hits,
        summary.link_kib
    );
}

/// The checkpoint pipeline on a second CPU against the guest's own, for the heavy workload
/// (64 pages a step): both pairs on the host clock (with `-icount` QEMU runs its CPUs one at a
/// time, so a second CPU could only take turns with the guest), the primary with one CPU,
/// then with two. The guest's rates on its TSC, and the primary's stun/copy and link figures.
/// Then the demo's default workload (a page a step) with the pipeline on cpu 1, as pair hosts
/// run by default, against unprotected runs before and after it.
#[test]
fn bench_ft_pipeline_beside_the_guest() {
    let work = &WORKLOADS[0];
    let alone = work_alone(work, Emulator::Qemu(Qemu::kernel().host_clock()));
    let (one, one_summary) = work_on_pair(work, |pair| pair.host_clock());
    let (two, two_summary) = work_on_pair(work, |pair| pair.host_clock().cpus(2));
    let (a, b, c) = (two.tsc_rate(), one.tsc_rate(), alone.tsc_rate());
    println!(
        "ft bench: pipeline beside the guest: work rate with FT at 40 epochs/s / without FT, \
         host clock, pages={} span={}: {:.3} with the pipeline on cpu 1, {:.3} on the guest's \
         cpu ({a:.1} and {b:.1} vs {c:.1} steps/s on the host TSC)",
        work.pages,
        work.span,
        a / c,
        b / c,
    );
    println!(
        "ft bench: pipeline beside the guest: work rate on cpu 1 / on the guest's cpu = {:.3} \
         (epochs/s {} vs {}, link {} vs {} KiB/s, stun/copy {:.2} vs {:.2}; the PIT saw {:.0}% \
         of the TSC's time on cpu 1, {:.0}% on the guest's cpu)",
        a / b,
        two_summary.epochs_per_sec,
        one_summary.epochs_per_sec,
        two_summary.link_kib,
        one_summary.link_kib,
        two_summary.stun_per_copy,
        one_summary.stun_per_copy,
        two.pit_share() * 100.0,
        one.pit_share() * 100.0,
    );
    println!(
        "ft bench: pipeline beside the guest: stun / copy of the same dirty set, pipeline on \
         cpu 1 = {:.2} ({} us vs {} us, dirty {} pages/epoch)",
        two_summary.stun_per_copy, two_summary.stun_us, two_summary.copy_us, two_summary.dirty
    );
    // On the host clock an unprotected run's rate moves with the machine's load (by 10-30%
    // between runs here): one before and one after the pair, and their mean.
    let light = &WORKLOADS[1];
    let alone = || work_alone(light, Emulator::Qemu(Qemu::kernel().host_clock())).tsc_rate();
    let before = alone();
    let (two, _) = work_on_pair(light, |pair| pair.host_clock().cpus(2));
    let after = alone();
    let (a, c) = (two.tsc_rate(), (before + after) / 2.0);
    println!(
        "ft bench: pipeline beside the guest: work rate with FT at 40 epochs/s / without FT, \
         host clock, pages={} span={}: {:.3} with the pipeline on cpu 1 ({a:.1} vs {c:.1} \
         steps/s on the host TSC, without FT {before:.1} before the pair and {after:.1} after)",
        light.pages,
        light.span,
        a / c,
    );
}

/// Summaries the VT-x stun bench waits for (one every 5 s of the primary's time).
const BOCHS_SUMMARIES: usize = 6;
/// The VT-x stun bench's epochs: Bochs runs the demo's steps slower than QEMU, so an epoch
/// takes longer to dirty the hundred-odd pages the stun/copy target starts at.
const BOCHS_EPOCH_MS: u32 = 400;

/// The stun on VT-x (Bochs: EPT, dirty pages from the page-modification log) against a copy of
/// the same pages, as the AMD-V rows measure it on QEMU: a Bochs pair running the paced demo
/// with a heavy dirty rate (64 pages a step over 4 MiB) until the primary's
/// [`BOCHS_SUMMARIES`]th summary.
#[test]
fn bench_ft_stun_under_bochs_vtx() {
    let params = DemoParams {
        pages: 64,
        span: 1024,
        hz: 20,
    };
    let mut h = Pair::bochs()
        .guest(demo(), &params.args(0))
        .guest_ram_mib(GUEST_RAM_MIB)
        .epoch_ms(BOCHS_EPOCH_MS, BOCHS_EPOCH_MS)
        .start()
        .expect("starting the Bochs pair");
    h.wait_for(Role::Primary, "stun parts")
        .expect("the primary's first summary");
    // Its figures count from the full copy: a few summaries on, they are the steady state's.
    let deadline = Instant::now() + Duration::from_secs(180);
    let line = loop {
        let console = h.console(Role::Primary).expect("the primary's console");
        let summaries: Vec<&str> = console
            .lines()
            .filter(|l| l.contains("stun parts"))
            .collect();
        if summaries.len() >= BOCHS_SUMMARIES {
            break summaries[BOCHS_SUMMARIES - 1].to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no summary {BOCHS_SUMMARIES}: {console}"
        );
        sleep(Duration::from_millis(500));
    };
    let outcome = h.stop();
    let line = line.trim_end();
    println!("{line}");
    let summary = Summary::parse(line);
    assert!(
        summary.epochs > 0.0 && summary.copy_us > 0.0,
        "epochs and a timed copy: {line} ({})",
        outcome.primary.summary()
    );
    println!(
        "ft bench: VT-x stun / copy of the same dirty set = {:.2} ({} us vs {} us, harvest {} \
         us, dirty {} pages/epoch)",
        summary.stun_per_copy, summary.stun_us, summary.copy_us, summary.harvest_us, summary.dirty
    );
}

#[test]
fn bench_ft_work_rate_stun_wire_and_failover() {
    for work in &WORKLOADS {
        work_rates(work);
    }
    let (failover, peer_timeout, took) = failover();
    println!(
        "ft bench: failover {} ms (peer_timeout {peer_timeout} ms)",
        failover.as_millis()
    );
    println!("ft bench: backup: {}", took.trim_end());
}

/// A pair's run as a plot (`ft_trace=on`): the demo's default workload (64 pages a step over
/// 4 MiB, 20 steps/s) for 12 s, its per-epoch stun time, dirty pages and epoch length and the
/// link's throughput drawn in `target/bench/pair-run.svg` (`castor_tests::plot`).
#[test]
fn bench_pair_run_plot() {
    let params = DemoParams::default();
    let mut pair = Pair::qemu()
        .guest(demo(), &params.args(0))
        .guest_ram_mib(32)
        .args("ft_trace=on")
        .start()
        .expect("starting the pair");
    pair.wait_for(Role::Backup, &format!("{APPLIED_EPOCH_MARKER}0"))
        .expect("the backup applies the full copy");
    sleep(Duration::from_secs(12));
    let outcome = pair.stop();
    let trace = castor_tests::plot::Trace::parse(&outcome.primary.serial);
    assert!(
        trace.epochs.len() > 20 && !trace.acks.is_empty(),
        "too short a trace: {} checkpoints, {} acknowledgements",
        trace.epochs.len(),
        trace.acks.len()
    );
    let dir = castor_tests::target_dir().join("bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    let path = dir.join("pair-run.svg");
    let title = format!(
        "A QEMU pair running castor-demo {} (ft_trace=on)",
        params.args(0)
    );
    std::fs::write(&path, trace.svg(&title)).expect("writing the plot");
    println!(
        "ft bench: a pair's run plotted in {} ({} checkpoints, {} acknowledgements)",
        path.display(),
        trace.epochs.len(),
        trace.acks.len()
    );
}
