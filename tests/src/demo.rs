//! The fault-tolerance demo guest `castor-demo` (tests/guests/demo/): a host reference of its
//! computation, and the checker that judges the output a Castor pair released.
//!
//! The guest prints `demo: pages=<N> span=<M> hz=<H>`, then one line `demo: step=<k>
//! chain=<16 hex digits>` per step, and `demo: error: ...` if it refuses its arguments or
//! faults. Each step reads old page contents into a hash chain and rewrites the pages, so the
//! chain of step k depends on every earlier step's memory writes. [`DemoModel`] recomputes the
//! chain on simulated memory, following the definition in the guest's `work.rs` (repeated here):
//!
//! * memory: `span` pages of 512 64-bit words, all zero before step 0;
//! * `absorb(h, w) = (rotl(h, 5) ^ w) * 0x517c_c1b7_2722_0a95` (FxHash's word step);
//! * `mix(z)`: SplitMix64's output function;
//! * `h` starts at `0xcbf2_9ce4_8422_2325`; step k: `h = absorb(h, k)`, then for `i` in
//!   `0..N`, page `p = (k * N + i) mod span`: absorb its 512 words in order, then with
//!   `s = absorb(absorb(h, k), i)` write word j as `mix(s + (j + 1) * 0x9e37_79b9_7f4a_7c15)`;
//!   the step's chain is `h`.
//!
//! [`check_released`] reads the released console lines of one or more hosts in release order
//! and reports the first [`DemoViolation`]: a gap, a repeat, a rewind, a chain that differs from
//! the reference (the guest's memory or execution was corrupted), a restart, or no demo output.
//!
//! The guest's work mode (`work=<seconds>`, for benchmarks) prints rates instead of steps: see
//! [`check_work`].

mod work;

pub use work::{
    WorkInterval, WorkLine, WorkParams, WorkRun, WorkViolation, check_work, parse_work_line,
};

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};

/// 64-bit words per 4 KiB page.
pub const PAGE_WORDS: usize = 512;
/// The chain's value before step 0 (the FNV-1a 64 offset basis).
const CHAIN_START: u64 = 0xcbf2_9ce4_8422_2325;
/// FxHash's multiplier.
const FX_MUL: u64 = 0x517c_c1b7_2722_0a95;
/// SplitMix64's increment.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
/// What every demo line starts with (after any `[...] ` console prefixes).
const DEMO: &str = "demo: ";

/// The demo's parameters that shape its output (`steps` only decides when it stops).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DemoParams {
    /// Pages dirtied per step (`pages=`).
    pub pages: u64,
    /// Working-set pages (`span=`).
    pub span: u64,
    /// Steps per second (`hz=`).
    pub hz: u64,
}

impl Default for DemoParams {
    /// The guest's defaults: 64 pages per step over 1024 pages (4 MiB), 20 steps per second.
    fn default() -> Self {
        DemoParams {
            pages: 64,
            span: 1024,
            hz: 20,
        }
    }
}

impl DemoParams {
    /// The parameters a guest header line (`demo: pages=<N> span=<M> hz=<H>`, after any
    /// console prefixes) names, so a run's output can be checked without knowing its arguments.
    pub fn from_header(line: &str) -> Option<DemoParams> {
        let rest = demo_text(line)?.strip_prefix("demo: pages=")?;
        let (pages, rest) = rest.split_once(" span=")?;
        let (span, hz) = rest.split_once(" hz=")?;
        let params = DemoParams {
            pages: strict_decimal(pages)?,
            span: strict_decimal(span)?,
            hz: strict_decimal(hz)?,
        };
        (params.header() == demo_text(line)?).then_some(params)
    }

    /// The guest's command line for these parameters and `steps` steps (0: forever).
    pub fn args(&self, steps: u64) -> String {
        let DemoParams { pages, span, hz } = self;
        format!("pages={pages} span={span} hz={hz} steps={steps}")
    }

    /// The guest's first line, without console prefixes.
    pub fn header(&self) -> String {
        let DemoParams { pages, span, hz } = self;
        format!("{DEMO}pages={pages} span={span} hz={hz}")
    }

    /// Steps until a page written at one step is read again: `ceil(span / pages)`. A page whose
    /// contents change behind the guest's back changes the chain within this many steps.
    pub fn revisit_steps(&self) -> u64 {
        self.span.div_ceil(self.pages)
    }
}

