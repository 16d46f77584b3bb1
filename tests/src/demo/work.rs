//! The demo guest's work mode (`work=<seconds>`, for benchmarks): steps run back to back, with
//! no step lines, and the guest reports its rate on its own PIT clock. It prints
//! `demo: pages=<N> span=<M> words=<W> work=<seconds>`, then about once per second of PIT time
//! `demo: work <steps> steps in <ms> ms (<cycles> TSC cycles)` (the steps, PIT time and
//! time-stamp counter cycles since the previous such line), and once its time is up
//! `demo: work total <steps> steps in <ms> ms (<cycles> TSC cycles)` before it exits with
//! status 0. The TSC cycles time the same work on a clock that lost timer ticks cannot slow
//! (under Castor the guest reads the host's TSC). [`check_work`] reads such output and proves
//! it is one complete, consistent run.

use super::{demo_text, strict_decimal};
use std::fmt;

/// A work-mode run's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkParams {
    /// Pages dirtied per step (`pages=`).
    pub pages: u64,
    /// Working-set pages (`span=`).
    pub span: u64,
    /// Words (of 512) of each page a step rewrites (`words=`).
    pub words: u64,
    /// Seconds of PIT time to run (`work=`).
    pub secs: u64,
}

impl WorkParams {
    /// The guest's command line.
    pub fn args(&self) -> String {
        let w = self;
        format!(
            "work={} pages={} span={} words={}",
            w.secs, w.pages, w.span, w.words
        )
    }

    /// The guest's first line, without console prefixes.
    pub fn header(&self) -> String {
        let w = self;
        format!(
            "demo: pages={} span={} words={} work={}",
            w.pages, w.span, w.words, w.secs
        )
    }
}

/// Steps done in a stretch of the guest's PIT time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkInterval {
    /// Steps completed.
    pub steps: u64,
    /// Milliseconds of guest PIT time.
    pub ms: u64,
    /// Time-stamp counter cycles.
    pub tsc: u64,
}

impl WorkInterval {
    /// Steps per second of guest time (0 for an empty interval).
    pub fn steps_per_sec(&self) -> f64 {
        match self.ms {
            0 => 0.0,
            ms => self.steps as f64 * 1000.0 / ms as f64,
        }
    }

    /// Seconds on the TSC, for a TSC that counts `tsc_hz` cycles per second.
    pub fn tsc_secs(&self, tsc_hz: f64) -> f64 {
        self.tsc as f64 / tsc_hz
    }

    /// Steps per second on the TSC (0 for an empty interval).
    pub fn steps_per_tsc_sec(&self, tsc_hz: f64) -> f64 {
        match self.tsc {
            0 => 0.0,
            _ => self.steps as f64 / self.tsc_secs(tsc_hz),
        }
    }
}

/// One work report line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkLine {
    /// `demo: work <steps> steps in <ms> ms (<cycles> TSC cycles)`: one interval.
    Interval(WorkInterval),
    /// `demo: work total <steps> steps in <ms> ms (<cycles> TSC cycles)`: the whole run.
    Total(WorkInterval),
}

/// Parses a work report line (after any `[...] ` console prefixes); `None` if it is not one.
pub fn parse_work_line(line: &str) -> Option<WorkLine> {
    let rest = demo_text(line)?.strip_prefix("demo: work ")?;
    let (total, rest) = match rest.strip_prefix("total ") {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    let (steps, rest) = rest.split_once(" steps in ")?;
    let (ms, rest) = rest.split_once(" ms (")?;
    let tsc = rest.strip_suffix(" TSC cycles)")?;
    let interval = WorkInterval {
        steps: strict_decimal(steps)?,
        ms: strict_decimal(ms)?,
        tsc: strict_decimal(tsc)?,
    };
    Some(match total {
        true => WorkLine::Total(interval),
        false => WorkLine::Interval(interval),
    })
}

/// What a complete work-mode run reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkRun {
    /// The per-second reports, in order.
    pub intervals: Vec<WorkInterval>,
    /// The whole run.
    pub total: WorkInterval,
}

impl WorkRun {
    /// The slowest and fastest per-second rates (steps/s).
    pub fn rate_range(&self) -> (f64, f64) {
        let rates = self.intervals.iter().map(WorkInterval::steps_per_sec);
        rates.fold((f64::INFINITY, 0.0), |(lo, hi), r| (lo.min(r), hi.max(r)))
    }
}

