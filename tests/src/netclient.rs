//! The record client (`castor-netclient`, run inside a [`crate::guestnet::GuestNet`]) against
//! the network guest's record service ([`crate::linux::net`]): its options, its protocol, its
//! loop ([`run`]) and the lines it prints, which [`ClientReport`] reads back.
//!
//! The client connects once (retrying while the guest boots), then stores records `1, 2, ...`
//! in order over that one connection, each `put N PAYLOAD` answered `ok N` before the next
//! ([`payload`] derives PAYLOAD from N); after every `--get-every` records it reads back a
//! random earlier one (`get K` → `rec K PAYLOAD`) and checks it. When `--duration` has passed
//! or a line `stop` arrives on stdin it reads back every acknowledged record (pipelined,
//! [`VERIFY_BATCH`] requests in flight) and reports. Its stdout, a line each, flushed:
//!
//! * `client: connected`
//! * `client: acked N` for every `--ack-every`-th acknowledged record (default 1: every one,
//!   so a failover test knows exactly which records were acknowledged before it)
//! * `client: bad get K: <reply>` when a spot check reads back something else
//! * `client: connection lost: <why> after N acked` (EOF, reset, no reply within
//!   `--reply-timeout`, or an answer that is not the one expected), then it exits with 1
//! * at the end `client: verified N records, M missing, B bad` and
//!   `client: rtt_us mean A p50 B p99 C max D requests R per_s X` (round trips of the
//!   put/get loop, not the final read-back; X is those requests per second of the loop)
//! * `client: cannot connect to ADDR: <why>` if no connection was made before
//!   `--connect-timeout`, then it exits with 1.
//!
//! With `--verify-only N` it stores nothing and only reads records 1..=N back (those an
//! earlier client had acknowledged, e.g. before its connection broke), printing `connected`,
//! `verified` and an `rtt_us` line of no requests.
//!
//! It exits with 0 only if the connection never broke, no spot check failed and the final
//! read-back found every record (M = B = 0); 2 for bad options.

use crate::random::Random;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Every line the client prints starts with this.
pub const PREFIX: &str = "client: ";
/// Requests in flight during the final read-back. Many: the guest's `nc` writes each answer
/// as it comes, Nagle's algorithm holds the later ones of a batch until the first is
/// acknowledged, and the client, with nothing to send, delays that acknowledgement (40 ms), so
/// each batch costs about one delayed ACK (32 at a time made reading 10 000 records take 13 s).
pub const VERIFY_BATCH: usize = 256;

/// The client's options.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// `--addr IP:PORT`: the service (default 10.0.2.15:7000).
    pub addr: SocketAddr,
    /// `--duration SECONDS`: how long to store records; `None`: until `stop` or stdin's end.
    pub duration: Option<Duration>,
    /// `--connect-timeout SECONDS`: how long to keep trying to connect (default 120).
    pub connect_timeout: Duration,
    /// `--reply-timeout SECONDS`: how long one answer may take (default 60: a failover
    /// stalls the connection for seconds while TCP retransmits with backoff).
    pub reply_timeout: Duration,
    /// `--get-every K`: a spot check after every K records (default 4; 0: none).
    pub get_every: u64,
    /// `--ack-every K`: print every K-th `acked` line (default 1).
    pub ack_every: u64,
    /// `--seed N`: the spot checks' random choice; `None`: from the clock (printed on stderr).
    pub seed: Option<u64>,
    /// `--verify-only N`: store nothing; read records 1..=N back (stored by an earlier
    /// client, whose connection may have broken) and report.
    pub verify_only: Option<u64>,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            addr: SocketAddr::from(([10, 0, 2, 15], 7000)),
            duration: None,
            connect_timeout: Duration::from_secs(120),
            reply_timeout: Duration::from_secs(60),
            get_every: 4,
            ack_every: 1,
            seed: None,
            verify_only: None,
        }
    }
}

/// The usage text.
pub const USAGE: &str = "usage: castor-netclient [--addr IP:PORT] [--duration SECONDS] \
[--connect-timeout SECONDS] [--reply-timeout SECONDS] [--get-every K] [--ack-every K] [--seed N]
       castor-netclient --verify-only N [--addr IP:PORT] [--connect-timeout S] [--reply-timeout S]

Stores numbered records in the network guest's record service over one TCP connection until
--duration has passed or stdin says `stop` (without --duration: or stdin ends), checking a
random earlier one every K records, then reads every acknowledged record back and reports.
With --verify-only it only reads records 1..=N back (what an earlier client stored). See castor_tests::netclient for the lines it prints.";

