// SPDX-License-Identifier: MIT OR Apache-2.0
//! Output commit: guest output (serial bytes now, network frames later) produced during epoch
//! N is held and released only once the backup has acknowledged epoch N, so no client ever
//! sees output from state a failover could lose (US20170262299: outgoing packets queued until
//! the checkpoint is acknowledged).
//!
//! The buffer is bounded: when it is full, [`OutputBuffer::hold`] refuses and the caller ends
//! the epoch early (or stalls the guest's device) instead of dropping output. Acknowledgements
//! come from the network, so a lying peer is expected: an acknowledgement for an epoch that
//! has not ended is refused, and a repeated or old one releases nothing.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

/// Why output or an acknowledgement was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputError {
    /// Holding this much would exceed the buffer's capacity.
    Full {
        /// Bytes held now.
        held: usize,
        /// The capacity.
        capacity: usize,
    },
    /// The acknowledged epoch has not ended yet.
    FutureEpoch {
        /// What was acknowledged.
        acked: u64,
        /// The newest ended epoch.
        last_ended: Option<u64>,
    },
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full { held, capacity } => {
                write!(f, "output buffer full ({held} of {capacity} bytes held)")
            }
            Self::FutureEpoch { acked, last_ended } => match last_ended {
                Some(e) => write!(f, "epoch {acked} acknowledged but only {e} has ended"),
                None => write!(f, "epoch {acked} acknowledged before any epoch ended"),
            },
        }
    }
}

/// Output held per epoch until acknowledged.
#[derive(Debug, Clone)]
pub struct OutputBuffer {
    /// `(epoch, bytes)` in production order; several chunks may share an epoch.
    chunks: VecDeque<(u64, Vec<u8>)>,
    held: usize,
    capacity: usize,
    /// The epoch output is being produced in.
    current: u64,
    /// Newest acknowledged epoch.
    acked: Option<u64>,
}

impl OutputBuffer {
    /// An empty buffer for output of epoch `first_epoch` onwards, holding at most `capacity`
    /// bytes.
    #[must_use]
    pub fn new(first_epoch: u64, capacity: usize) -> Self {
        Self {
            chunks: VecDeque::new(),
            held: 0,
            capacity,
            current: first_epoch,
            acked: None,
        }
    }

