// SPDX-License-Identifier: MIT OR Apache-2.0
//! The witness's side: one lease per pair, granted to whoever asks while it is free, expired
//! or already theirs. Sans-IO: the caller feeds each received message with the time and sends
//! back the reply, if any.

use alloc::vec::Vec;

use super::wire::{Reply, Request, Want};
use crate::link::{Keystream, PreSharedKey};

/// Pairs one witness keeps leases for; a new pair beyond them takes the slot of the lease
/// that expired longest ago (a live lease is never dropped: then the new pair is refused).
const MAX_PAIRS: usize = 64;
/// Senders whose counters the witness remembers (the least recently heard is forgotten).
const MAX_SENDERS: usize = 256;

/// One pair's lease.
#[derive(Clone, Copy, Debug)]
struct Lease {
    pair: [u8; 16],
    holder: u64,
    expires_ms: u64,
}

/// A sender's latest counter.
#[derive(Clone, Copy, Debug)]
struct Sender {
    id: u64,
    counter: u64,
    heard_ms: u64,
}

/// What the witness did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WitnessStats {
    /// Leases granted or renewed.
    pub granted: u64,
    /// Hold requests refused (the lease is another's, or the witness is starting).
    pub refused: u64,
    /// Query requests answered.
    pub queries: u64,
    /// Messages dropped: forged, malformed, replayed, or of a pair with no room.
    pub dropped: u64,
}

/// The witness. See the [module docs](super).
#[derive(Debug)]
pub struct Witness {
    psk: PreSharedKey,
    keystream: Keystream,
    id: u64,
    counter: u64,
    lease_ms: u32,
    /// Until then nothing is granted: leases of an earlier incarnation may still run.
    grace_until_ms: u64,
    leases: Vec<Lease>,
    senders: Vec<Sender>,
    /// Leases that changed hands since [`Witness::take_changes`]: pair and new holder.
    changes: Vec<([u8; 16], u64)>,
    /// Counts.
    pub stats: WitnessStats,
}

impl Witness {
    /// A witness with id `id` (random, per start) granting leases of `lease_ms`, started at
    /// `now_ms`.
    #[must_use]
    pub fn new(
        psk: PreSharedKey,
        keystream: Keystream,
        id: u64,
        lease_ms: u32,
        now_ms: u64,
    ) -> Self {
        Self {
            psk,
            keystream,
            id,
            counter: 0,
            lease_ms,
            grace_until_ms: now_ms + u64::from(lease_ms),
            leases: Vec::new(),
            senders: Vec::new(),
            changes: Vec::new(),
            stats: WitnessStats::default(),
        }
    }

    /// Who holds `pair`'s lease at `now_ms`, with the time it has left.
    #[must_use]
    pub fn holder(&self, pair: &[u8; 16], now_ms: u64) -> Option<(u64, u64)> {
        self.leases
            .iter()
            .find(|l| l.pair == *pair && l.expires_ms > now_ms)
            .map(|l| (l.holder, l.expires_ms - now_ms))
    }

    /// The leases that changed hands (pair, new holder) since the last call, oldest first.
    pub fn take_changes(&mut self) -> Vec<([u8; 16], u64)> {
        core::mem::take(&mut self.changes)
    }

    /// Handles one received message; returns the sealed reply to send back to its sender, or
    /// `None` if it was dropped.
    pub fn on_message(&mut self, now_ms: u64, bytes: &[u8]) -> Option<Vec<u8>> {
        let Ok(sealed) = Request::open(&self.psk, self.keystream, bytes) else {
            self.stats.dropped += 1;
            return None;
        };
        if !self.fresh(sealed.sender, sealed.counter, now_ms) {
            self.stats.dropped += 1;
            return None;
        }
        let request = sealed.message;
        let starting = now_ms < self.grace_until_ms;
        let granted = match request.want {
            Want::Hold if !starting => self.grant(&request.pair, sealed.sender, now_ms)?,
            Want::Hold => false,
            Want::Query => {
                self.stats.queries += 1;
                false
            }
        };
        match (request.want, granted) {
            (Want::Hold, true) => self.stats.granted += 1,
            (Want::Hold, false) => self.stats.refused += 1,
            _ => {}
        }
        let (holder, remaining) = match (starting, self.holder(&request.pair, now_ms)) {
            // Starting: a lease of the last incarnation may run this long still.
            (true, _) => (0, self.grace_until_ms - now_ms),
            (false, Some(held)) => held,
            (false, None) => (0, 0),
        };
        let reply = Reply {
            pair: request.pair,
            nonce: request.nonce,
            holder,
            remaining_ms: u32::try_from(remaining).unwrap_or(u32::MAX),
            lease_ms: self.lease_ms,
            granted,
        };
        self.counter += 1;
        Some(reply.seal(&self.psk, self.keystream, self.id, self.counter))
    }

    /// Whether `counter` is new for `sender` (and remembers it).
    fn fresh(&mut self, sender: u64, counter: u64, now_ms: u64) -> bool {
        if let Some(s) = self.senders.iter_mut().find(|s| s.id == sender) {
            if counter <= s.counter {
                return false;
            }
            s.counter = counter;
            s.heard_ms = now_ms;
            return true;
        }
        if self.senders.len() >= MAX_SENDERS
            && let Some(oldest) = (0..self.senders.len()).min_by_key(|&i| self.senders[i].heard_ms)
        {
            self.senders.swap_remove(oldest);
        }
        self.senders.push(Sender {
            id: sender,
            counter,
            heard_ms: now_ms,
        });
        true
    }

    /// Grants `pair`'s lease to `sender` if it is free, expired or `sender`'s; `None` if the
    /// pair is new and every slot holds a live lease.
    fn grant(&mut self, pair: &[u8; 16], sender: u64, now_ms: u64) -> Option<bool> {
        let expires_ms = now_ms + u64::from(self.lease_ms);
        if let Some(l) = self.leases.iter_mut().find(|l| l.pair == *pair) {
            if l.expires_ms > now_ms && l.holder != sender {
                return Some(false);
            }
            if l.holder != sender {
                self.changes.push((*pair, sender));
            }
            l.holder = sender;
            l.expires_ms = expires_ms;
            return Some(true);
        }
        let lease = Lease {
            pair: *pair,
            holder: sender,
            expires_ms,
        };
        if self.leases.len() < MAX_PAIRS {
            self.leases.push(lease);
        } else {
            let slot = (0..self.leases.len())
                .filter(|&i| self.leases[i].expires_ms <= now_ms)
                .min_by_key(|&i| self.leases[i].expires_ms)?;
            self.leases[slot] = lease;
        }
        self.changes.push((*pair, sender));
        Some(true)
    }
}