impl ClientConfig {
    /// Parses the command line (without the program name).
    pub fn from_args<S: AsRef<str>>(args: &[S]) -> Result<ClientConfig, String> {
        let mut config = ClientConfig::default();
        let mut args = args.iter().map(AsRef::as_ref);
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value"));
            let seconds = |v: &str| match v.parse::<f64>() {
                Ok(s) if s.is_finite() && s >= 0.0 => Ok(Duration::from_secs_f64(s)),
                _ => Err(format!("{flag}: {v:?} is not a number of seconds")),
            };
            let number = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("{flag}: {v:?} is not a whole number"))
            };
            match flag {
                "--addr" => {
                    let v = value()?;
                    config.addr = v
                        .parse()
                        .map_err(|_| format!("--addr: {v:?} is not IP:PORT"))?;
                }
                "--duration" => config.duration = Some(seconds(value()?)?),
                "--connect-timeout" => config.connect_timeout = seconds(value()?)?,
                "--reply-timeout" => config.reply_timeout = seconds(value()?)?,
                "--get-every" => config.get_every = number(value()?)?,
                "--ack-every" => config.ack_every = number(value()?)?.max(1),
                "--seed" => config.seed = Some(number(value()?)?),
                "--verify-only" => config.verify_only = Some(number(value()?)?),
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        if config.reply_timeout.is_zero() {
            return Err("--reply-timeout must be more than 0".into());
        }
        Ok(config)
    }
}

/// splitmix64's output function: 64 well-mixed bits from `x`.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Record `n`'s payload: 40 lowercase hex digits derived from `n` (160 bits of a mix of it),
/// so a record read back can be checked without keeping it.
pub fn payload(n: u64) -> String {
    let (a, b, c) = (mix(n), mix(n ^ 0x5555_5555_5555_5555), mix(!n));
    format!("{a:016x}{b:016x}{:08x}", c as u32)
}

/// An answer of the record service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `ok N`: record N is stored.
    Ok(u64),
    /// `rec N PAYLOAD`: record N.
    Rec(u64, String),
    /// `none N`: there is no record N.
    None(u64),
    /// Anything else (the service's `err ...` included).
    Other(String),
}

impl Reply {
    /// Parses one line (without its newline).
    pub fn parse(line: &str) -> Reply {
        let other = || Reply::Other(line.to_string());
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        let (n, payload) = rest.split_once(' ').unwrap_or((rest, ""));
        let Ok(n) = n.parse::<u64>() else {
            return other();
        };
        match (verb, payload.is_empty()) {
            ("ok", true) => Reply::Ok(n),
            ("none", true) => Reply::None(n),
            ("rec", _) => Reply::Rec(n, payload.to_string()),
            _ => other(),
        }
    }
}

/// What the final read-back found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verified {
    /// Records read back (every acknowledged one).
    pub records: u64,
    /// Of those, the ones the service did not have (`none N`).
    pub missing: u64,
    /// Of those, the ones it answered with anything but the record.
    pub bad: u64,
}

impl Verified {
    /// `client: verified N records, M missing, B bad`.
    pub fn line(&self) -> String {
        format!(
            "{PREFIX}verified {} records, {} missing, {} bad",
            self.records, self.missing, self.bad
        )
    }

    /// Parses [`Verified::line`]'s text.
    pub fn parse(line: &str) -> Option<Verified> {
        let rest = line.strip_prefix(PREFIX)?.strip_prefix("verified ")?;
        let words: Vec<&str> = rest.split_whitespace().collect();
        match words[..] {
            [n, "records,", m, "missing,", b, "bad"] => Some(Verified {
                records: n.parse().ok()?,
                missing: m.parse().ok()?,
                bad: b.parse().ok()?,
            }),
            _ => None,
        }
    }
}

/// Round-trip times of the put/get loop.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RttSummary {
    /// Mean, median, 99th percentile and longest round trip, in microseconds.
    pub mean_us: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Longest.
    pub max_us: u64,
    /// Requests (puts and spot-check gets) answered.
    pub requests: u64,
    /// Those requests per second of the loop.
    pub per_s: f64,
}

