//! Sliding windows of the reliable transport.
//!
//! - [`SendWindow`]: every fragment gets a sequence number (from 1) when the message is
//!   queued; fragments stay buffered until cumulatively acknowledged. Selective
//!   acknowledgements (SACK, in the spirit of RFC 2018/6675) mark delivered fragments, and a
//!   fragment is declared lost for fast retransmit once a fragment transmitted [`DUPTHRESH`]
//!   transmissions after it, and one with a higher sequence number, were acknowledged (a
//!   transmission-order variant of RFC 6675's DupThresh that also catches lost
//!   retransmissions). New fragments never go beyond the
//!   peer's advertised right edge (flow control) nor beyond the SACK bitmap's reach.
//! - [`RecvWindow`]: accepts fragments up to its own right edge `cum + free slots`, buffers
//!   out-of-order arrivals, suppresses duplicates and releases fragments in order.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;

use super::endpoint::MsgId;
use super::frame::{AckInfo, FRAG_LAST, MAX_SACK_WORDS};

/// Reordering tolerance of loss detection, in transmissions.
pub(crate) const DUPTHRESH: u64 = 3;

/// New fragments are sent at most this far beyond the oldest unacknowledged one, so that every
/// fragment in flight can be reported by the receiver's SACK bitmap (which covers
/// `cum + 2 ..= cum + 1 + 64 * MAX_SACK_WORDS`). Without this, fragments beyond the bitmap
/// that did arrive would look lost after a timeout and be resent needlessly.
pub(crate) const SACK_SPAN: u64 = 64 * MAX_SACK_WORDS as u64;

#[derive(Debug)]
pub(crate) struct OutPacket {
    pub(crate) msg: MsgId,
    pub(crate) flags: u8,
    pub(crate) payload: Vec<u8>,
    sent_at: u64,
    tx_count: u32,
    tx_order: u64,
    sacked: bool,
    in_pipe: bool,
}

/// What an acknowledgement changed.
#[derive(Debug, Default)]
pub(crate) struct AckOutcome {
    /// Fragments newly acknowledged (cumulatively or selectively).
    pub(crate) newly_acked: u32,
    /// An RTT sample from a fragment transmitted exactly once (Karn's rule).
    pub(crate) rtt_sample: Option<u64>,
    /// Lowest fragment newly declared lost, if any.
    pub(crate) lost: Option<u64>,
    /// Whether the cumulative point advanced.
    pub(crate) cum_advanced: bool,
}

/// The acknowledgement acknowledges fragments that were never sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InvalidAck;

/// Sender side: buffered fragments from `snd_una` to `next_seq - 1`.
#[derive(Debug)]
pub(crate) struct SendWindow {
    packets: VecDeque<OutPacket>,
    snd_una: u64,
    next_new: u64,
    right_edge: u64,
    pipe: u32,
    retx: BTreeSet<u64>,
    tx_order: u64,
    max_delivered_order: u64,
    /// Highest sequence number known delivered (cumulatively or selectively).
    max_delivered_seq: u64,
    bytes: usize,
}

impl SendWindow {
    pub(crate) fn new() -> Self {
        Self {
            packets: VecDeque::new(),
            snd_una: 1,
            next_new: 1,
            right_edge: 0,
            pipe: 0,
            retx: BTreeSet::new(),
            tx_order: 0,
            max_delivered_order: 0,
            max_delivered_seq: 0,
            bytes: 0,
        }
    }

    /// Sets the initial right edge from the peer's HELLO (its receive window).
    pub(crate) fn set_initial_window(&mut self, window: u32) {
        self.right_edge = self.right_edge.max(u64::from(window));
    }

    /// Payload bytes buffered.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Fragments transmitted and neither acknowledged nor declared lost.
    pub(crate) fn in_flight(&self) -> u32 {
        self.pipe
    }

    /// Whether anything is buffered (unsent or unacknowledged).
    pub(crate) fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Whether there are fragments to (re)transmit that the peer's window blocks.
    pub(crate) fn window_blocked(&self) -> bool {
        self.retx.is_empty() && self.has_unsent() && self.next_new > self.right_edge
    }

    pub(crate) fn has_unsent(&self) -> bool {
        self.next_new < self.next_seq()
    }

    fn next_seq(&self) -> u64 {
        self.snd_una + self.packets.len() as u64
    }

    /// The peer's right edge (highest sequence number it accepts).
    #[cfg(test)]
    pub(crate) fn right_edge(&self) -> u64 {
        self.right_edge
    }

    /// Queues a fragment.
    pub(crate) fn push(&mut self, msg: MsgId, flags: u8, payload: Vec<u8>) {
        self.bytes += payload.len();
        self.packets.push_back(OutPacket {
            msg,
            flags,
            payload,
            sent_at: 0,
            tx_count: 0,
            tx_order: 0,
            sacked: false,
            in_pipe: false,
        });
    }

