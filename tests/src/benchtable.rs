//! The benchmark table (`scripts/bench`, `castor-bench`): the figures the `bench_` tests print,
//! read back from their output and set beside their targets (those of the pipeline-speed and
//! guest-networking issues), one row each.

use std::fmt::Write;

/// Which way a figure must go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// At least this.
    AtLeast(f64),
    /// At most this.
    AtMost(f64),
    /// No target: shown for information.
    None,
}

impl Target {
    fn met(self, value: f64) -> Option<bool> {
        match self {
            Target::AtLeast(t) => Some(value >= t),
            Target::AtMost(t) => Some(value <= t),
            Target::None => None,
        }
    }

    fn text(self) -> String {
        match self {
            Target::AtLeast(t) => format!(">= {t}"),
            Target::AtMost(t) => format!("<= {t}"),
            Target::None => "-".into(),
        }
    }
}

/// One figure of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What it measures.
    pub figure: String,
    /// The value measured.
    pub value: f64,
    /// Its target.
    pub target: Target,
}

/// The decimal number right after `key` in `line`, if there is one (logs are free-form: a
/// line that looks like a figure but is not one is skipped, never a panic).
fn decimal_after(line: &str, key: &str) -> Option<f64> {
    let rest = line.split_once(key)?.1.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// What a benchmark line says: the row it makes, if it is one of the figures.
/// What the lines before a figure said about its run.
#[derive(Default)]
struct Context {
    /// The dirty pages per epoch of the run.
    dirty: Option<f64>,
    /// The demo workload of the run (`pages=... span=... words=...`).
    workload: Option<String>,
}

/// The stun/copy target: at most 0.25 from 100 dirty pages an epoch (below that the stun's
/// fixed costs outweigh any copy).
fn stun_target(dirty: f64) -> Target {
    match dirty >= 100.0 {
        true => Target::AtMost(0.25),
        false => Target::None,
    }
}

/// The work-rate target of workload `w` (`pages=` onwards): at least 0.9 at the demo's default
/// (a page a step), at least 0.5 at 64 pages a step.
fn work_rate_target(w: &str) -> Target {
    match w.starts_with("1 ") {
        true => Target::AtLeast(0.9),
        false => Target::AtLeast(0.5),
    }
}

fn row(line: &str, context: &Context) -> Option<Row> {
    let row = |figure: String, value: f64, target: Target| {
        Some(Row {
            figure,
            value,
            target,
        })
    };
    if let Some(rest) = line.strip_prefix("link bench: ") {
        let nic = rest.split(" on the wire").next().unwrap_or("?");
        return row(
            format!("peer-link frames/s / raw frames/s ({nic})"),
            decimal_after(rest, "ratio")?,
            Target::AtLeast(0.5),
        );
    }
    if line.contains("ft bench: work rate with FT at 40 epochs/s / without FT = ") {
        let w = workload(line)?;
        return row(
            format!("guest work rate with FT at 40 epochs/s / without (pages={w})"),
            decimal_after(line, "without FT =")?,
            work_rate_target(&w),
        );
    }
    if let Some(rest) =
        line.strip_prefix("ft bench: pipeline beside the guest: stun / copy of the same dirty set")
    {
        let dirty = decimal_after(rest, "dirty")?;
        return row(
            format!("stun / copy, pipeline on cpu 1, host clock ({dirty:.0} dirty pages/epoch)"),
            decimal_after(rest, "cpu 1 =")?,
            stun_target(dirty),
        );
    }
    if let Some(rest) = line.strip_prefix("ft bench: pipeline beside the guest: work rate with FT")
    {
        let w = rest.split("pages=").nth(1)?.split(':').next()?.trim();
        return row(
            format!("work rate, pipeline on cpu 1, host clock (pages={w})"),
            decimal_after(rest, &format!("{w}:"))?,
            work_rate_target(w),
        );
    }
    if let Some(rest) = line.strip_prefix("ft bench: VT-x stun / copy of the same dirty set = ") {
        let dirty = decimal_after(rest, "dirty")?;
        return row(
            format!("stun / copy of the same dirty set, VT-x ({dirty:.0} dirty pages/epoch)"),
            decimal_after(rest, "")?,
            stun_target(dirty),
        );
    }
    if line.starts_with("ft bench: stun / copy of the same dirty set = ") {
        let dirty = context.dirty.unwrap_or(0.0);
        return row(
            format!("stun / copy of the same dirty set ({dirty:.0} dirty pages/epoch)"),
            decimal_after(line, "dirty set =")?,
            stun_target(dirty),
        );
    }
    if line.starts_with("ft bench: wire bytes per dirty page / 4096 = ") {
        let w = context.workload.as_deref().unwrap_or("?");
        // Whole pages rewritten with new contents leave nothing to send less of; the target
        // is for workloads that rewrite parts of pages.
        let target = match w.contains("words=512") {
            true => Target::None,
            false => Target::AtMost(0.25),
        };
        return row(
            format!("wire bytes per dirty page / 4096 (pages={w})"),
            decimal_after(line, "4096 =")?,
            target,
        );
    }
    if line.starts_with("linux file tree: wire bytes per dirty page / 4096 = ") {
        return row(
            "wire bytes per dirty page / 4096 (Linux building a file tree)".into(),
            decimal_after(line, "4096 =")?,
            Target::AtMost(0.25),
        );
    }
    if let Some(rest) = line.strip_prefix("bench harvest ") {
        let what = rest.split(" (").next().unwrap_or(rest);
        return row(
            format!("harvest at 128 MiB / at 8 MiB RAM ({what})"),
            decimal_after(rest, "ratio")?,
            Target::AtMost(1.5),
        );
    }
    if let Some(rest) = line.strip_prefix("bench vmexit ") {
        let what = rest.split(" (").next().unwrap_or(rest);
        let target = match what {
            "VT-x" => Target::AtMost(1.5),
            _ => Target::None,
        };
        return row(
            format!("generic exit / bare loop ({what})"),
            decimal_after(rest, "ratio")?,
            target,
        );
    }
    if let Some(rest) = line.strip_prefix("bench guest net: added round trip (") {
        let what = rest.split(')').next().unwrap_or(rest);
        return row(
            format!("guest net: added round trip, adaptive / 25 ms epochs ({what})"),
            decimal_after(rest, "(c)/(b)")?,
            Target::AtMost(0.25),
        );
    }
    if let Some(rest) = line.strip_prefix("bench linux boot: ") {
        let what = rest.split(' ').next().unwrap_or(rest);
        return row(
            format!("Linux boot to /init under Castor / native ({what})"),
            decimal_after(rest, "ratio")?,
            Target::None,
        );
    }
    None
}

/// The demo workload a work-rate line names (`pages=N span=M words=W`).
fn workload(line: &str) -> Option<String> {
    line.split_once("pages=")
        .map(|(_, rest)| rest.split(':').next().unwrap_or(rest).trim().to_string())
}

/// The rows of a benchmark run's output, in the order printed.
pub fn rows(output: &str) -> Vec<Row> {
    let mut context = Context::default();
    let mut rows = Vec::new();
    for line in output.lines() {
        // Test names and console prefixes may come first on a line.
        let line = ["ft bench:", "link bench:", "bench ", "linux file tree:"]
            .iter()
            .filter_map(|k| line.find(k).map(|at| &line[at..]))
            // The earliest key: the longest rest of the line.
            .max_by_key(|l| l.len())
            .unwrap_or(line);
        if line.starts_with("ft bench: epochs achieved") && line.contains("dirty ") {
            context.dirty = decimal_after(line, "dirty");
        }
        if line.starts_with("ft bench: work rate") {
            context.workload = workload(line);
        }
        rows.extend(row(line, &context));
    }
    rows
}

/// The table, one row per figure, with whether each target is met.
pub fn table(rows: &[Row]) -> String {
    let width = rows
        .iter()
        .map(|r| r.figure.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = format!(
        "{:<width$}  {:>8}  {:>8}  met\n",
        "figure", "measured", "target"
    );
    for r in rows {
        let met = match r.target.met(r.value) {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:>8.3}  {:>8}  {met}",
            r.figure,
            r.value,
            r.target.text()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
test bench_x ... link bench: virtio-net on the wire: raw 67605 frames/s (127808 of 127808 blasted frames arrived), peer link 2132 frames/s, ratio 0.03
ft bench: work rate with FT at 40 epochs/s / without FT = 0.832 (10866.4 vs 13057.1 steps/s on the host TSC; pages=1 span=1 words=512: 10866 vs 13057 pages/s)
ft bench: epochs achieved 33.9/s of 40 asked (271 epochs in the guest's 8.0 s on the TSC; the summary says 15/s), dirty 6 pages/epoch
ft bench: stun / copy of the same dirty set = 25.15 (672 us vs 26 us, harvest 189 us)
ft bench: work rate with FT at 40 epochs/s / without FT = 0.089 (59.1 vs 662.8 steps/s on the host TSC; pages=64 span=1024 words=64: 3783 vs 42419 pages/s)
ft bench: epochs achieved 6.7/s of 40 asked (285 epochs), dirty 456 pages/epoch
ft bench: stun / copy of the same dirty set = 2.58 (5190 us vs 2011 us, harvest 322 us)
ft bench: wire bytes per dirty page / 4096 = 0.141 (580 bytes/page)
bench harvest AMD-V walk (host TSC ticks per harvest, RAM 8 MiB vs 128 MiB): written 256 small 391032 big 397272 ratio 1.01 found-small 256 found-big 256
bench vmexit AMD-V (host TSC ticks per hypercall round trip, 2000 rounds): generic loop 12602 bare hypercall-resume loop 1240 ratio 10.16
bench guest net: added round trip (mean): (b) 24.19 ms, (c) 6.41 ms; (c)/(b) 0.265 (target <= 0.25)
linux file tree: wire bytes per dirty page / 4096 = 0.177 (726 bytes/page)
bench linux boot: CastorQemu 5.2 s to /init, NativeQemu 3.5 s: ratio 1.46
ft bench: pipeline beside the guest: work rate with FT at 40 epochs/s / without FT, host clock, pages=64 span=1024: 0.366 with the pipeline on cpu 1, 0.110 on the guest's cpu (1448.8 and 433.0 vs 3953.1 steps/s on the host TSC)
ft bench: pipeline beside the guest: stun / copy of the same dirty set, pipeline on cpu 1 = 0.22 (590 us vs 2680 us, dirty 1029 pages/epoch)
ft bench: VT-x stun / copy of the same dirty set = 0.70 (3644 us vs 5204 us, harvest 747 us, dirty 181 pages/epoch)
ft bench: pipeline beside the guest: work rate with FT at 40 epochs/s / without FT, host clock, pages=1 span=1: 0.912 with the pipeline on cpu 1 (269161.0 vs 295080.2 steps/s on the host TSC, without FT 290112.4 before the pair and 300048.0 after)
";

    #[test]
    fn figures_are_read_back_beside_their_targets() {
        let rows = rows(OUTPUT);
        let got: Vec<(f64, Target)> = rows.iter().map(|r| (r.value, r.target)).collect();
        assert_eq!(
            got,
            [
                (0.03, Target::AtLeast(0.5)),
                (0.832, Target::AtLeast(0.9)),
                (25.15, Target::None),
                (0.089, Target::AtLeast(0.5)),
                (2.58, Target::AtMost(0.25)),
                (0.141, Target::AtMost(0.25)),
                (1.01, Target::AtMost(1.5)),
                (10.16, Target::None),
                (0.265, Target::AtMost(0.25)),
                (0.177, Target::AtMost(0.25)),
                (1.46, Target::None),
                (0.366, Target::AtLeast(0.5)),
                (0.22, Target::AtMost(0.25)),
                (0.70, Target::AtMost(0.25)),
                (0.912, Target::AtLeast(0.9)),
            ]
        );
        assert!(
            rows[14]
                .figure
                .contains("pipeline on cpu 1, host clock (pages=1 span=1)")
        );
        assert!(rows[13].figure.contains("VT-x (181 dirty pages/epoch)"));
        assert!(
            rows[12]
                .figure
                .contains("pipeline on cpu 1, host clock (1029 dirty")
        );
        assert!(
            rows[11]
                .figure
                .contains("pipeline on cpu 1, host clock (pages=64 span=1024)")
        );
        assert!(rows[0].figure.contains("(virtio-net)"));
        assert!(rows[3].figure.contains("pages=64 span=1024 words=64"));
        assert!(rows[4].figure.contains("456 dirty pages/epoch"));
        let t = table(&rows);
        assert!(t.lines().nth(1).unwrap().ends_with("NO"), "{t}");
        assert!(t.contains("  yes\n"), "{t}");
        assert_eq!(t.lines().count(), rows.len() + 1);
    }
}
