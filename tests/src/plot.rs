//! A pair's run as a plot: the primary's `ft_trace=on` lines (`ft: trace epoch N at T ms:
//! length L us, stun S us, dirty D pages`, `ft: trace ack N at T ms: B bytes`) parsed into
//! series and drawn as an SVG of stacked panels sharing the time axis: per-epoch stun time,
//! dirty pages and epoch length, and the link's throughput (acknowledged bytes per 250 ms).

use crate::scrape::number_after;
use std::fmt::Write;

/// One checkpoint of the trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochPoint {
    /// When it was stunned (ms since the trace began).
    pub at_ms: u64,
    /// The epoch's length (us).
    pub length_us: u64,
    /// Its stun (us).
    pub stun_us: u64,
    /// Its dirty pages.
    pub dirty: u64,
}

/// A parsed trace.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Trace {
    /// The checkpoints, in order.
    pub epochs: Vec<EpochPoint>,
    /// The acknowledgements: when (ms) and the epoch's bytes.
    pub acks: Vec<(u64, u64)>,
}

impl Trace {
    /// The trace lines of a console (others are skipped).
    pub fn parse(console: &str) -> Trace {
        let mut trace = Trace::default();
        for line in console.lines() {
            if let Some(rest) = line.strip_prefix("ft: trace epoch ") {
                trace.epochs.push(EpochPoint {
                    at_ms: number_after(rest, " at"),
                    length_us: number_after(rest, "length"),
                    stun_us: number_after(rest, "stun"),
                    dirty: number_after(rest, "dirty"),
                });
            } else if let Some(rest) = line.strip_prefix("ft: trace ack ") {
                trace
                    .acks
                    .push((number_after(rest, " at"), number_after(rest, "ms:")));
            }
        }
        trace
    }

    /// Link throughput (KiB/s) per `bin_ms` window, at each window's start.
    pub fn throughput(&self, bin_ms: u64) -> Vec<(u64, f64)> {
        let Some(end) = self.acks.iter().map(|a| a.0).max() else {
            return Vec::new();
        };
        let mut bins = vec![0u64; (end / bin_ms + 1) as usize];
        for &(at, bytes) in &self.acks {
            bins[(at / bin_ms) as usize] += bytes;
        }
        let per_sec = 1000.0 / bin_ms as f64 / 1024.0;
        bins.iter()
            .enumerate()
            .map(|(i, &b)| (i as u64 * bin_ms, b as f64 * per_sec))
            .collect()
    }

    /// The plot, as an SVG document titled `title`.
    pub fn svg(&self, title: &str) -> String {
        let series: [(&str, Vec<(u64, f64)>); 4] = [
            ("stun (us)", self.points(|e| e.stun_us)),
            ("dirty pages", self.points(|e| e.dirty)),
            ("epoch length (ms)", self.points(|e| e.length_us / 1000)),
            ("link (KiB/s, per 250 ms)", self.throughput(250)),
        ];
        let end_ms = series
            .iter()
            .flat_map(|(_, s)| s.iter().map(|p| p.0))
            .max()
            .unwrap_or(1)
            .max(1);
        let (width, panel, left, top) = (900.0, 150.0, 70.0, 40.0);
        let plot_w = width - left - 20.0;
        let height = top + panel * series.len() as f64 + 40.0;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" \
             fill=\"white\"/>\n<text x=\"{left}\" y=\"20\" font-size=\"14\">{}</text>\n",
            escape(title)
        );
        for (i, (name, points)) in series.iter().enumerate() {
            let y0 = top + panel * i as f64;
            let h = panel - 30.0;
            let max = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0);
            let _ = writeln!(
                svg,
                "<rect x=\"{left}\" y=\"{y0}\" width=\"{plot_w}\" height=\"{h}\" fill=\"none\" \
                 stroke=\"#999\"/>\n<text x=\"{}\" y=\"{}\">{}</text>\n<text x=\"{}\" y=\"{}\" \
                 text-anchor=\"end\">{max:.0}</text>\n<text x=\"{}\" y=\"{}\" \
                 text-anchor=\"end\">0</text>",
                left + 5.0,
                y0 + 14.0,
                escape(name),
                left - 5.0,
                y0 + 10.0,
                left - 5.0,
                y0 + h
            );
            let path: Vec<String> = points
                .iter()
                .map(|&(t, v)| {
                    let x = left + plot_w * t as f64 / end_ms as f64;
                    let y = y0 + h - h * v / max;
                    format!("{x:.1},{y:.1}")
                })
                .collect();
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1\" points=\"{}\"/>",
                path.join(" ")
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{left}\" y=\"{}\">0 s</text>\n<text x=\"{}\" y=\"{}\" \
             text-anchor=\"end\">{:.1} s</text>\n</svg>",
            height - 12.0,
            left + plot_w,
            height - 12.0,
            end_ms as f64 / 1000.0
        );
        svg
    }

    fn points(&self, value: impl Fn(&EpochPoint) -> u64) -> Vec<(u64, f64)> {
        self.epochs
            .iter()
            .map(|e| (e.at_ms, value(e) as f64))
            .collect()
    }
}

/// `text` with XML's special characters escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSOLE: &str = "ft: primary: protecting 'x'\n\
        ft: trace epoch 1 at 30 ms: length 25012 us, stun 812 us, dirty 64 pages\n\
        ft: trace ack 1 at 41 ms: 270000 bytes\n\
        [guest] demo: step=1\n\
        ft: trace epoch 2 at 56 ms: length 25100 us, stun 900 us, dirty 70 pages\n\
        ft: trace ack 2 at 300 ms: 1024 bytes\n";

    #[test]
    fn traces_parse_into_series_and_plot() {
        let t = Trace::parse(CONSOLE);
        assert_eq!(
            t.epochs,
            [
                EpochPoint {
                    at_ms: 30,
                    length_us: 25012,
                    stun_us: 812,
                    dirty: 64
                },
                EpochPoint {
                    at_ms: 56,
                    length_us: 25100,
                    stun_us: 900,
                    dirty: 70
                }
            ]
        );
        assert_eq!(t.acks, [(41, 270000), (300, 1024)]);
        let tp = t.throughput(250);
        assert_eq!(tp.len(), 2);
        assert!((tp[0].1 - 270000.0 * 4.0 / 1024.0).abs() < 1e-6);
        assert_eq!(tp[1].0, 250);
        let svg = t.svg("a <pair>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(svg.contains("a &lt;pair&gt;"));
    }
}