    /// The next fragment to transmit with at most `limit` fragments in flight: lost ones
    /// first, then new ones inside the peer's window.
    pub(crate) fn next_to_send(&self, limit: u32) -> Option<u64> {
        if self.pipe >= limit {
            return None;
        }
        if let Some(&seq) = self.retx.first() {
            return Some(seq);
        }
        let span_edge = self.snd_una + SACK_SPAN;
        (self.has_unsent() && self.next_new <= self.right_edge.min(span_edge))
            .then_some(self.next_new)
    }

    /// Whether the next transmission would be a retransmission.
    pub(crate) fn is_retransmission(&self, seq: u64) -> bool {
        seq < self.next_new
    }

    fn get_mut(&mut self, seq: u64) -> Option<&mut OutPacket> {
        let i = usize::try_from(seq.checked_sub(self.snd_una)?).ok()?;
        self.packets.get_mut(i)
    }

    /// Records the transmission of `seq` at `now` and returns the fragment.
    pub(crate) fn on_transmit(&mut self, seq: u64, now: u64) -> Option<&OutPacket> {
        self.tx_order += 1;
        let order = self.tx_order;
        if seq == self.next_new {
            self.next_new += 1;
        }
        self.retx.remove(&seq);
        let p = self.get_mut(seq)?;
        let was_in_pipe = p.in_pipe;
        p.sent_at = now;
        p.tx_count = p.tx_count.saturating_add(1);
        p.tx_order = order;
        p.in_pipe = true;
        if !was_in_pipe {
            self.pipe += 1;
        }
        self.get_mut(seq).map(|p| &*p)
    }

    /// Processes an acknowledgement; `on_msg_acked` is called (in order) for every message
    /// whose last fragment became cumulatively acknowledged.
    pub(crate) fn on_ack(
        &mut self,
        ack: &AckInfo,
        now: u64,
        mut on_msg_acked: impl FnMut(MsgId),
    ) -> Result<AckOutcome, InvalidAck> {
        if ack.cum >= self.next_new {
            return Err(InvalidAck);
        }
        self.right_edge = self
            .right_edge
            .max(ack.cum.saturating_add(u64::from(ack.window)));
        let mut out = AckOutcome::default();
        let mut sample: Option<(u64, u64)> = None; // (tx_order, rtt)
        let mut note = |p: &OutPacket, out: &mut AckOutcome, maxd: &mut u64| {
            out.newly_acked += 1;
            // A retransmitted fragment's acknowledgement may be for the original transmission
            // (Karn's ambiguity): it proves nothing about what was sent after the retransmission,
            // so only fragments sent once advance the delivered transmission order or give an RTT
            // sample.
            if p.tx_count == 1 {
                *maxd = (*maxd).max(p.tx_order);
                if sample.is_none_or(|(o, _)| p.tx_order > o) {
                    sample = Some((p.tx_order, now.saturating_sub(p.sent_at)));
                }
            }
        };
        let mut maxd = self.max_delivered_order;
        while self.snd_una <= ack.cum {
            let Some(p) = self.packets.pop_front() else {
                break;
            };
            let seq = self.snd_una;
            self.snd_una += 1;
            out.cum_advanced = true;
            self.bytes -= p.payload.len();
            self.retx.remove(&seq);
            if p.in_pipe {
                self.pipe -= 1;
            }
            if !p.sacked {
                note(&p, &mut out, &mut maxd);
            }
            if p.flags & FRAG_LAST != 0 {
                on_msg_acked(p.msg);
            }
        }
        for seq in ack.sacked() {
            if seq >= self.next_new {
                break;
            }
            let Some(i) = seq
                .checked_sub(self.snd_una)
                .and_then(|i| usize::try_from(i).ok())
            else {
                continue;
            };
            let Some(p) = self.packets.get_mut(i) else {
                break;
            };
            if p.sacked {
                continue;
            }
            p.sacked = true;
            if p.in_pipe {
                p.in_pipe = false;
                self.pipe -= 1;
            }
            self.retx.remove(&seq);
            let p = &self.packets[i];
            note(p, &mut out, &mut maxd);
            self.max_delivered_seq = self.max_delivered_seq.max(seq);
        }
        self.max_delivered_seq = self.max_delivered_seq.max(ack.cum);
        out.rtt_sample = sample.map(|(_, r)| r);
        if maxd > self.max_delivered_order {
            self.max_delivered_order = maxd;
            // Only fragments with delivered fragments above them can be judged: beyond the
            // SACK bitmap's reach the receiver cannot report arrivals (RFC 6675's IsLost also
            // requires SACKed data above the sequence number).
            let judged = self.max_delivered_seq.saturating_sub(self.snd_una);
            let judged = usize::try_from(judged).unwrap_or(usize::MAX);
            for (i, p) in self.packets.iter_mut().enumerate().take(judged) {
                if p.in_pipe && !p.sacked && p.tx_order + DUPTHRESH <= maxd {
                    p.in_pipe = false;
                    self.pipe -= 1;
                    let seq = self.snd_una + i as u64;
                    self.retx.insert(seq);
                    out.lost = Some(out.lost.map_or(seq, |l: u64| l.min(seq)));
                }
            }
        }
        Ok(out)
    }

