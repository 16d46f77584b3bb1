// SPDX-License-Identifier: MIT OR Apache-2.0
//! The primary's stream sink: checkpoint stream bytes cut into peer-link messages.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::convert::Infallible;

use super::CHUNK_BYTES;
use crate::stream::Sink;

/// Stream bytes cut into link-message-sized chunks.
#[derive(Debug, Default)]
pub(super) struct Chunks {
    ready: VecDeque<Vec<u8>>,
    current: Vec<u8>,
    /// Bytes written and not yet popped.
    pub(super) queued: usize,
}

impl Sink for Chunks {
    type Error = Infallible;

    fn write(&mut self, mut bytes: &[u8]) -> Result<(), Infallible> {
        self.queued += bytes.len();
        if self.current.capacity() == 0 && !bytes.is_empty() {
            // A chunk's whole size at once: growing it by doubling would copy it over and
            // over (and call the allocator each time) on the stun's and the sender's path.
            self.current.reserve_exact(CHUNK_BYTES);
        }
        while !bytes.is_empty() {
            let room = CHUNK_BYTES - self.current.len();
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.current.extend_from_slice(now);
            bytes = rest;
            if self.current.len() == CHUNK_BYTES {
                let full = core::mem::replace(&mut self.current, Vec::with_capacity(CHUNK_BYTES));
                self.ready.push_back(full);
            }
        }
        Ok(())
    }
}

impl Chunks {
    /// The next chunk to send: a full one, or else what there is.
    pub(super) fn pop(&mut self) -> Option<Vec<u8>> {
        let chunk = match self.ready.pop_front() {
            Some(c) => c,
            None if !self.current.is_empty() => core::mem::take(&mut self.current),
            None => return None,
        };
        self.queued -= chunk.len();
        Some(chunk)
    }
}
