// SPDX-License-Identifier: MIT OR Apache-2.0
//! A host's side: asks for (or about) its pair's lease, renews it, and knows, on its own clock,
//! until when it holds it (see the timing rules in the [module docs](super)). Sans-IO: the
//! caller sends what [`LeaseClient::poll`] returns and feeds back the witness's replies.

use alloc::vec::Vec;

use super::wire::{Reply, Request, Want};
use super::{DEFAULT_LEASE_MS, DRIFT_PERCENT};
use crate::link::{Keystream, PreSharedKey, RandomSource};

/// How often a host that does not hold the lease asks again (ms).
const RETRY_MS: u64 = 250;

/// What the host knows of the lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// This host holds it until then (its clock, ms).
    Held {
        /// Local time the lease ends at, drift margin taken off.
        until_ms: u64,
    },
    /// Another host holds it (or, `holder == 0`, nobody may yet: the witness is starting)
    /// for this long still, as the witness said at `at_ms`.
    Elsewhere {
        /// The holder's id (0: none).
        holder: u64,
        /// What it had left (ms).
        remaining_ms: u32,
        /// When the witness said so (local ms).
        at_ms: u64,
    },
    /// No answer yet.
    Unknown,
}

/// The host's lease client. See the [module docs](self).
#[derive(Debug)]
pub struct LeaseClient {
    psk: PreSharedKey,
    keystream: Keystream,
    id: u64,
    counter: u64,
    pair: [u8; 16],
    want: Want,
    /// The request awaiting its reply: nonce and when it was sent.
    outstanding: Option<(u64, u64)>,
    last_sent_ms: Option<u64>,
    /// When the first request went out.
    first_sent_ms: Option<u64>,
    /// The last time the witness answered (local ms).
    answered_ms: Option<u64>,
    lease_ms: u32,
    state: LeaseState,
}

impl LeaseClient {
    /// The client of host `id` (random, per boot) for the pair named `pair`, wanting `want`.
    #[must_use]
    pub fn new(
        psk: PreSharedKey,
        keystream: Keystream,
        id: u64,
        pair: [u8; 16],
        want: Want,
    ) -> Self {
        Self {
            psk,
            keystream,
            id,
            counter: 0,
            pair,
            want,
            outstanding: None,
            last_sent_ms: None,
            first_sent_ms: None,
            answered_ms: None,
            lease_ms: DEFAULT_LEASE_MS,
            state: LeaseState::Unknown,
        }
    }

    /// This host's id at the witness.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Asks for the lease from now on ([`Want::Hold`]) or only about it ([`Want::Query`]).
    pub fn set_want(&mut self, want: Want) {
        self.want = want;
    }

    /// The lease as this host knows it.
    #[must_use]
    pub fn state(&self) -> LeaseState {
        self.state
    }

    /// Whether this host holds the lease at `now_ms`.
    #[must_use]
    pub fn holds(&self, now_ms: u64) -> bool {
        matches!(self.state, LeaseState::Held { until_ms } if now_ms < until_ms)
    }

    /// When the witness last answered.
    #[must_use]
    pub fn answered_ms(&self) -> Option<u64> {
        self.answered_ms
    }

    /// When the first request went out.
    #[must_use]
    pub fn first_sent_ms(&self) -> Option<u64> {
        self.first_sent_ms
    }

    /// The lease length the witness grants (as it last said).
    #[must_use]
    pub fn lease_ms(&self) -> u32 {
        self.lease_ms
    }

    /// The next request, if one is due at `now_ms`: a holder renews every quarter lease,
    /// anyone else asks every [`RETRY_MS`]. A new request replaces one still unanswered.
    pub fn poll(&mut self, now_ms: u64, random: &mut dyn RandomSource) -> Option<Vec<u8>> {
        let every = match self.state {
            LeaseState::Held { .. } if self.want == Want::Hold => u64::from(self.lease_ms / 4),
            _ => RETRY_MS,
        };
        if self.last_sent_ms.is_some_and(|t| now_ms < t + every) {
            return None;
        }
        let nonce = random.next_u64();
        self.counter += 1;
        self.outstanding = Some((nonce, now_ms));
        self.last_sent_ms = Some(now_ms);
        self.first_sent_ms.get_or_insert(now_ms);
        let request = Request {
            pair: self.pair,
            nonce,
            want: self.want,
        };
        Some(request.seal(&self.psk, self.keystream, self.id, self.counter))
    }

    /// A message from the witness, received at `now_ms`: the reply to the outstanding request
    /// (authentic, of this pair, with its nonce) updates the lease and is returned; anything
    /// else is ignored.
    pub fn on_reply(&mut self, now_ms: u64, bytes: &[u8]) -> Option<Reply> {
        let reply = Reply::open(&self.psk, self.keystream, bytes).ok()?.message;
        let (nonce, sent_ms) = self.outstanding?;
        if reply.nonce != nonce || reply.pair != self.pair {
            return None;
        }
        self.outstanding = None;
        self.answered_ms = Some(now_ms);
        self.lease_ms = reply.lease_ms;
        if reply.granted {
            // Counted from the sending, with the drift margin off (the timing rules).
            let until_ms = sent_ms + u64::from(reply.lease_ms) * (100 - DRIFT_PERCENT) / 100;
            self.state = LeaseState::Held { until_ms };
        } else if reply.holder != 0 || !self.holds(now_ms) {
            // Another holds it (so ours, if we had one, is over at the witness: over here
            // too), or nobody may yet and we held nothing that still runs.
            self.state = LeaseState::Elsewhere {
                holder: reply.holder,
                remaining_ms: reply.remaining_ms,
                at_ms: now_ms,
            };
        }
        // A starting witness (nobody may hold it yet) leaves a lease we still hold running:
        // the witness's grace period outlasts it.
        Some(reply)
    }
}