fn absorb(h: u64, word: u64) -> u64 {
    (h.rotate_left(5) ^ word).wrapping_mul(FX_MUL)
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The demo guest's computation on simulated memory, one step at a time.
#[derive(Clone)]
pub struct DemoModel {
    params: DemoParams,
    memory: Vec<[u64; PAGE_WORDS]>,
    chain: u64,
    next_step: u64,
}

impl DemoModel {
    /// The state before step 0. Panics unless `1 <= pages <= span` (what the guest accepts).
    pub fn new(params: DemoParams) -> DemoModel {
        assert!(
            params.pages >= 1 && params.pages <= params.span,
            "demo parameters the guest refuses: {params:?}"
        );
        let span = usize::try_from(params.span).expect("span fits in memory");
        DemoModel {
            params,
            memory: vec![[0; PAGE_WORDS]; span],
            chain: CHAIN_START,
            next_step: 0,
        }
    }

    /// The number of the step [`DemoModel::advance`] runs next.
    pub fn next_step(&self) -> u64 {
        self.next_step
    }

    /// Runs the next step and returns its chain value.
    pub fn advance(&mut self) -> u64 {
        let DemoParams { pages, span, .. } = self.params;
        let k = self.next_step;
        let mut h = absorb(self.chain, k);
        for i in 0..pages {
            // (k * pages + i) mod span without overflow: (k mod span) * pages < 2^64 for any
            // working set that fits in memory.
            let p = ((k % span) * pages + i) % span;
            let page = &mut self.memory[p as usize];
            for &word in page.iter() {
                h = absorb(h, word);
            }
            let seed = absorb(absorb(h, k), i);
            for (j, word) in (1u64..).zip(page.iter_mut()) {
                *word = mix(seed.wrapping_add(j.wrapping_mul(GOLDEN)));
            }
        }
        self.chain = h;
        self.next_step = k + 1;
        h
    }

    /// Page `page` of the simulated working set, to corrupt it on purpose in tests.
    pub fn page_mut(&mut self, page: u64) -> &mut [u64; PAGE_WORDS] {
        &mut self.memory[page as usize]
    }
}

/// A [`DemoModel`] and the chains it has produced so far.
struct Reference {
    model: DemoModel,
    chains: Vec<u64>,
}

/// The chain value the guest prints at `step` with `params`. Models are kept per parameter set
/// for the life of the process and only extended, so checking many steps costs each step once.
pub fn expected_chain(params: &DemoParams, step: u64) -> u64 {
    static CACHE: OnceLock<Mutex<HashMap<DemoParams, Reference>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let reference = cache.entry(*params).or_insert_with(|| Reference {
        model: DemoModel::new(*params),
        chains: Vec::new(),
    });
    while reference.chains.len() as u64 <= step {
        let chain = reference.model.advance();
        reference.chains.push(chain);
    }
    reference.chains[step as usize]
}

/// The text of a demo line (from `demo: ` on) after any `[...] ` console prefixes (Castor's
/// `[guest] `, a log prefix such as `[cpu0 INFO ] `), or `None` if `line` is not one.
fn demo_text(line: &str) -> Option<&str> {
    let mut text = line.trim_end();
    while let Some(bracketed) = text.strip_prefix('[') {
        text = bracketed.split_once("] ")?.1;
    }
    text.starts_with(DEMO).then_some(text)
}

/// A decimal number as the guest prints it: digits only, no leading zeros.
fn strict_decimal(s: &str) -> Option<u64> {
    let canonical = s == "0" || !s.starts_with('0');
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (canonical && digits).then(|| s.parse().ok()).flatten()
}

/// Parses a step line, `demo: step=<k> chain=<16 lowercase hex digits>` (after any console
/// prefixes, see [`check_released`]), into `(k, chain)`.
pub fn parse_line(line: &str) -> Option<(u64, u64)> {
    let rest = demo_text(line)?.strip_prefix("demo: step=")?;
    let (step, chain) = rest.split_once(" chain=")?;
    let hex = chain.len() == 16
        && chain
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let chain = u64::from_str_radix(chain, 16).ok().filter(|_| hex)?;
    Some((strict_decimal(step)?, chain))
}

/// What an accepted stream of released demo output held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoSummary {
    /// The first step released.
    pub first: u64,
    /// The last step released.
    pub last: u64,
    /// Step lines released (`last - first + 1`, since none is missing or repeated).
    pub count: u64,
}