    /// The retransmission timer expired: fragments in flight for at least `rto` are presumed
    /// lost, and at least the oldest one (RFC 6298 section 5.4 retransmits the earliest
    /// unacknowledged segment). Fragments sent more recently keep their chance, which avoids
    /// resending a whole window that is merely delayed.
    pub(crate) fn on_timeout(&mut self, now: u64, rto: u64) {
        let mut first = true;
        for (i, p) in self.packets.iter_mut().enumerate() {
            if p.in_pipe && (first || now.saturating_sub(p.sent_at) >= rto) {
                first = false;
                p.in_pipe = false;
                self.pipe -= 1;
                self.retx.insert(self.snd_una + i as u64);
            }
        }
    }

    /// Lowest sequence number never transmitted: losses below it that are detected later
    /// belong to the current congestion episode.
    pub(crate) fn next_unsent(&self) -> u64 {
        self.next_new
    }
}

/// Receiver side.
#[derive(Debug)]
pub(crate) struct RecvWindow {
    cum: u64,
    buffered: BTreeMap<u64, (u8, Vec<u8>)>,
    capacity: u32,
}

/// Classification of a received fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RxOutcome {
    /// The next expected fragment.
    InOrder,
    /// Ahead of a gap; buffered.
    OutOfOrder,
    /// Already received.
    Duplicate,
    /// Beyond the advertised window; dropped.
    OutOfWindow,
}

impl RecvWindow {
    pub(crate) fn new(capacity: u32) -> Self {
        Self {
            cum: 0,
            buffered: BTreeMap::new(),
            capacity,
        }
    }

    /// The receive window with `held` slots occupied by in-order data not yet consumed.
    pub(crate) fn window(&self, held: u32) -> u32 {
        self.capacity.saturating_sub(held)
    }

    /// Highest acceptable sequence number.
    pub(crate) fn right_edge(&self, held: u32) -> u64 {
        self.cum + u64::from(self.window(held))
    }

    /// Out-of-order fragments buffered.
    pub(crate) fn buffered(&self) -> usize {
        self.buffered.len()
    }

    /// Accepts a fragment (copying its payload) if it is new and inside the window.
    pub(crate) fn on_data(&mut self, seq: u64, flags: u8, payload: &[u8], held: u32) -> RxOutcome {
        if seq <= self.cum || self.buffered.contains_key(&seq) {
            return RxOutcome::Duplicate;
        }
        if seq > self.right_edge(held) {
            return RxOutcome::OutOfWindow;
        }
        self.buffered.insert(seq, (flags, payload.to_vec()));
        if seq == self.cum + 1 {
            RxOutcome::InOrder
        } else {
            RxOutcome::OutOfOrder
        }
    }

    /// Releases the next in-order fragment, if present.
    pub(crate) fn pop_in_order(&mut self) -> Option<(u8, Vec<u8>)> {
        let next = self.cum + 1;
        let v = self.buffered.remove(&next)?;
        self.cum = next;
        Some(v)
    }

