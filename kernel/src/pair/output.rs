// SPDX-License-Identifier: MIT OR Apache-2.0
//! Releasing committed guest output: the items of held output (`castor_ft::epoch::items`)
//! go where they belong, console lines to the console as `[guest] <line>`, frames to the
//! guest's host NIC.

use castor_ft::epoch::items::{self, Channel};

use crate::kprintln;
use crate::vmm::uplink::Uplink;

/// The non-empty lines of console output.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|&b| b == b'\n').filter(|l| !l.is_empty())
}

/// What a release let out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    /// Console lines printed.
    pub lines: usize,
    /// Frames handed to the uplink.
    pub frames: usize,
}

/// Releases the items of `bytes`: prints console lines, transmits frames on `uplink` (a
/// guest without one has none). Malformed output (from a peer that lies) is reported and
/// the rest of it dropped.
pub fn release(bytes: &[u8], mut uplink: Option<&mut Uplink>) -> Released {
    let mut done = Released::default();
    for item in items::items(bytes) {
        match item {
            Ok((Channel::Console, text)) => {
                for line in lines(text) {
                    kprintln!("[guest] {}", alloc::string::String::from_utf8_lossy(line));
                    done.lines += 1;
                }
            }
            Ok((Channel::Net, frame)) => {
                if let Some(uplink) = uplink.as_deref_mut() {
                    uplink.transmit(frame);
                    done.frames += 1;
                }
            }
            Err(e) => kprintln!("ft: dropping the rest of the guest's output: {e}"),
        }
    }
    done
}

/// How many console lines and frames [`release`] would let out of `bytes`.
pub fn count(bytes: &[u8]) -> Released {
    let mut n = Released::default();
    for (channel, body) in items::items(bytes).map_while(Result::ok) {
        match channel {
            Channel::Console => n.lines += lines(body).count(),
            Channel::Net => n.frames += 1,
        }
    }
    n
}
