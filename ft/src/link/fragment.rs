//! Splitting messages into frame-sized fragments and reassembling them. Fragments travel as
//! consecutive sequence numbers flagged FIRST/LAST (like SCTP's B/E bits, RFC 9260 section
//! 6.9), so the in-order receive path reassembles by concatenation. Reassembly is bounded: a
//! message beyond the size limit, or one that could never fit the receive window, is
//! discarded (and reported), never buffered without limit.

use alloc::vec::Vec;

use super::frame::{FRAG_FIRST, FRAG_LAST};

/// Splits `msg` into `(flags, chunk)` fragments of at most `frag` (> 0) bytes. An empty
/// message is one empty fragment flagged FIRST|LAST.
pub(crate) fn split(msg: &[u8], frag: usize) -> impl Iterator<Item = (u8, &[u8])> {
    let frag = frag.max(1);
    let n = msg.len().div_ceil(frag).max(1);
    (0..n).map(move |i| {
        let start = i * frag;
        let end = (start + frag).min(msg.len());
        let mut flags = 0;
        if i == 0 {
            flags |= FRAG_FIRST;
        }
        if i + 1 == n {
            flags |= FRAG_LAST;
        }
        (flags, &msg[start..end])
    })
}

/// Outcome of feeding one in-order fragment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reassembled {
    /// More fragments are needed.
    Incomplete,
    /// A whole message and the number of fragments (receive-window slots) it used.
    Complete(Vec<u8>, u32),
    /// The fragment sequence was invalid or the message too large; it was discarded.
    Discarded,
}

/// In-order reassembly of one message at a time.
#[derive(Debug)]
pub(crate) struct Reassembler {
    buf: Vec<u8>,
    slots: u32,
    in_progress: bool,
    /// Dropping the rest of an oversized/invalid message until its LAST fragment.
    skipping: bool,
    max_message: usize,
    max_slots: u32,
}

impl Reassembler {
    pub(crate) fn new(max_message: usize, max_slots: u32) -> Self {
        Self {
            buf: Vec::new(),
            slots: 0,
            in_progress: false,
            skipping: false,
            max_message,
            max_slots,
        }
    }

    /// Receive-window slots held by the partial message.
    pub(crate) fn slots(&self) -> u32 {
        self.slots
    }

    fn discard(&mut self, last: bool) -> Reassembled {
        self.buf = Vec::new();
        self.slots = 0;
        self.in_progress = false;
        self.skipping = !last;
        Reassembled::Discarded
    }

    /// Feeds the next in-order fragment.
    pub(crate) fn push(&mut self, flags: u8, payload: &[u8]) -> Reassembled {
        let first = flags & FRAG_FIRST != 0;
        let last = flags & FRAG_LAST != 0;
        if self.skipping {
            if first {
                self.skipping = false;
            } else {
                self.skipping = !last;
                return Reassembled::Incomplete;
            }
        }
        if first && self.in_progress {
            // The previous message never ended: discard it, then treat this one normally.
            self.discard(true);
        } else if !first && !self.in_progress {
            return self.discard(last);
        }
        if self.buf.len() + payload.len() > self.max_message
            || (!last && self.slots + 1 >= self.max_slots)
        {
            return self.discard(last);
        }
        self.in_progress = true;
        self.buf.extend_from_slice(payload);
        self.slots += 1;
        if last {
            let msg = core::mem::take(&mut self.buf);
            let slots = self.slots;
            self.slots = 0;
            self.in_progress = false;
            Reassembled::Complete(msg, slots)
        } else {
            Reassembled::Incomplete
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn split_shapes() {
        let v: Vec<_> = split(&[], 10).collect();
        assert_eq!(v, vec![(FRAG_FIRST | FRAG_LAST, &[][..])]);
        let m = [7u8; 25];
        let v: Vec<_> = split(&m, 10).map(|(f, c)| (f, c.len())).collect();
        assert_eq!(v, vec![(FRAG_FIRST, 10), (0, 10), (FRAG_LAST, 5)]);
        let v: Vec<_> = split(&m[..20], 10).map(|(f, c)| (f, c.len())).collect();
        assert_eq!(v, vec![(FRAG_FIRST, 10), (FRAG_LAST, 10)]);
    }

    #[test]
    fn reassembles_and_discards() {
        let mut r = Reassembler::new(30, 8);
        let msg: Vec<u8> = (0..25).collect();
        let mut out = None;
        for (f, c) in split(&msg, 10) {
            match r.push(f, c) {
                Reassembled::Complete(m, s) => out = Some((m, s)),
                Reassembled::Incomplete => assert!(r.slots() > 0),
                Reassembled::Discarded => panic!(),
            }
        }
        assert_eq!(out, Some((msg, 3)));
        assert_eq!(r.slots(), 0);
        // Middle fragment without a start.
        assert_eq!(r.push(0, b"x"), Reassembled::Discarded);
        assert_eq!(r.push(FRAG_LAST, b"x"), Reassembled::Incomplete);
        // Oversized: discarded, rest skipped, next message fine.
        assert_eq!(r.push(FRAG_FIRST, &[0; 20]), Reassembled::Incomplete);
        assert_eq!(r.push(0, &[0; 20]), Reassembled::Discarded);
        assert_eq!(r.slots(), 0);
        assert_eq!(r.push(0, &[0; 20]), Reassembled::Incomplete);
        assert_eq!(r.push(FRAG_LAST, &[0; 20]), Reassembled::Incomplete);
        assert_eq!(
            r.push(FRAG_FIRST | FRAG_LAST, b"ok"),
            Reassembled::Complete(b"ok".to_vec(), 1)
        );
        // Unterminated message followed by a new one.
        assert_eq!(r.push(FRAG_FIRST, b"a"), Reassembled::Incomplete);
        assert_eq!(
            r.push(FRAG_FIRST | FRAG_LAST, b"b"),
            Reassembled::Complete(b"b".to_vec(), 1)
        );
        // More fragments than the window could ever hold.
        let mut r = Reassembler::new(1000, 3);
        assert_eq!(r.push(FRAG_FIRST, b"a"), Reassembled::Incomplete);
        assert_eq!(r.push(0, b"a"), Reassembled::Incomplete);
        assert_eq!(r.push(0, b"a"), Reassembled::Discarded);
    }
}