    /// The acknowledgement to advertise.
    pub(crate) fn ack_info(&self, held: u32) -> AckInfo {
        let mut a = AckInfo {
            cum: self.cum,
            window: self.window(held),
            ..AckInfo::default()
        };
        let base = self.cum + 2;
        let top = base + 64 * MAX_SACK_WORDS as u64;
        for &seq in self.buffered.range(base..top).map(|(s, _)| s) {
            let off = seq - base;
            // off < 256, so the word index is < 4.
            let w = (off / 64) as usize;
            a.sack[w] |= 1u64 << (63 - off % 64);
            a.sack_words = a.sack_words.max(w as u8 + 1);
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::frame::FRAG_FIRST;
    use alloc::vec;

    fn ack(cum: u64, window: u32, sacked: &[u64]) -> AckInfo {
        let mut a = AckInfo {
            cum,
            window,
            ..AckInfo::default()
        };
        for &s in sacked {
            let off = s - cum - 2;
            a.sack[(off / 64) as usize] |= 1 << (63 - off % 64);
            a.sack_words = a.sack_words.max((off / 64) as u8 + 1);
        }
        a
    }

    fn window_with(n: u64) -> SendWindow {
        let mut w = SendWindow::new();
        w.set_initial_window(100);
        for i in 0..n {
            w.push(MsgId(i + 1), FRAG_FIRST | FRAG_LAST, vec![0; 10]);
        }
        w
    }

    #[test]
    fn cumulative_ack_and_messages() {
        let mut w = window_with(5);
        for t in 0..5 {
            let s = w.next_to_send(10).unwrap();
            w.on_transmit(s, t * 10).unwrap();
        }
        assert_eq!(w.in_flight(), 5);
        assert_eq!(w.next_to_send(10), None);
        let mut acked = vec![];
        let o = w.on_ack(&ack(3, 100, &[]), 100, |m| acked.push(m)).unwrap();
        assert_eq!(o.newly_acked, 3);
        assert_eq!(o.rtt_sample, Some(80));
        assert_eq!(acked, [MsgId(1), MsgId(2), MsgId(3)]);
        assert_eq!(w.in_flight(), 2);
        assert_eq!(w.bytes(), 20);
        assert_eq!(
            w.on_ack(&ack(6, 100, &[]), 100, |_| {}).unwrap_err(),
            InvalidAck
        );
    }

    #[test]
    fn sack_triggers_fast_retransmit() {
        let mut w = window_with(8);
        for t in 0..8 {
            let s = w.next_to_send(10).unwrap();
            w.on_transmit(s, t).unwrap();
        }
        // Fragment 1 lost, 2..=4 sacked -> 1 is lost (3 later transmissions delivered).
        let o = w.on_ack(&ack(0, 100, &[2, 3]), 10, |_| {}).unwrap();
        assert_eq!(o.lost, None);
        let o = w.on_ack(&ack(0, 100, &[2, 3, 4]), 11, |_| {}).unwrap();
        assert_eq!(o.lost, Some(1));
        assert_eq!(w.next_to_send(10), Some(1));
        assert!(w.is_retransmission(1));
        w.on_transmit(1, 12).unwrap();
        let mut acked = vec![];
        let o = w.on_ack(&ack(4, 100, &[]), 20, |m| acked.push(m)).unwrap();
        assert_eq!(o.newly_acked, 1);
        assert_eq!(o.rtt_sample, None, "Karn: no sample from a retransmission");
        assert_eq!(acked.len(), 4);
    }

    #[test]
    fn flow_control_and_timeout() {
        let mut w = SendWindow::new();
        w.set_initial_window(2);
        for i in 0..4 {
            w.push(MsgId(i), FRAG_FIRST | FRAG_LAST, vec![1]);
        }
        for _ in 0..2 {
            let s = w.next_to_send(100).unwrap();
            w.on_transmit(s, 0);
        }
        assert_eq!(w.next_to_send(100), None);
        assert!(w.window_blocked());
        w.on_timeout(10, 10);
        assert_eq!(w.in_flight(), 0);
        assert_eq!(w.next_to_send(100), Some(1));
        w.on_ack(&ack(2, 1, &[]), 5, |_| {}).unwrap();
        assert_eq!(w.right_edge(), 3);
        assert_eq!(w.next_to_send(100), Some(3));
    }

    #[test]
    fn receiver_orders_and_bounds() {
        let mut r = RecvWindow::new(4);
        assert_eq!(r.on_data(2, 0, b"b", 0), RxOutcome::OutOfOrder);
        assert_eq!(r.on_data(2, 0, b"b", 0), RxOutcome::Duplicate);
        assert_eq!(r.on_data(5, 0, b"e", 0), RxOutcome::OutOfWindow);
        assert_eq!(r.on_data(4, 0, b"d", 0), RxOutcome::OutOfOrder);
        let a = r.ack_info(0);
        assert_eq!((a.cum, a.window, a.sack_words), (0, 4, 1));
        assert_eq!(a.sacked().collect::<Vec<_>>(), [2, 4]);
        assert_eq!(r.pop_in_order(), None);
        assert_eq!(r.on_data(1, 0, b"a", 0), RxOutcome::InOrder);
        assert_eq!(r.pop_in_order().unwrap().1, b"a");
        assert_eq!(r.pop_in_order().unwrap().1, b"b");
        assert_eq!(r.pop_in_order(), None);
        assert_eq!(r.on_data(1, 0, b"a", 2), RxOutcome::Duplicate);
        // Two slots held by unconsumed data: right edge = 2 + 2.
        assert_eq!(r.right_edge(2), 4);
        assert_eq!(r.on_data(5, 0, b"e", 2), RxOutcome::OutOfWindow);
        assert_eq!(r.buffered(), 1);
    }
}
