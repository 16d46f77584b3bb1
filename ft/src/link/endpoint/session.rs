// SPDX-License-Identifier: MIT OR Apache-2.0
//! The established session: its keys and counters ([`Session`]), and the reliable transport
//! it carries. Outbound, each frame acknowledges what was received (with SACK) and carries a
//! data fragment (new or retransmitted), an ACK (window update, zero-window probe) or a
//! heartbeat; inbound, a frame is authenticated and checked against the replay window before
//! its acknowledgement and data are acted upon.

use alloc::vec::Vec;

use super::{Link, LinkState, Queued};
use crate::link::config::Role;
use crate::link::crypto::{Aead, Direction, PreSharedKey, SessionCipher, TAG_LEN, nonce};
use crate::link::error::{DropReason, ParseError};
use crate::link::fragment::Reassembled;
use crate::link::frame::{
    ACK_REQUESTED, HEADER_LEN, Header, Kind, RawFrame, SessionBody, encode_data_header,
};
use crate::link::replay::ReplayWindow;
use crate::link::window::RxOutcome;

/// Keys and counters of one session (or of the candidate session while pairing).
#[derive(Debug)]
pub(super) struct Session {
    /// The peer's session id.
    pub(super) peer: u64,
    /// The name of the frames' cipher.
    pub(super) cipher: &'static str,
    /// Seals what we send.
    tx: Aead,
    /// Opens what the peer sends.
    rx: Aead,
    tx_dir: Direction,
    rx_dir: Direction,
    /// Nonce counter of the next frame we send.
    tx_counter: u64,
    /// Counters of the peer's frames already accepted.
    replay: ReplayWindow,
}

impl Session {
    /// The session between us (`role`, session id `local_sid`) and the peer `peer`, with
    /// `cipher` keys derived from the pre-shared key and both session ids.
    pub(super) fn new(
        psk: &PreSharedKey,
        role: Role,
        local_sid: u64,
        peer: u64,
        cipher: SessionCipher,
    ) -> Self {
        let (tx, rx) = psk.session_keys(role, local_sid, peer, cipher);
        Self {
            peer,
            cipher: cipher.name(),
            tx,
            rx,
            tx_dir: Direction::from_sender(role),
            rx_dir: Direction::from_sender(role.peer()),
            tx_counter: 1,
            replay: ReplayWindow::new(),
        }
    }

    /// Takes the counter (nonce) for the next frame sent, or `None` once they are all used.
    fn next_counter(&mut self) -> Option<u64> {
        let counter = self.tx_counter;
        // A 64-bit counter cannot wrap in practice; refuse rather than reuse a nonce.
        self.tx_counter = counter.checked_add(1)?;
        Some(counter)
    }

    /// Encrypts `body` in place under `counter` and returns the tag over `header` and `body`.
    fn seal(&self, counter: u64, header: &[u8], body: &mut [u8]) -> Option<[u8; TAG_LEN]> {
        self.tx
            .seal(&nonce(self.tx_dir, counter), header, body)
            .ok()
    }

    /// Authenticates a session frame from the peer, decrypts its body into `plain`, and
    /// records its counter as seen. Nothing changes unless the frame is the peer's, not a
    /// replay, and authentic.
    fn open(&mut self, raw: &RawFrame<'_>, plain: &mut Vec<u8>) -> Result<(), DropReason> {
        let h = raw.header;
        if self.peer != h.sender {
            return Err(DropReason::StaleSession);
        }
        if !self.replay.check(h.counter) {
            return Err(DropReason::Replayed);
        }
        plain.clear();
        plain.extend_from_slice(raw.body);
        self.rx
            .open(&nonce(self.rx_dir, h.counter), raw.aad, plain, raw.tag)
            .map_err(|_| DropReason::Forged)?;
        self.replay.accept(h.counter);
        Ok(())
    }
}