impl RttSummary {
    /// The summary of `samples_us` (round trips in microseconds) over `elapsed`.
    pub fn of(samples_us: &[u64], elapsed: Duration) -> RttSummary {
        let mut sorted = samples_us.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        let at = |percent: usize| match n {
            0 => 0,
            _ => sorted[(n * percent / 100).min(n - 1)],
        };
        let secs = elapsed.as_secs_f64();
        RttSummary {
            mean_us: sorted
                .iter()
                .sum::<u64>()
                .checked_div(n as u64)
                .unwrap_or(0),
            p50_us: at(50),
            p99_us: at(99),
            max_us: sorted.last().copied().unwrap_or(0),
            requests: n as u64,
            per_s: if secs > 0.0 { n as f64 / secs } else { 0.0 },
        }
    }

    /// `client: rtt_us mean A p50 B p99 C max D requests R per_s X`.
    pub fn line(&self) -> String {
        format!(
            "{PREFIX}rtt_us mean {} p50 {} p99 {} max {} requests {} per_s {:.1}",
            self.mean_us, self.p50_us, self.p99_us, self.max_us, self.requests, self.per_s
        )
    }

    /// Parses [`RttSummary::line`]'s text.
    pub fn parse(line: &str) -> Option<RttSummary> {
        let rest = line.strip_prefix(PREFIX)?.strip_prefix("rtt_us ")?;
        let words: Vec<&str> = rest.split_whitespace().collect();
        match words[..] {
            [
                "mean",
                a,
                "p50",
                b,
                "p99",
                c,
                "max",
                d,
                "requests",
                r,
                "per_s",
                x,
            ] => Some(RttSummary {
                mean_us: a.parse().ok()?,
                p50_us: b.parse().ok()?,
                p99_us: c.parse().ok()?,
                max_us: d.parse().ok()?,
                requests: r.parse().ok()?,
                per_s: x.parse().ok()?,
            }),
            _ => None,
        }
    }
}

/// N from `client: acked N`.
pub fn parse_acked(line: &str) -> Option<u64> {
    line.strip_prefix(PREFIX)?
        .strip_prefix("acked ")?
        .trim()
        .parse()
        .ok()
}

/// `(why, N)` from `client: connection lost: <why> after N acked`.
pub fn parse_lost(line: &str) -> Option<(String, u64)> {
    let rest = line
        .strip_prefix(PREFIX)?
        .strip_prefix("connection lost: ")?;
    let (why, acked) = rest.rsplit_once(" after ")?;
    let acked = acked.strip_suffix(" acked")?.parse().ok()?;
    Some((why.to_string(), acked))
}

/// What a client printed, read back from its lines.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientReport {
    /// It said `client: connected`.
    pub connected: bool,
    /// The last `client: acked N`.
    pub last_acked: Option<u64>,
    /// The `client: bad get ...` lines.
    pub bad_gets: Vec<String>,
    /// `client: connection lost: <why> after N acked`.
    pub lost: Option<(String, u64)>,
    /// The final read-back.
    pub verified: Option<Verified>,
    /// The round trips.
    pub rtt: Option<RttSummary>,
}

impl ClientReport {
    /// Reads the client's stdout lines.
    pub fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> ClientReport {
        let mut report = ClientReport::default();
        for line in lines {
            let line = line.trim_end();
            report.connected |= line == format!("{PREFIX}connected");
            if let Some(n) = parse_acked(line) {
                report.last_acked = Some(n);
            }
            if line.starts_with(&format!("{PREFIX}bad get ")) {
                report.bad_gets.push(line.to_string());
            }
            report.lost = report.lost.take().or_else(|| parse_lost(line));
            report.verified = report.verified.or_else(|| Verified::parse(line));
            report.rtt = report.rtt.or_else(|| RttSummary::parse(line));
        }
        report
    }
}

/// Connects to `addr`, retrying until `timeout` has passed.
fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = TcpStream::connect_timeout(
            &addr,
            left.clamp(Duration::from_millis(1), Duration::from_secs(2)),
        );
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e) if Instant::now() + Duration::from_millis(200) >= deadline => return Err(e),
            Err(_) => thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// One connection's requests and answers.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    line: String,
}

impl Conn {
    fn new(stream: TcpStream, reply_timeout: Duration) -> io::Result<Conn> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(reply_timeout))?;
        stream.set_write_timeout(Some(reply_timeout))?;
        Ok(Conn {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            line: String::new(),
        })
    }

    fn send(&mut self, request: &str) -> Result<(), String> {
        self.writer
            .write_all(request.as_bytes())
            .map_err(|e| format!("sending: {e}"))
    }

    fn receive(&mut self) -> Result<Reply, String> {
        self.line.clear();
        match self.reader.read_line(&mut self.line) {
            Ok(0) => Err("the guest closed the connection".into()),
            Ok(_) if !self.line.ends_with('\n') => {
                Err("the guest closed the connection mid-line".into())
            }
            Ok(_) => Ok(Reply::parse(self.line.trim_end())),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err("no reply within the reply timeout".into())
            }
            Err(e) => Err(format!("receiving: {e}")),
        }
    }
}

