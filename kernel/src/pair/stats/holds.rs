// SPDX-License-Identifier: MIT OR Apache-2.0
//! How often the guest's CPU took the checkpoint lock outside its stuns (for copy-on-write
//! faults, its card's writes, a full output buffer, a backlog of pages sent first), and how
//! long it waited there for the pipeline's CPU. Printed after the sender's line as
//!
//! `ft: primary: guest CPU: took the checkpoint lock <N> times besides its stuns (<R>/s),
//! waited for it <W> times, <T> us in all`

use alloc::string::String;

/// The guest's CPU's holds of the checkpoint lock outside stuns.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GuestHolds {
    held: u64,
    waited: u64,
    wait_ns: u64,
}

impl GuestHolds {
    /// One hold, which waited `waited_ns` for the lock (0: it was free).
    pub fn held(&mut self, waited_ns: u64) {
        self.held += 1;
        if waited_ns > 0 {
            self.waited += 1;
            self.wait_ns += waited_ns;
        }
    }

    /// The line, over the `elapsed_ns` the figures cover.
    pub fn line(&self, elapsed_ns: u64) -> String {
        let per_sec = u128::from(self.held) * 1_000_000_000 / u128::from(elapsed_ns.max(1));
        alloc::format!(
            "ft: primary: guest CPU: took the checkpoint lock {} times besides its stuns \
             ({per_sec}/s), waited for it {} times, {} us in all",
            self.held,
            self.waited,
            self.wait_ns / 1000
        )
    }
}