/// The first thing wrong with a stream of released demo output. `line` numbers count from 1
/// over every line given to [`check_released`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemoViolation {
    /// Not one step line.
    NoLines,
    /// Step `got` followed step `after` with steps missing in between.
    Gap {
        /// The previous step.
        after: u64,
        /// The step that came next.
        got: u64,
        /// Where.
        line: usize,
    },
    /// Step `step` released twice in a row.
    Repeat {
        /// The step.
        step: u64,
        /// Where the second one is.
        line: usize,
    },
    /// Step `got` followed the later step `after`.
    Rewind {
        /// The previous step.
        after: u64,
        /// The earlier step that came next.
        got: u64,
        /// Where.
        line: usize,
    },
    /// Step `step`'s chain is not the reference's: memory or execution was corrupted.
    WrongChain {
        /// The step.
        step: u64,
        /// The reference's chain.
        expected: u64,
        /// The released chain.
        got: u64,
        /// Where.
        line: usize,
    },
    /// The guest's header names other parameters than the check's.
    WrongParams {
        /// The header as released.
        text: String,
        /// Where.
        line: usize,
    },
    /// A header after the first header or after step lines: the guest started again.
    Restarted {
        /// Where.
        line: usize,
    },
    /// The guest reported an error (`demo: error: ...`).
    GuestError {
        /// The report.
        text: String,
        /// Where.
        line: usize,
    },
    /// A demo line that is none of the guest's line forms (garbled output).
    Malformed {
        /// The line.
        text: String,
        /// Where.
        line: usize,
    },
}

impl fmt::Display for DemoViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DemoViolation::NoLines => f.write_str("no demo step lines were released"),
            DemoViolation::Gap { after, got, line } => {
                write!(f, "gap: step {got} after step {after} (line {line})")
            }
            DemoViolation::Repeat { step, line } => {
                write!(f, "repeat: step {step} again (line {line})")
            }
            DemoViolation::Rewind { after, got, line } => {
                write!(f, "rewind: step {got} after step {after} (line {line})")
            }
            DemoViolation::WrongChain {
                step,
                expected,
                got,
                line,
            } => write!(
                f,
                "step {step}: chain {got:016x}, expected {expected:016x}: memory or execution \
                 corrupted (line {line})"
            ),
            DemoViolation::WrongParams { text, line } => {
                write!(f, "header {text:?} names other parameters (line {line})")
            }
            DemoViolation::Restarted { line } => {
                write!(f, "the guest started again (line {line})")
            }
            DemoViolation::GuestError { text, line } => {
                write!(f, "the guest reported {text:?} (line {line})")
            }
            DemoViolation::Malformed { text, line } => {
                write!(f, "malformed demo line {text:?} (line {line})")
            }
        }
    }
}

impl std::error::Error for DemoViolation {}

/// Checks the console lines of one or more hosts, in the order they were released, for demo
/// output run with `params`: at most one header (matching `params`, before any step), then
/// consecutive steps, each with the reference chain ([`expected_chain`]). Lines that are not
/// demo lines (Castor's own, other hosts' logs) are skipped; demo lines are recognised after any
/// `[...] ` console prefixes. The output may start at any step (a window of a longer run); a
/// caller that expects the whole run checks [`DemoSummary::first`].
pub fn check_released<'a>(
    params: &DemoParams,
    lines: impl IntoIterator<Item = &'a str>,
) -> Result<DemoSummary, DemoViolation> {
    let header = params.header();
    let mut header_seen = false;
    let mut seen: Option<DemoSummary> = None;
    for (index, raw) in lines.into_iter().enumerate() {
        let line = index + 1;
        let Some(text) = demo_text(raw) else {
            continue;
        };
        if let Some((step, got)) = parse_line(text) {
            let summary = match seen {
                None => DemoSummary {
                    first: step,
                    last: step,
                    count: 1,
                },
                Some(s) if step == s.last + 1 => DemoSummary {
                    last: step,
                    count: s.count + 1,
                    ..s
                },
                Some(s) if step == s.last => return Err(DemoViolation::Repeat { step, line }),
                Some(s) if step < s.last => {
                    return Err(DemoViolation::Rewind {
                        after: s.last,
                        got: step,
                        line,
                    });
                }
                Some(s) => {
                    return Err(DemoViolation::Gap {
                        after: s.last,
                        got: step,
                        line,
                    });
                }
            };
            let expected = expected_chain(params, step);
            if got != expected {
                return Err(DemoViolation::WrongChain {
                    step,
                    expected,
                    got,
                    line,
                });
            }
            seen = Some(summary);
        } else if text.starts_with("demo: pages=") {
            if header_seen || seen.is_some() {
                return Err(DemoViolation::Restarted { line });
            }
            if text != header {
                let text = text.to_string();
                return Err(DemoViolation::WrongParams { text, line });
            }
            header_seen = true;
        } else if text.starts_with("demo: error: ") {
            let text = text.to_string();
            return Err(DemoViolation::GuestError { text, line });
        } else {
            let text = text.to_string();
            return Err(DemoViolation::Malformed { text, line });
        }
    }
    seen.ok_or(DemoViolation::NoLines)
}

#[cfg(test)]
mod tests;