impl Link {
    pub(super) fn maybe_window_update(&mut self) {
        if self.state != LinkState::Paired {
            return;
        }
        let edge = self.recv.right_edge(self.held());
        let step = u64::from((self.cfg.recv_window_packets / 4).max(1));
        if edge > self.last_adv_edge
            && (self.last_adv_window == 0 || edge - self.last_adv_edge >= step)
        {
            self.ack_at = Some(0);
        }
    }

    pub(super) fn send_limit(&self) -> u32 {
        self.cc.window().min(self.cfg.max_in_flight_packets)
    }

    pub(super) fn transmit_session(&mut self, now: u64, buf: &mut [u8]) -> Option<usize> {
        if self.hello.reply_due {
            return self.transmit_hello(now, buf);
        }
        if let Some(seq) = self.send.next_to_send(self.send_limit()) {
            if self.send.is_retransmission(seq) {
                self.stats.retransmissions += 1;
            } else {
                self.stats.data_frames_sent += 1;
            }
            if self.rto_deadline.is_none() {
                self.rto_deadline = Some(now.saturating_add(self.rtt.rto()));
            }
            return self.build_session(now, buf, Kind::Data, Some(seq), 0);
        }
        // Zero-window probing (persist timer, backing off like the RTO): the peer's window
        // update may have been lost.
        if self.send.window_blocked() && self.send.in_flight() == 0 {
            match self.probe_deadline {
                None => {
                    self.probe_interval = self.rtt.rto();
                    self.probe_deadline = Some(now.saturating_add(self.probe_interval));
                }
                Some(t) if now >= t => {
                    self.probe_interval =
                        self.probe_interval.saturating_mul(2).min(self.cfg.rto_max);
                    self.probe_deadline = Some(now.saturating_add(self.probe_interval));
                    self.stats.acks_sent += 1;
                    return self.build_session(now, buf, Kind::Ack, None, ACK_REQUESTED);
                }
                Some(_) => {}
            }
        } else {
            self.probe_deadline = None;
        }
        if self.ack_at.is_some_and(|t| now >= t) {
            self.stats.acks_sent += 1;
            return self.build_session(now, buf, Kind::Ack, None, 0);
        }
        if now >= self.live.heartbeat_due() {
            self.stats.heartbeats_sent += 1;
            return self.build_session(now, buf, Kind::Heartbeat, None, 0);
        }
        None
    }

    fn build_session(
        &mut self,
        now: u64,
        buf: &mut [u8],
        kind: Kind,
        data: Option<u64>,
        ack_flags: u8,
    ) -> Option<usize> {
        let held = self.held();
        let mut ack = self.recv.ack_info(held);
        ack.flags = ack_flags;
        let session = self.session.as_mut()?;
        let counter = session.next_counter()?;
        let mut off = HEADER_LEN;
        off += ack.encode(&mut buf[off..]);
        if let Some(seq) = data {
            let p = self.send.on_transmit(seq, now)?;
            off += encode_data_header(&mut buf[off..], seq, p.flags);
            buf[off..off + p.payload.len()].copy_from_slice(&p.payload);
            off += p.payload.len();
        }
        let header = Header {
            kind,
            body_len: u16::try_from(off - HEADER_LEN).ok()?,
            sender: self.local_sid,
            receiver: session.peer,
            counter,
        }
        .encode();
        buf[..HEADER_LEN].copy_from_slice(&header);
        let tag = session.seal(counter, &header, &mut buf[HEADER_LEN..off])?;
        buf[off..off + TAG_LEN].copy_from_slice(&tag);
        self.ack_at = None;
        self.unacked_rx = 0;
        self.last_adv_edge = self.recv.right_edge(held);
        self.last_adv_window = ack.window;
        self.live.on_transmit(now);
        Some(off + TAG_LEN)
    }

