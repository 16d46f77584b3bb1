// SPDX-License-Identifier: MIT OR Apache-2.0
//! The demo's command line: whitespace-separated `key=value` words with decimal values.
//!
//! | key | meaning | range | default |
//! |---|---|---|---|
//! | `pages` | pages dirtied per step | `1`..=`span` | 64 |
//! | `span` | working-set pages (4 KiB each) | `1`.., must fit in guest RAM | 1024 (4 MiB) |
//! | `hz` | steps per second | `1`..=`1000` | 20 |
//! | `steps` | steps before exiting with status 0; `0` runs forever | any | 0 |
//! | `work` | work mode: run steps back to back for this many seconds, then exit with status 0 | `1`..=`86400` | off |
//! | `words` | work mode only: words (of 512) of each page a step rewrites, a window of its own in each page; the rest keeps its contents | `1`..=`512` | 512 |
//! | `echo` | `1`: echo mode, print each line typed on COM1 (interrupt driven, IRQ4) until `quit`; the step keys are checked but unused | `0`..=`1` | 0 |
//!
//! `work` replaces pacing (`hz`) and the step count (`steps`), so it is refused together with
//! either of them.
//!
//! A first word without `=` is the image's name, which QEMU's and GRUB's Multiboot loaders put
//! before the arguments; it is skipped. Anything else that is not one of these keys with a valid
//! value, and a key given twice, is refused with an [`ArgError`]: the demo never guesses.

use core::fmt;

/// Bytes per page of the working set.
pub const PAGE_BYTES: u64 = 4096;

/// What the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Pages dirtied per step.
    pub pages: u64,
    /// Working-set pages.
    pub span: u64,
    /// Steps per second.
    pub hz: u64,
    /// Steps before exiting (0: forever).
    pub steps: u64,
    /// Work mode: seconds to run steps back to back (`None`: paced steps).
    pub work: Option<u64>,
    /// Echo mode: print the lines typed on COM1 instead of running steps.
    pub echo: bool,
    /// Words of each page a step rewrites (work mode; 512 elsewhere).
    pub words: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            pages: 64,
            span: 1024,
            hz: 20,
            steps: 0,
            work: None,
            echo: false,
            words: PAGE_WORDS,
        }
    }
}

/// 64-bit words per page.
pub const PAGE_WORDS: u64 = PAGE_BYTES / 8;
/// Highest accepted `hz`.
pub const MAX_HZ: u64 = 1000;
/// Longest accepted `work` time in seconds (a day).
pub const MAX_WORK_SECS: u64 = 86_400;