    /// Holds `bytes` produced during the current epoch.
    ///
    /// # Errors
    /// [`OutputError::Full`] (nothing is held) if they do not fit.
    pub fn hold(&mut self, bytes: &[u8]) -> Result<(), OutputError> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.held.saturating_add(bytes.len()) > self.capacity {
            return Err(OutputError::Full {
                held: self.held,
                capacity: self.capacity,
            });
        }
        self.held += bytes.len();
        match self.chunks.back_mut() {
            Some((epoch, chunk)) if *epoch == self.current => chunk.extend_from_slice(bytes),
            _ => self.chunks.push_back((self.current, bytes.to_vec())),
        }
        Ok(())
    }

    /// Ends the current epoch (at the stun): later output belongs to the next one. Returns the
    /// epoch that ended.
    pub fn end_epoch(&mut self) -> u64 {
        let ended = self.current;
        self.current += 1;
        ended
    }

    /// The backup acknowledged epoch `epoch` (and so every earlier one): passes the output
    /// they produced to `release`, oldest first, and frees it. A repeated or older
    /// acknowledgement releases nothing.
    ///
    /// # Errors
    /// [`OutputError::FutureEpoch`] (nothing released) if `epoch` has not ended.
    pub fn acknowledge(
        &mut self,
        epoch: u64,
        mut release: impl FnMut(&[u8]),
    ) -> Result<usize, OutputError> {
        if epoch >= self.current {
            return Err(OutputError::FutureEpoch {
                acked: epoch,
                last_ended: self.current.checked_sub(1),
            });
        }
        if self.acked.is_some_and(|a| a >= epoch) {
            return Ok(0);
        }
        self.acked = Some(epoch);
        let mut released = 0;
        while let Some((e, _)) = self.chunks.front()
            && *e <= epoch
        {
            if let Some((_, chunk)) = self.chunks.pop_front() {
                release(&chunk);
                released += chunk.len();
            }
        }
        self.held -= released;
        Ok(released)
    }

    /// Passes the output held for `epoch` to `visit`, oldest first (the checkpoint of an epoch
    /// carries its output, so a backup that takes over can release what the primary did not).
    pub fn held_for(&self, epoch: u64, mut visit: impl FnMut(&[u8])) {
        self.chunks
            .iter()
            .filter(|(e, _)| *e == epoch)
            .for_each(|(_, chunk)| visit(chunk));
    }

    /// Whether output is waiting for an acknowledgement (the epoch policy shortens epochs then).
    #[must_use]
    pub fn waiting(&self) -> bool {
        self.held > 0
    }

    /// Bytes held.
    #[must_use]
    pub fn held(&self) -> usize {
        self.held
    }

    /// Bytes [`hold`](Self::hold) still takes.
    #[must_use]
    pub fn room(&self) -> usize {
        self.capacity - self.held
    }

    /// The epoch output is being produced in.
    #[must_use]
    pub fn current_epoch(&self) -> u64 {
        self.current
    }

    /// After a failover the backup, now in charge, produces output itself: nothing from the
    /// dead primary's unacknowledged epochs is ever released (the backup resumes from the last
    /// applied epoch and will produce that output again). Drops everything held and continues
    /// with epoch `epoch`.
    pub fn discard_unacknowledged(&mut self, epoch: u64) {
        self.chunks.clear();
        self.held = 0;
        self.current = epoch;
        self.acked = epoch.checked_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    fn collect(buf: &mut OutputBuffer, epoch: u64) -> Result<Vec<u8>, OutputError> {
        let mut out = Vec::new();
        let n = buf.acknowledge(epoch, |b| out.extend_from_slice(b))?;
        assert_eq!(n, out.len());
        Ok(out)
    }

    #[test]
    fn output_is_released_only_when_its_epoch_is_acknowledged() {
        let mut b = OutputBuffer::new(0, 1024);
        b.hold(b"one ").unwrap();
        b.hold(b"two ").unwrap();
        assert_eq!(b.room(), 1024 - 8);
        assert_eq!(b.end_epoch(), 0);
        b.hold(b"three ").unwrap();
        assert_eq!(b.end_epoch(), 1);
        b.hold(b"four").unwrap();
        assert!(b.waiting());
        assert_eq!(collect(&mut b, 0).unwrap(), b"one two ");
        assert_eq!(b.held(), 10);
        assert_eq!(collect(&mut b, 1).unwrap(), b"three ");
        assert_eq!(b.held(), 4, "epoch 2 is still running");
        assert_eq!(b.end_epoch(), 2);
        assert_eq!(collect(&mut b, 2).unwrap(), b"four");
        assert!(!b.waiting());
    }

    #[test]
    fn one_acknowledgement_covers_every_earlier_epoch_in_order() {
        let mut b = OutputBuffer::new(7, 1024);
        for chunk in [&b"a"[..], b"b", b"c"] {
            b.hold(chunk).unwrap();
            b.end_epoch();
        }
        assert_eq!(collect(&mut b, 9).unwrap(), b"abc");
    }

    #[test]
    fn lying_or_stale_acknowledgements_release_nothing() {
        let mut b = OutputBuffer::new(0, 1024);
        b.hold(b"x").unwrap();
        assert_eq!(
            collect(&mut b, 0),
            Err(OutputError::FutureEpoch {
                acked: 0,
                last_ended: None
            })
        );
        b.end_epoch();
        b.hold(b"y").unwrap();
        let e = collect(&mut b, 5).unwrap_err();
        assert_eq!(e.to_string(), "epoch 5 acknowledged but only 0 has ended");
        assert_eq!(b.held(), 2, "a refused acknowledgement loses nothing");
        assert_eq!(collect(&mut b, 0).unwrap(), b"x");
        assert_eq!(collect(&mut b, 0).unwrap(), b"", "repeated");
        b.end_epoch();
        assert_eq!(collect(&mut b, 1).unwrap(), b"y");
        assert_eq!(collect(&mut b, 0).unwrap(), b"", "older than the last");
    }

    #[test]
    fn a_full_buffer_refuses_without_losing_what_it_holds() {
        let mut b = OutputBuffer::new(0, 8);
        b.hold(b"12345").unwrap();
        assert_eq!(
            b.hold(b"6789"),
            Err(OutputError::Full {
                held: 5,
                capacity: 8
            })
        );
        b.hold(b"678").unwrap();
        b.hold(b"").unwrap();
        b.end_epoch();
        assert_eq!(collect(&mut b, 0).unwrap(), b"12345678");
        b.hold(b"9").unwrap();
        assert_eq!(b.held(), 1);
    }

    #[test]
    fn failover_discards_what_the_dead_primary_never_had_acknowledged() {
        let mut b = OutputBuffer::new(0, 64);
        b.hold(b"kept").unwrap();
        b.end_epoch();
        b.hold(b"lost").unwrap();
        assert_eq!(collect(&mut b, 0).unwrap(), b"kept");
        b.discard_unacknowledged(1);
        assert!(!b.waiting());
        b.hold(b"again").unwrap();
        assert_eq!(b.end_epoch(), 1);
        assert_eq!(collect(&mut b, 1).unwrap(), b"again");
    }

    #[test]
    fn random_interleavings_release_everything_exactly_once_in_order() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut b = OutputBuffer::new(0, 1 << 20);
        let (mut produced, mut released) = (Vec::new(), Vec::new());
        let mut counter = 0u8;
        for _ in 0..5000 {
            match next() % 4 {
                0 | 1 => {
                    let chunk: Vec<u8> = (0..next() % 16)
                        .map(|_| {
                            counter = counter.wrapping_add(1);
                            counter
                        })
                        .collect();
                    b.hold(&chunk).unwrap();
                    produced.extend_from_slice(&chunk);
                }
                2 => {
                    b.end_epoch();
                }
                _ => {
                    let e = next() % (b.current_epoch() + 2);
                    let _ = b.acknowledge(e, |c| released.extend_from_slice(c));
                }
            }
            assert!(produced.starts_with(&released));
        }
        let last = b.end_epoch();
        b.acknowledge(last, |c| released.extend_from_slice(c))
            .unwrap();
        assert_eq!(released, produced);
        assert_eq!(b.held(), 0);
    }
}