/// The client's run: connects, stores and checks records until `config.duration` has passed
/// or `stop` is set, reads them back and reports, printing its lines to `out` (flushed each).
/// Returns whether it succeeded (the exit status 0).
pub fn run(config: &ClientConfig, stop: &AtomicBool, out: &mut dyn Write) -> bool {
    let say = |out: &mut dyn Write, text: &str| {
        let _ = writeln!(out, "{PREFIX}{text}");
        let _ = out.flush();
    };
    let stream = match connect(config.addr, config.connect_timeout) {
        Ok(stream) => stream,
        Err(e) => {
            say(out, &format!("cannot connect to {}: {e}", config.addr));
            return false;
        }
    };
    let mut conn = match Conn::new(stream, config.reply_timeout) {
        Ok(conn) => conn,
        Err(e) => {
            say(out, &format!("cannot connect to {}: {e}", config.addr));
            return false;
        }
    };
    say(out, "connected");
    let mut random = match config.seed {
        Some(seed) => Random::new(seed),
        None => Random::from_clock("castor-netclient spot checks"),
    };
    let start = Instant::now();
    let deadline = config.duration.map(|d| start + d);
    let (mut acked, mut samples, mut spot_bad) = (0u64, Vec::new(), 0u64);
    if let Some(n) = config.verify_only {
        acked = n;
        stop.store(true, Ordering::Relaxed);
    }
    let lost = |out: &mut dyn Write, why: &str, acked: u64| {
        let _ = writeln!(out, "{PREFIX}connection lost: {why} after {acked} acked");
        let _ = out.flush();
        false
    };
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        let n = acked + 1;
        let sent = Instant::now();
        let reply = conn
            .send(&format!("put {n} {}\n", payload(n)))
            .and_then(|()| conn.receive());
        match reply {
            Ok(Reply::Ok(m)) if m == n => {}
            Ok(other) => return lost(out, &format!("put {n} answered {other:?}"), acked),
            Err(why) => return lost(out, &why, acked),
        }
        samples.push(sent.elapsed().as_micros() as u64);
        acked = n;
        if acked % config.ack_every == 0 {
            say(out, &format!("acked {acked}"));
        }
        if config.get_every > 0 && acked % config.get_every == 0 {
            let k = random.between(1, acked + 1);
            let sent = Instant::now();
            let reply = conn
                .send(&format!("get {k}\n"))
                .and_then(|()| conn.receive());
            match reply {
                Ok(Reply::Rec(m, p)) if m == k && p == payload(k) => {}
                Ok(Reply::Rec(m, p)) if m == k => {
                    spot_bad += 1;
                    say(out, &format!("bad get {k}: rec {k} {p}"));
                }
                Ok(Reply::None(m)) if m == k => {
                    spot_bad += 1;
                    say(out, &format!("bad get {k}: none {k}"));
                }
                Ok(other) => return lost(out, &format!("get {k} answered {other:?}"), acked),
                Err(why) => return lost(out, &why, acked),
            }
            samples.push(sent.elapsed().as_micros() as u64);
        }
    }
    let rtt = RttSummary::of(&samples, start.elapsed());
    let mut verified = Verified::default();
    let mut next = 1;
    while next <= acked {
        let batch = next..=(next + VERIFY_BATCH as u64 - 1).min(acked);
        let requests: String = batch.clone().map(|k| format!("get {k}\n")).collect();
        if let Err(why) = conn.send(&requests) {
            return lost(out, &why, acked);
        }
        for k in batch {
            match conn.receive() {
                Ok(Reply::Rec(m, p)) if m == k && p == payload(k) => {}
                Ok(Reply::None(m)) if m == k => verified.missing += 1,
                Ok(Reply::Rec(m, _)) if m == k => verified.bad += 1,
                Ok(other) => return lost(out, &format!("get {k} answered {other:?}"), acked),
                Err(why) => return lost(out, &why, acked),
            }
            verified.records += 1;
        }
        next += VERIFY_BATCH as u64;
    }
    say(out, verified.line().trim_start_matches(PREFIX));
    say(out, rtt.line().trim_start_matches(PREFIX));
    spot_bad == 0 && verified.missing == 0 && verified.bad == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::TcpListener;

    #[test]
    fn options_parse_with_defaults() {
        let config = ClientConfig::from_args::<&str>(&[]).unwrap();
        assert_eq!(config, ClientConfig::default());
        assert_eq!(config.addr.to_string(), "10.0.2.15:7000");
        let config = ClientConfig::from_args(&[
            "--addr",
            "10.0.2.16:7001",
            "--duration",
            "2.5",
            "--reply-timeout",
            "30",
            "--get-every",
            "0",
            "--ack-every",
            "10",
            "--seed",
            "7",
        ])
        .unwrap();
        assert_eq!(config.addr.to_string(), "10.0.2.16:7001");
        assert_eq!(config.duration, Some(Duration::from_millis(2500)));
        assert_eq!(config.reply_timeout, Duration::from_secs(30));
        assert_eq!(
            (config.get_every, config.ack_every, config.seed),
            (0, 10, Some(7))
        );
        for bad in [
            &["--duration"][..],
            &["--duration", "-1"],
            &["--addr", "10.0.2.15"],
            &["--get-every", "x"],
            &["--reply-timeout", "0"],
            &["--verbose"],
        ] {
            assert!(ClientConfig::from_args(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn payloads_are_forty_hex_digits_that_differ() {
        let (a, b) = (payload(1), payload(2));
        assert_eq!(a.len(), 40);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
        assert_eq!(a, payload(1));
        let distinct: std::collections::HashSet<String> = (0..10_000).map(payload).collect();
        assert_eq!(distinct.len(), 10_000);
    }

    #[test]
    fn replies_parse() {
        assert_eq!(Reply::parse("ok 12"), Reply::Ok(12));
        assert_eq!(Reply::parse("rec 3 abc"), Reply::Rec(3, "abc".into()));
        assert_eq!(Reply::parse("rec 3 "), Reply::Rec(3, String::new()));
        assert_eq!(Reply::parse("none 4"), Reply::None(4));
        for other in ["ok", "ok x", "ok 1 2", "err put x", "", "none 4 x"] {
            assert_eq!(Reply::parse(other), Reply::Other(other.into()), "{other:?}");
        }
    }

    #[test]
    fn report_lines_round_trip() {
        let v = Verified {
            records: 120,
            missing: 1,
            bad: 2,
        };
        assert_eq!(v.line(), "client: verified 120 records, 1 missing, 2 bad");
        assert_eq!(Verified::parse(&v.line()), Some(v));
        let samples = [100, 200, 300, 400, 10_000];
        let rtt = RttSummary::of(&samples, Duration::from_secs(2));
        assert_eq!(
            (
                rtt.mean_us,
                rtt.p50_us,
                rtt.p99_us,
                rtt.max_us,
                rtt.requests
            ),
            (2200, 300, 10_000, 10_000, 5)
        );
        assert_eq!(
            rtt.line(),
            "client: rtt_us mean 2200 p50 300 p99 10000 max 10000 requests 5 per_s 2.5"
        );
        assert_eq!(RttSummary::parse(&rtt.line()), Some(rtt));
        assert_eq!(RttSummary::of(&[], Duration::ZERO), RttSummary::default());
        assert_eq!(parse_acked("client: acked 17"), Some(17));
        assert_eq!(
            parse_lost("client: connection lost: receiving: reset after x after 9 acked"),
            Some(("receiving: reset after x".into(), 9))
        );
        let report = ClientReport::parse([
            "client: connected",
            "client: acked 1",
            "client: acked 2",
            "client: bad get 1: none 1",
            &v.line(),
            &rtt.line(),
        ]);
        assert!(report.connected && report.lost.is_none());
        assert_eq!(report.last_acked, Some(2));
        assert_eq!(report.bad_gets.len(), 1);
        assert_eq!((report.verified, report.rtt), (Some(v), Some(rtt)));
    }

    /// A record service like the guest's on localhost, serving connections one after another
    /// (records outlive them), that answers `requests` requests of each (then closes it) and
    /// forgets record `forget`.
    fn service(requests: usize, forget: u64) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let mut records = HashMap::new();
            for stream in listener.incoming() {
                let stream = stream.unwrap();
                stream.set_nodelay(true).unwrap();
                let mut out = stream.try_clone().unwrap();
                for line in BufReader::new(stream).lines().take(requests) {
                    let Ok(line) = line else { break };
                    let words: Vec<&str> = line.splitn(3, ' ').collect();
                    let answer = match words[..] {
                        ["put", n, p] => {
                            if n.parse() != Ok(forget) {
                                records.insert(n.to_string(), p.to_string());
                            }
                            format!("ok {n}")
                        }
                        ["get", n] => match records.get(n) {
                            Some(p) => format!("rec {n} {p}"),
                            None => format!("none {n}"),
                        },
                        _ => "err".into(),
                    };
                    if out.write_all(format!("{answer}\n").as_bytes()).is_err() {
                        break;
                    }
                }
            }
        });
        addr
    }

    fn client(addr: SocketAddr, duration_ms: u64) -> (bool, ClientReport, String) {
        let config = ClientConfig {
            addr,
            duration: Some(Duration::from_millis(duration_ms)),
            connect_timeout: Duration::from_secs(5),
            reply_timeout: Duration::from_secs(5),
            get_every: 3,
            seed: Some(1),
            ..ClientConfig::default()
        };
        let mut out = Vec::new();
        let ok = run(&config, &AtomicBool::new(false), &mut out);
        let text = String::from_utf8(out).unwrap();
        (ok, ClientReport::parse(text.lines()), text)
    }

    #[test]
    fn a_whole_run_against_a_faithful_service_verifies_everything() {
        let (ok, report, text) = client(service(usize::MAX, 0), 200);
        assert!(ok, "{text}");
        let verified = report.verified.unwrap();
        let acked = report.last_acked.unwrap();
        assert!(acked > 10, "{text}");
        assert_eq!(
            (verified.records, verified.missing, verified.bad),
            (acked, 0, 0)
        );
        let rtt = report.rtt.unwrap();
        assert_eq!(rtt.requests, acked + acked / 3, "puts and spot checks");
        assert!(report.connected && report.lost.is_none() && report.bad_gets.is_empty());
    }

    #[test]
    fn a_forgotten_record_is_missing_and_fails_the_run() {
        let (ok, report, text) = client(service(usize::MAX, 5), 200);
        assert!(!ok, "{text}");
        assert_eq!(report.verified.unwrap().missing, 1, "{text}");
    }

    #[test]
    fn a_closed_connection_is_reported_with_what_was_acked() {
        // 7 requests answered: puts 1-3, the check after 3, puts 4-6; the 8th gets EOF.
        let (ok, report, text) = client(service(7, 0), 10_000);
        assert!(!ok, "{text}");
        let (why, acked) = report.lost.unwrap();
        assert_eq!(acked, 6, "{text}");
        assert!(why.contains("closed") || why.contains("reset"), "{why}");
        assert_eq!(report.verified, None);
    }

    #[test]
    fn no_service_means_no_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let config = ClientConfig {
            addr,
            connect_timeout: Duration::from_millis(500),
            ..ClientConfig::default()
        };
        let mut out = Vec::new();
        assert!(!run(&config, &AtomicBool::new(false), &mut out));
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("client: cannot connect to 127.0.0.1:"),
            "{text}"
        );
    }

    #[test]
    fn verify_only_reads_back_what_an_earlier_client_stored() {
        let addr = service(usize::MAX, 0);
        let (ok, report, text) = client(addr, 100);
        assert!(ok, "{text}");
        let acked = report.last_acked.unwrap();
        let verify = |n: u64| {
            let config = ClientConfig {
                addr,
                verify_only: Some(n),
                ..ClientConfig::default()
            };
            let mut out = Vec::new();
            let ok = run(&config, &AtomicBool::new(false), &mut out);
            let text = String::from_utf8(out).unwrap();
            (ok, ClientReport::parse(text.lines()), text)
        };
        let (ok, report, text) = verify(acked);
        assert!(ok, "{text}");
        assert_eq!(report.verified.unwrap().records, acked);
        assert_eq!((report.last_acked, report.rtt.unwrap().requests), (None, 0));
        let (ok, report, text) = verify(acked + 5);
        assert!(!ok, "{text}");
        assert_eq!(report.verified.unwrap().missing, 5, "{text}");
        let config = ClientConfig::from_args(&["--verify-only", "12"]).unwrap();
        assert_eq!(config.verify_only, Some(12));
    }

    #[test]
    fn stop_ends_the_loop_and_still_verifies() {
        let config = ClientConfig {
            addr: service(usize::MAX, 0),
            ..ClientConfig::default()
        };
        let stop = AtomicBool::new(true);
        let mut out = Vec::new();
        assert!(run(&config, &stop, &mut out));
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("client: verified 0 records, 0 missing, 0 bad"),
            "{text}"
        );
    }
}