    pub(super) fn on_session(&mut self, now: u64, raw: &RawFrame<'_>) -> Result<(), DropReason> {
        let h = raw.header;
        if h.receiver != self.local_sid {
            return Err(DropReason::StaleSession);
        }
        if !matches!(self.state, LinkState::Handshaking | LinkState::Paired) {
            return Err(DropReason::Closed);
        }
        self.session
            .as_mut()
            .ok_or(DropReason::StaleSession)?
            .open(raw, &mut self.scratch)?;
        if self.state == LinkState::Handshaking {
            self.become_paired(now);
        }
        self.live.on_receive(now);
        let scratch = core::mem::take(&mut self.scratch);
        let r = self.process_session_body(now, h.kind, &scratch);
        self.scratch = scratch;
        r
    }

    fn process_session_body(
        &mut self,
        now: u64,
        kind: Kind,
        body: &[u8],
    ) -> Result<(), DropReason> {
        let body = SessionBody::decode(kind, body).map_err(DropReason::Malformed)?;
        self.process_ack(now, &body)?;
        if let Some((seq, flags, payload)) = body.data {
            self.process_data(now, seq, flags, payload);
        }
        if body.ack.flags & ACK_REQUESTED != 0 {
            self.ack_at = Some(0);
        }
        Ok(())
    }

    fn process_ack(&mut self, now: u64, body: &SessionBody<'_>) -> Result<(), DropReason> {
        let events = &mut self.events;
        let stats = &mut self.stats;
        let o = self
            .send
            .on_ack(&body.ack, now, |m| {
                stats.messages_acked += 1;
                events.push_back(Queued::Acked(m));
            })
            .map_err(|_| DropReason::Malformed(ParseError::BadField))?;
        if let Some(r) = o.rtt_sample {
            self.rtt.sample(r);
        }
        if o.newly_acked > 0 {
            self.cc.on_ack(o.newly_acked);
            self.rto_deadline = Some(now.saturating_add(self.rtt.rto()));
        }
        if let Some(seq) = o.lost {
            self.stats.fast_retransmits += 1;
            self.cc
                .on_loss(seq, self.send.next_unsent(), self.send.in_flight());
        }
        if self.send.in_flight() == 0 {
            self.rto_deadline = None;
        }
        if !self.send.window_blocked() {
            self.probe_deadline = None;
        }
        Ok(())
    }

    fn process_data(&mut self, now: u64, seq: u64, flags: u8, payload: &[u8]) {
        let held = self.held();
        let had_gap = self.recv.buffered() > 0;
        match self.recv.on_data(seq, flags, payload, held) {
            RxOutcome::Duplicate => {
                self.stats.duplicates += 1;
                self.ack_at = Some(0);
            }
            RxOutcome::OutOfWindow => {
                self.stats.out_of_window += 1;
                self.ack_at = Some(0);
            }
            RxOutcome::OutOfOrder => {
                self.stats.out_of_order += 1;
                self.ack_at = Some(0);
            }
            RxOutcome::InOrder => {
                while let Some((f, p)) = self.recv.pop_in_order() {
                    match self.reasm.push(f, &p) {
                        Reassembled::Incomplete => {}
                        Reassembled::Complete(m, slots) => {
                            self.ready_slots += slots;
                            self.stats.messages_delivered += 1;
                            self.stats.bytes_delivered += m.len() as u64;
                            self.events.push_back(Queued::Delivered(m, slots));
                        }
                        Reassembled::Discarded => self.stats.messages_discarded += 1,
                    }
                }
                self.unacked_rx += 1;
                if had_gap || self.unacked_rx >= 2 {
                    self.ack_at = Some(0);
                } else {
                    let t = now.saturating_add(self.cfg.ack_delay);
                    self.ack_at = Some(self.ack_at.map_or(t, |a| a.min(t)));
                }
            }
        }
        let used = self.recv_slots_used() as u64;
        self.stats.max_recv_slots_used = self.stats.max_recv_slots_used.max(used);
    }
}