/// Why demo output is not one complete work-mode run. `line` numbers count from 1 over every
/// line given to [`check_work`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkViolation {
    /// No header naming the run's parameters before the first report.
    NoHeader,
    /// A demo line that does not belong in a work run (another header, a step line, an
    /// error, garbage), or a report after the total.
    Unexpected {
        /// The line.
        text: String,
        /// Where.
        line: usize,
    },
    /// An interval report shorter than the guest's one second.
    ShortInterval {
        /// The report.
        text: String,
        /// Where.
        line: usize,
    },
    /// No interval report, or no total.
    Incomplete {
        /// Interval reports seen.
        intervals: usize,
    },
    /// The total does not cover the intervals, or is shorter than the run's time.
    Inconsistent {
        /// What does not add up.
        why: String,
    },
}

impl fmt::Display for WorkViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkViolation::NoHeader => f.write_str("no work-mode header before the reports"),
            WorkViolation::Unexpected { text, line } => {
                write!(
                    f,
                    "unexpected demo line {text:?} in a work run (line {line})"
                )
            }
            WorkViolation::ShortInterval { text, line } => {
                write!(f, "interval under one second: {text:?} (line {line})")
            }
            WorkViolation::Incomplete { intervals } => {
                write!(
                    f,
                    "incomplete work run: {intervals} interval reports, no total"
                )
            }
            WorkViolation::Inconsistent { why } => write!(f, "inconsistent work run: {why}"),
        }
    }
}

impl std::error::Error for WorkViolation {}