/// Why a command line was refused. `word` is the offending `key=value` word as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgError<'a> {
    /// A word (other than a leading image name) without `=`.
    NotKeyValue(&'a str),
    /// A key the demo does not know.
    UnknownKey(&'a str),
    /// The same key twice.
    Repeated(&'a str),
    /// A value that is not a decimal number that fits in 64 bits.
    NotANumber(&'a str),
    /// `hz` or `steps` (the word) together with `work`, which replaces both.
    NotWithWork(&'a str),
    /// `words` (the word) without `work`: paced steps rewrite whole pages.
    OnlyWithWork(&'a str),
    /// A number outside the key's range.
    OutOfRange {
        /// The word.
        word: &'a str,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// `pages` larger than `span` (a step would dirty a page twice).
    PagesAboveSpan {
        /// Pages per step.
        pages: u64,
        /// Working-set pages.
        span: u64,
    },
    /// The working set does not fit in guest RAM above the image.
    SpanTooLarge {
        /// Working-set pages.
        span: u64,
        /// Where the working set starts.
        base: u64,
        /// Where guest RAM ends.
        ram_end: u64,
    },
}

impl fmt::Display for ArgError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::NotKeyValue(w) => write!(f, "bad argument '{w}': expected key=value"),
            ArgError::UnknownKey(w) => write!(
                f,
                "bad argument '{w}': unknown key (known: pages, span, hz, steps, work, echo, words)"
            ),
            ArgError::Repeated(w) => write!(f, "bad argument '{w}': key given twice"),
            ArgError::NotANumber(w) => {
                write!(f, "bad argument '{w}': not a decimal number below 2^64")
            }
            ArgError::NotWithWork(w) => write!(
                f,
                "bad argument '{w}': work runs steps back to back for a time, without hz or \
                 steps"
            ),
            ArgError::OnlyWithWork(w) => write!(
                f,
                "bad argument '{w}': only work mode rewrites parts of pages; add work=<seconds>"
            ),
            ArgError::OutOfRange { word, rule } => write!(f, "bad argument '{word}': {rule}"),
            ArgError::PagesAboveSpan { pages, span } => write!(
                f,
                "bad argument 'pages={pages}': more than span={span} working-set pages"
            ),
            ArgError::SpanTooLarge {
                span,
                base,
                ram_end,
            } => write!(
                f,
                "bad argument 'span={span}': {span} pages from {base:#x} do not fit in guest \
                 RAM, which ends at {ram_end:#x}"
            ),
        }
    }
}

/// Parses `cmdline` (see the module documentation).
pub fn parse(cmdline: &str) -> Result<Params, ArgError<'_>> {
    let mut params = Params::default();
    let mut seen = [false; 7];
    let mut work = 0;
    let mut echo = 0;
    // The first `hz` or `steps` word, which `work` excludes.
    let mut paced = None;
    let mut words_word = None;
    for (index, word) in cmdline.split_ascii_whitespace().enumerate() {
        let Some((key, value)) = word.split_once('=') else {
            match index {
                0 => continue, // the image's name
                _ => return Err(ArgError::NotKeyValue(word)),
            }
        };
        let (slot, field, min, max, rule) = match key {
            "pages" => (0, &mut params.pages, 1, u64::MAX, "must be at least 1"),
            "span" => (1, &mut params.span, 1, u64::MAX, "must be at least 1"),
            "hz" => (2, &mut params.hz, 1, MAX_HZ, "must be 1..=1000"),
            "steps" => (3, &mut params.steps, 0, u64::MAX, ""),
            "work" => (4, &mut work, 1, MAX_WORK_SECS, "must be 1..=86400"),
            "echo" => (5, &mut echo, 0, 1, "must be 0 or 1"),
            "words" => (6, &mut params.words, 1, PAGE_WORDS, "must be 1..=512"),
            _ => return Err(ArgError::UnknownKey(word)),
        };
        if core::mem::replace(&mut seen[slot], true) {
            return Err(ArgError::Repeated(word));
        }
        let number = decimal(value).ok_or(ArgError::NotANumber(word))?;
        if !(min..=max).contains(&number) {
            return Err(ArgError::OutOfRange { word, rule });
        }
        *field = number;
        if slot == 2 || slot == 3 {
            paced = paced.or(Some(word));
        }
        if slot == 6 {
            words_word = Some(word);
        }
    }
    if seen[4] {
        if let Some(word) = paced {
            return Err(ArgError::NotWithWork(word));
        }
        params.work = Some(work);
    } else if let Some(word) = words_word {
        return Err(ArgError::OnlyWithWork(word));
    }
    params.echo = echo == 1;
    if params.pages > params.span {
        return Err(ArgError::PagesAboveSpan {
            pages: params.pages,
            span: params.span,
        });
    }
    Ok(params)
}

/// Checks that `params.span` pages from `base` end at or below `ram_end`.
pub fn check_fits(params: &Params, base: u64, ram_end: u64) -> Result<(), ArgError<'static>> {
    let end = params
        .span
        .checked_mul(PAGE_BYTES)
        .and_then(|bytes| base.checked_add(bytes));
    match end {
        Some(end) if end <= ram_end => Ok(()),
        _ => Err(ArgError::SpanTooLarge {
            span: params.span,
            base,
            ram_end,
        }),
    }
}

/// A non-empty string of ASCII digits as a number, `None` if it is anything else or overflows.
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |n, b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_values() {
        assert_eq!(parse(""), Ok(Params::default()));
        let p = parse("/boot/castor-demo steps=40 hz=50 pages=16 span=256").unwrap();
        assert_eq!(
            p,
            Params {
                pages: 16,
                span: 256,
                hz: 50,
                steps: 40,
                work: None,
                echo: false,
                words: 512,
            }
        );
        assert_eq!(parse("  pages=1\tspan=1  ").unwrap().pages, 1);
        assert_eq!(parse("steps=0").unwrap().steps, 0);
        assert_eq!(parse("hz=1000").unwrap().hz, 1000);
        let max = parse("steps=18446744073709551615").unwrap();
        assert_eq!(max.steps, u64::MAX);
    }

    #[test]
    fn bad_words_are_refused_with_the_word() {
        let cases = [
            (
                "pages=0",
                ArgError::OutOfRange {
                    word: "pages=0",
                    rule: "must be at least 1",
                },
            ),
            (
                "span=0 pages=1",
                ArgError::OutOfRange {
                    word: "span=0",
                    rule: "must be at least 1",
                },
            ),
            (
                "hz=0",
                ArgError::OutOfRange {
                    word: "hz=0",
                    rule: "must be 1..=1000",
                },
            ),
            (
                "hz=1001",
                ArgError::OutOfRange {
                    word: "hz=1001",
                    rule: "must be 1..=1000",
                },
            ),
            ("pages=x", ArgError::NotANumber("pages=x")),
            ("pages=", ArgError::NotANumber("pages=")),
            ("pages=-1", ArgError::NotANumber("pages=-1")),
            ("pages=+1", ArgError::NotANumber("pages=+1")),
            (
                "steps=18446744073709551616",
                ArgError::NotANumber("steps=18446744073709551616"),
            ),
            ("colour=red", ArgError::UnknownKey("colour=red")),
            ("=5", ArgError::UnknownKey("=5")),
            ("hz=5 hz=5", ArgError::Repeated("hz=5")),
            ("pages=1 junk", ArgError::NotKeyValue("junk")),
            (
                "pages=9 span=8",
                ArgError::PagesAboveSpan { pages: 9, span: 8 },
            ),
            (
                "span=63",
                ArgError::PagesAboveSpan {
                    pages: 64,
                    span: 63,
                },
            ),
        ];
        for (cmdline, error) in cases {
            assert_eq!(parse(cmdline), Err(error), "{cmdline:?}");
        }
    }

    #[test]
    fn work_mode_takes_seconds_and_keeps_the_working_set() {
        let p = parse("castor-demo work=10 pages=64 span=1024").unwrap();
        assert_eq!(
            p,
            Params {
                work: Some(10),
                ..Params::default()
            }
        );
        assert_eq!(parse("work=1").unwrap().work, Some(1));
        assert_eq!(
            parse("work=86400 pages=2 span=3").unwrap().work,
            Some(86_400)
        );
        assert_eq!(parse("pages=2").unwrap().work, None, "paced unless asked");
        assert_eq!(parse("work=3 words=64").unwrap().words, 64);
        assert_eq!(parse("work=3 words=512").unwrap().words, 512);
        let cases = [
            (
                "work=0",
                ArgError::OutOfRange {
                    word: "work=0",
                    rule: "must be 1..=86400",
                },
            ),
            (
                "work=86401",
                ArgError::OutOfRange {
                    word: "work=86401",
                    rule: "must be 1..=86400",
                },
            ),
            ("work=1s", ArgError::NotANumber("work=1s")),
            ("work=3 work=3", ArgError::Repeated("work=3")),
            ("work=5 hz=20", ArgError::NotWithWork("hz=20")),
            ("steps=0 work=5", ArgError::NotWithWork("steps=0")),
            ("steps=9 hz=5 work=5", ArgError::NotWithWork("steps=9")),
            ("words=64", ArgError::OnlyWithWork("words=64")),
            ("steps=9 words=8", ArgError::OnlyWithWork("words=8")),
            (
                "work=5 words=0",
                ArgError::OutOfRange {
                    word: "words=0",
                    rule: "must be 1..=512",
                },
            ),
            (
                "work=5 words=513",
                ArgError::OutOfRange {
                    word: "words=513",
                    rule: "must be 1..=512",
                },
            ),
            (
                "work=5 pages=9 span=8",
                ArgError::PagesAboveSpan { pages: 9, span: 8 },
            ),
        ];
        for (cmdline, error) in cases {
            assert_eq!(parse(cmdline), Err(error), "{cmdline:?}");
        }
        let text = format!("{}", parse("work=2 hz=7").unwrap_err());
        assert_eq!(
            text,
            "bad argument 'hz=7': work runs steps back to back for a time, without hz or steps"
        );
    }

    #[test]
    fn echo_mode_is_off_unless_asked() {
        assert!(!parse("").unwrap().echo);
        assert!(!parse("echo=0").unwrap().echo);
        let p = parse("castor-demo echo=1").unwrap();
        assert_eq!(
            p,
            Params {
                echo: true,
                ..Params::default()
            }
        );
        assert_eq!(
            parse("echo=2"),
            Err(ArgError::OutOfRange {
                word: "echo=2",
                rule: "must be 0 or 1",
            })
        );
        assert_eq!(parse("echo=yes"), Err(ArgError::NotANumber("echo=yes")));
        assert_eq!(parse("echo=1 echo=1"), Err(ArgError::Repeated("echo=1")));
        let text = format!("{}", parse("colour=red").unwrap_err());
        assert!(
            text.ends_with("(known: pages, span, hz, steps, work, echo, words)"),
            "{text}"
        );
    }

    #[test]
    fn messages_name_the_word() {
        let e = parse("kernel pages=0").unwrap_err();
        let mut text = String::new();
        fmt::write(&mut text, format_args!("{e}")).unwrap();
        assert_eq!(text, "bad argument 'pages=0': must be at least 1");
    }

    #[test]
    fn the_working_set_must_fit_in_ram() {
        let p = parse("span=256 pages=1").unwrap();
        let base = 0x10_8000;
        assert_eq!(check_fits(&p, base, base + 256 * 4096), Ok(()));
        let error = ArgError::SpanTooLarge {
            span: 256,
            base,
            ram_end: base + 255 * 4096,
        };
        assert_eq!(check_fits(&p, base, base + 255 * 4096), Err(error));
        let huge = Params {
            span: u64::MAX / 2,
            ..p
        };
        assert!(check_fits(&huge, base, u64::MAX).is_err(), "no overflow");
        let text = format!("{error}");
        assert!(text.starts_with("bad argument 'span=256': 256 pages from 0x108000"));
    }
}
