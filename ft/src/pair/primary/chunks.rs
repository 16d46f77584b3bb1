// SPDX-License-Identifier: MIT OR Apache-2.0
//! The primary's stream sink: checkpoint stream bytes cut into peer-link messages.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::convert::Infallible;

use super::CHUNK_BYTES;
use crate::stream::Sink;

/// Emptied chunk buffers kept for reuse.
const MAX_SPARE: usize = 4;

/// Stream bytes cut into link-message-sized chunks.
#[derive(Debug, Default)]
pub(super) struct Chunks {
    ready: VecDeque<Vec<u8>>,
    current: Vec<u8>,
    /// Chunk buffers given back once their bytes were copied into a message
    /// ([`Chunks::recycle`]): the next chunks fill them without calling the allocator.
    spare: Vec<Vec<u8>>,
    /// Bytes written and not yet popped.
    pub(super) queued: usize,
}

impl Sink for Chunks {
    type Error = Infallible;

    fn write(&mut self, mut bytes: &[u8]) -> Result<(), Infallible> {
        self.queued += bytes.len();
        while !bytes.is_empty() {
            if self.current.capacity() == 0 {
                // A chunk's whole size at once (a spare one if there is one): growing it by
                // doubling would copy it over and over, calling the allocator each time.
                self.current = self
                    .spare
                    .pop()
                    .unwrap_or_else(|| Vec::with_capacity(CHUNK_BYTES));
            }
            let room = CHUNK_BYTES - self.current.len();
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.current.extend_from_slice(now);
            bytes = rest;
            if self.current.len() == CHUNK_BYTES {
                self.ready.push_back(core::mem::take(&mut self.current));
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

    /// Takes back a chunk [`Chunks::pop`] gave out, its bytes no longer needed, for reuse.
    pub(super) fn recycle(&mut self, mut chunk: Vec<u8>) {
        if chunk.capacity() >= CHUNK_BYTES && self.spare.len() < MAX_SPARE {
            chunk.clear();
            self.spare.push(chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_out_in_whole_chunks_and_recycled_buffers_are_reused() {
        let mut c = Chunks::default();
        let bytes: Vec<u8> = (0..CHUNK_BYTES * 2 + 100).map(|i| i as u8).collect();
        c.write(&bytes).unwrap();
        assert_eq!(c.queued, bytes.len());
        let first = c.pop().unwrap();
        assert_eq!(first.len(), CHUNK_BYTES);
        assert_eq!(first[..], bytes[..CHUNK_BYTES]);
        let second = c.pop().unwrap();
        assert_eq!(second[..], bytes[CHUNK_BYTES..2 * CHUNK_BYTES]);
        let last = c.pop().unwrap();
        assert_eq!(last[..], bytes[2 * CHUNK_BYTES..]);
        assert!(c.pop().is_none());
        assert_eq!(c.queued, 0);
        // The next chunk fills a buffer given back, not a new one.
        let at = first.as_ptr();
        c.recycle(first);
        c.write(b"next").unwrap();
        let next = c.pop().unwrap();
        assert_eq!((next.as_ptr(), &next[..]), (at, &b"next"[..]));
        // At most a few are kept.
        for _ in 0..2 * MAX_SPARE {
            c.recycle(Vec::with_capacity(CHUNK_BYTES));
        }
        assert_eq!(c.spare.len(), MAX_SPARE);
    }
}