/// Checks console lines (non-demo lines are skipped; demo lines are recognised after any
/// `[...] ` prefixes) for one complete work-mode run with `params`: the header, at least one
/// interval report of one second or more, then the total, nothing else from the guest. The
/// total must cover at least the intervals' steps and time and at least `params.secs` seconds.
pub fn check_work<'a>(
    params: &WorkParams,
    lines: impl IntoIterator<Item = &'a str>,
) -> Result<WorkRun, WorkViolation> {
    let header = params.header();
    let mut header_seen = false;
    let mut intervals = Vec::new();
    let mut total = None;
    for (index, raw) in lines.into_iter().enumerate() {
        let line = index + 1;
        let Some(text) = demo_text(raw) else {
            continue;
        };
        let unexpected = || WorkViolation::Unexpected {
            text: text.to_string(),
            line,
        };
        if total.is_some() {
            return Err(unexpected());
        }
        match parse_work_line(text) {
            _ if text == header && !header_seen => header_seen = true,
            None => return Err(unexpected()),
            Some(_) if !header_seen => return Err(WorkViolation::NoHeader),
            Some(WorkLine::Interval(i)) if i.ms < 1000 => {
                let text = text.to_string();
                return Err(WorkViolation::ShortInterval { text, line });
            }
            Some(WorkLine::Interval(i)) => intervals.push(i),
            Some(WorkLine::Total(t)) => total = Some(t),
        }
    }
    let Some(total) = total.filter(|_| !intervals.is_empty()) else {
        return match header_seen {
            true => Err(WorkViolation::Incomplete {
                intervals: intervals.len(),
            }),
            false => Err(WorkViolation::NoHeader),
        };
    };
    let sum = |f: fn(&WorkInterval) -> u64| intervals.iter().map(f).fold(0u64, u64::saturating_add);
    let (steps, ms, tsc) = (sum(|i| i.steps), sum(|i| i.ms), sum(|i| i.tsc));
    let why = if steps > total.steps || ms > total.ms || tsc > total.tsc {
        format!(
            "intervals add up to {steps} steps in {ms} ms ({tsc} TSC cycles), more than the \
             total {total:?}"
        )
    } else if total.ms < params.secs * 1000 {
        format!("{} ms in all, less than work={}", total.ms, params.secs)
    } else {
        return Ok(WorkRun { intervals, total });
    };
    Err(WorkViolation::Inconsistent { why })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: WorkParams = WorkParams {
        pages: 64,
        span: 1024,
        words: 512,
        secs: 3,
    };

    /// What the guest printed under Castor (`scripts/run --single --guest castor-demo
    /// --guest-args work=3`).
    const BARE: [&str; 5] = [
        "demo: pages=64 span=1024 words=512 work=3",
        "demo: work 208 steps in 1000 ms (1002165616 TSC cycles)",
        "demo: work 207 steps in 1000 ms (998038520 TSC cycles)",
        "demo: work 208 steps in 1000 ms (1002835752 TSC cycles)",
        "demo: work total 623 steps in 3000 ms (3003039888 TSC cycles)",
    ];

    fn check(lines: &[&str]) -> Result<WorkRun, WorkViolation> {
        check_work(&PARAMS, lines.iter().copied())
    }

    #[test]
    fn a_real_run_passes_among_castor_lines() {
        let mut lines = vec![
            "Castor v0.1.0 booting",
            "ft: primary: 40 epochs (40/s), ...",
        ];
        let released: Vec<String> = BARE.iter().map(|l| format!("[guest] {l}")).collect();
        lines.extend(released.iter().map(String::as_str));
        lines.push("guest exited with status 0");
        let run = check(&lines).unwrap();
        assert_eq!(run.intervals.len(), 3);
        let total = WorkInterval {
            steps: 623,
            ms: 3000,
            tsc: 3_003_039_888,
        };
        assert_eq!(run.total, total);
        assert_eq!(run.total.steps_per_sec(), 623.0 / 3.0);
        assert_eq!(run.rate_range(), (207.0, 208.0));
        let tsc_rate = run.total.steps_per_tsc_sec(1e9);
        assert!(
            (tsc_rate - 623.0 / 3.003_039_888).abs() < 1e-9,
            "{tsc_rate}"
        );
        assert_eq!(run.total.tsc_secs(1e9), 3.003_039_888);
        assert_eq!(PARAMS.header(), BARE[0]);
        assert_eq!(PARAMS.args(), "work=3 pages=64 span=1024 words=512");
    }

    #[test]
    fn lines_parse_strictly() {
        let interval = WorkInterval {
            steps: 7,
            ms: 1010,
            tsc: 42,
        };
        assert_eq!(
            parse_work_line("[cpu0 INFO ] [guest] demo: work 7 steps in 1010 ms (42 TSC cycles)\r"),
            Some(WorkLine::Interval(interval))
        );
        assert_eq!(
            parse_work_line("demo: work total 7 steps in 1010 ms (42 TSC cycles)"),
            Some(WorkLine::Total(interval))
        );
        for bad in [
            "demo: work 07 steps in 1010 ms (42 TSC cycles)",
            "demo: work 7 steps in 1010 ms",
            "demo: work 7 steps in 1010 ms (42 TSC cycles",
            "demo: work 7 steps in 1010 ms (42 TSC cycles) x",
            "demo: work 7 steps in 1010 ms (-42 TSC cycles)",
            "demo: work -7 steps in 1010 ms (42 TSC cycles)",
            "demo: work totals 7 steps in 1010 ms (42 TSC cycles)",
            "demo: step=1 chain=00000000000000ff",
            "work 7 steps in 1010 ms (42 TSC cycles)",
        ] {
            assert_eq!(parse_work_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn incomplete_and_inconsistent_runs_are_refused() {
        assert_eq!(check(&[]), Err(WorkViolation::NoHeader));
        assert_eq!(check(&BARE[1..]), Err(WorkViolation::NoHeader));
        assert_eq!(
            check(&BARE[..4]),
            Err(WorkViolation::Incomplete { intervals: 3 })
        );
        let no_intervals = [BARE[0], BARE[4]];
        assert_eq!(
            check(&no_intervals),
            Err(WorkViolation::Incomplete { intervals: 0 })
        );
        let mut after = BARE.to_vec();
        after.push(BARE[1]);
        assert!(matches!(
            check(&after),
            Err(WorkViolation::Unexpected { line: 6, .. })
        ));
        let mut restarted = BARE.to_vec();
        restarted.insert(2, BARE[0]);
        assert!(matches!(
            check(&restarted),
            Err(WorkViolation::Unexpected { line: 3, .. })
        ));
        let mut stepped = BARE.to_vec();
        stepped[2] = "demo: step=1 chain=00000000000000ff";
        assert!(matches!(
            check(&stepped),
            Err(WorkViolation::Unexpected { line: 3, .. })
        ));
        let mut short = BARE.to_vec();
        short[2] = "demo: work 100 steps in 990 ms (990000000 TSC cycles)";
        assert!(matches!(
            check(&short),
            Err(WorkViolation::ShortInterval { line: 3, .. })
        ));
        for total in [
            "demo: work total 622 steps in 3000 ms (3003039888 TSC cycles)",
            "demo: work total 623 steps in 3000 ms (3003039887 TSC cycles)",
        ] {
            let mut overcount = BARE.to_vec();
            overcount[4] = total;
            assert!(
                matches!(check(&overcount), Err(WorkViolation::Inconsistent { .. })),
                "{total}"
            );
        }
        let too_short = [
            "demo: pages=64 span=1024 words=512 work=3",
            "demo: work 208 steps in 1000 ms (1000000000 TSC cycles)",
            "demo: work 207 steps in 1000 ms (1000000000 TSC cycles)",
            "demo: work total 623 steps in 2990 ms (3000000000 TSC cycles)",
        ];
        let err = check(&too_short).unwrap_err();
        assert!(err.to_string().contains("less than work=3"), "{err}");
        let other = WorkParams { secs: 4, ..PARAMS };
        let wrong = check_work(&other, BARE.iter().copied());
        assert!(matches!(
            wrong,
            Err(WorkViolation::Unexpected { line: 1, .. })
        ));
    }
}
