//! QEMU's human monitor (HMP) over its unix socket, and a parser for `info tlb`.

use crate::error::{Context, Error, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

/// The prompt QEMU prints when it is ready for a command.
const PROMPT: &str = "(qemu) ";

/// How long one monitor command may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to a running QEMU's monitor.
#[derive(Debug)]
pub struct Monitor {
    stream: UnixStream,
}

impl Monitor {
    /// Connects to the monitor socket at `path`, retrying until QEMU has created it or
    /// `deadline` passes, and reads the greeting.
    pub fn connect(path: &Path, deadline: Instant) -> Result<Monitor> {
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() >= deadline => {
                    return Err(Error::new(format!("connecting to {}: {e}", path.display())));
                }
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        };
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .context("monitor socket")?;
        let mut monitor = Monitor { stream };
        monitor.read_to_prompt()?;
        Ok(monitor)
    }

    /// Runs one HMP command and returns its output (without the echo and the prompt).
    pub fn command(&mut self, command: &str) -> Result<String> {
        if command.contains('\n') {
            return Err(Error::new(format!(
                "monitor command {command:?} has a newline"
            )));
        }
        self.stream
            .write_all(format!("{command}\n").as_bytes())
            .context("writing to the QEMU monitor")?;
        Ok(strip_echo(&self.read_to_prompt()?))
    }

    /// Reads until the output ends with the prompt; returns the output before it.
    fn read_to_prompt(&mut self) -> Result<String> {
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        while !raw.ends_with(PROMPT.as_bytes()) {
            let n = self
                .stream
                .read(&mut buf)
                .context("reading the QEMU monitor")?;
            if n == 0 {
                return Err(Error::new("the QEMU monitor closed the connection"));
            }
            raw.extend_from_slice(&buf[..n]);
        }
        raw.truncate(raw.len() - PROMPT.len());
        Ok(String::from_utf8_lossy(&raw).into_owned())
    }
}

/// Drops QEMU's echo of the command (the first line, full of cursor movements) and turns CRLF
/// into LF.
pub fn strip_echo(raw: &str) -> String {
    let body = raw.split_once("\r\n").map_or("", |(_echo, body)| body);
    body.replace("\r\n", "\n")
}

/// One leaf mapping from `info tlb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlbEntry {
    /// Virtual address (canonical).
    pub vaddr: u64,
    /// Physical address as QEMU prints it.
    pub paddr: u64,
    /// NX (execute-disable) is set.
    pub nx: bool,
    /// Global.
    pub global: bool,
    /// A large (2 MiB / 1 GiB / 4 MiB) page.
    pub large: bool,
    /// Dirty.
    pub dirty: bool,
    /// Accessed.
    pub accessed: bool,
    /// Cache disabled.
    pub cache_disable: bool,
    /// Write-through.
    pub write_through: bool,
    /// User accessible.
    pub user: bool,
    /// Writable.
    pub writable: bool,
}

impl TlbEntry {
    /// Writable and executable: what a W^X kernel must never map.
    pub fn is_writable_executable(&self) -> bool {
        self.writable && !self.nx
    }

    /// Parses one line `VADDR: PADDR XGPDACTUW` (each flag is its letter or `-`).
    pub fn parse(line: &str) -> Option<TlbEntry> {
        let (vaddr, rest) = line.trim().split_once(": ")?;
        let (paddr, flags) = rest.split_once(' ')?;
        let vaddr = u64::from_str_radix(vaddr, 16).ok()?;
        let paddr = u64::from_str_radix(paddr, 16).ok()?;
        let flags = flags.trim().as_bytes();
        if flags.len() != 9 {
            return None;
        }
        let mut set = [false; 9];
        for (i, (&got, &letter)) in flags.iter().zip(b"XGPDACTUW").enumerate() {
            set[i] = match got {
                b'-' => false,
                g if g == letter => true,
                _ => return None,
            };
        }
        let [
            nx,
            global,
            large,
            dirty,
            accessed,
            cache_disable,
            write_through,
            user,
            writable,
        ] = set;
        Some(TlbEntry {
            vaddr,
            paddr,
            nx,
            global,
            large,
            dirty,
            accessed,
            cache_disable,
            write_through,
            user,
            writable,
        })
    }
}

/// Every mapping in an `info tlb` reply (other lines, such as `PG disabled`, are skipped).
pub fn parse_info_tlb(text: &str) -> Vec<TlbEntry> {
    text.lines().filter_map(TlbEntry::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_and_crlf_are_removed() {
        let raw = "i\x1b[K\x1b[Dinfo tlb\x1b[K\r\n0000000000000000: 0000000000000000 --PDA----\r\n";
        assert_eq!(
            strip_echo(raw),
            "0000000000000000: 0000000000000000 --PDA----\n"
        );
        assert_eq!(strip_echo("quit\x1b[K\r\n"), "");
    }

    #[test]
    fn info_tlb_lines_parse() {
        let text = "ffffffff80000000: 0000000000100000 -GPDA---W\n\
                    ffff800000200000: 0000000000200000 X-P-----W\n\
                    PG disabled\n\
                    0000000000001000: 0000000000001000 X---AC-U-\n";
        let entries = parse_info_tlb(text);
        assert_eq!(entries.len(), 3);
        let code = entries[0];
        assert_eq!((code.vaddr, code.paddr), (0xffff_ffff_8000_0000, 0x10_0000));
        assert!(code.global && code.large && code.dirty && code.accessed && code.writable);
        assert!(!code.nx && !code.user && !code.cache_disable && !code.write_through);
        assert!(code.is_writable_executable());
        assert!(!entries[1].is_writable_executable(), "NX data");
        let user = entries[2];
        assert!(user.nx && user.accessed && user.cache_disable && user.user && !user.writable);
    }

    #[test]
    fn malformed_lines_are_skipped() {
        for bad in [
            "",
            "0: 0",
            "zz: 00 ---------",
            "0: 0 ---------W",
            "0: 0 W--------",
        ] {
            assert_eq!(TlbEntry::parse(bad), None, "{bad:?}");
        }
    }
}
