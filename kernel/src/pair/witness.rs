// SPDX-License-Identifier: MIT OR Apache-2.0
//! This host's side of the witness (`witness=on`, `castor_ft::witness`): lease requests and
//! replies on the peer link's NIC, and what the host says as its lease comes and goes.
//!
//! Console lines (tests and users rely on them):
//! - `ft: <who>: holds the witness's lease (<ms> ms)` when it first gets it;
//! - `ft: <who>: the witness does not answer; <what that means>` once it has not answered for
//!   a lease, `ft: <who>: the witness answers again` when it does.

use castor_ft::link::{PreSharedKey, RandomSource};
use castor_ft::witness::{LeaseClient, LeaseState, Want};

use crate::arch::x86_64::time;
use crate::kprintln;
use crate::link::chacha;
use crate::link::peer::PeerLink;
use crate::link::random::HardwareRandom;

/// The witness client of one host, over the peer link's NIC.
pub struct WitnessLink {
    client: LeaseClient,
    random: HardwareRandom,
    /// Said that the lease is held (until it lapses).
    said_held: bool,
    /// Said that the witness does not answer (until it does).
    said_silent: bool,
}

/// What names a pair at the witness: its guest's digest (`hello::guest_digest`).
pub type WitnessId = [u8; 32];

/// The clock the lease is counted on (ms).
pub fn now_ms() -> u64 {
    time::now_ns() / 1_000_000
}

impl WitnessLink {
    /// The client for the pair whose guest has digest `image`, if `witness=on`, asking for the
    /// lease (`want`) from the start.
    pub fn new(on: bool, key: Option<&PreSharedKey>, image: &[u8; 32], want: Want) -> Option<Self> {
        let key = key.filter(|_| on)?;
        let mut random = HardwareRandom::new();
        let mut pair = [0u8; 16];
        pair.copy_from_slice(&image[..16]);
        let client = LeaseClient::new(
            key.clone(),
            chacha::for_links(),
            random.next_u64(),
            pair,
            want,
        );
        Some(Self {
            client,
            random,
            said_held: false,
            said_silent: false,
        })
    }

    /// Asks for the lease ([`Want::Hold`]) or only about it.
    pub fn want(&mut self, want: Want) {
        self.client.set_want(want);
    }

    /// One turn: takes the witness's replies that `link` received, and sends a request if one
    /// is due. `who` and `silence` say, under this host's name, what a silent witness means.
    pub fn turn(&mut self, link: &mut PeerLink, who: &str, silence: &str) {
        let now = now_ms();
        while let Some(msg) = link.take_witness() {
            self.client.on_reply(now, &msg);
        }
        if let Some(request) = self.client.poll(now, &mut self.random) {
            link.send_witness(&request);
        }
        let held = self.client.holds(now);
        if held && !self.said_held {
            kprintln!(
                "ft: {who}: holds the witness's lease ({} ms)",
                self.client.lease_ms()
            );
        }
        self.said_held = held;
        let lease = u64::from(self.client.lease_ms());
        let silent = self.client.answered_ms().is_none_or(|t| now > t + lease);
        if silent && !self.said_silent && self.started_long_ago(now) {
            kprintln!("ft: {who}: the witness does not answer; {silence}");
            self.said_silent = true;
        } else if !silent && self.said_silent {
            kprintln!("ft: {who}: the witness answers again");
            self.said_silent = false;
        }
    }

    /// Whether this client has been asking for a whole lease (before, silence means nothing).
    fn started_long_ago(&self, now: u64) -> bool {
        let lease = u64::from(self.client.lease_ms());
        self.client.first_sent_ms().is_some_and(|t| now > t + lease)
    }

    /// Whether this host holds the lease now.
    pub fn holds(&self) -> bool {
        self.client.holds(now_ms())
    }

    /// What this host knows of the lease.
    pub fn state(&self) -> LeaseState {
        self.client.state()
    }
}
