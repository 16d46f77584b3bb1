// SPDX-License-Identifier: MIT OR Apache-2.0
//! One end of the peer link, the object its driver holds: pairing handshake
//! (`pairing`), then an authenticated session carrying reliable, ordered messages with flow
//! and congestion control and heartbeats (`session`).
//!
//! [`Link`] is sans-IO: it never reads a clock or touches a NIC. The caller
//! 1. feeds every received peer-link frame (the Ethernet or UDP payload) to
//!    [`Link::on_frame`],
//! 2. calls [`Link::poll_transmit`] until it returns `None`, putting each frame on the wire,
//! 3. drains [`Link::poll_event`],
//! 4. sleeps until [`Link::next_timeout`] (or the next received frame) and calls
//!    [`Link::handle_timeout`] (also done implicitly by `poll_transmit`).
//!
//! Time is `now: u64` nanoseconds from any monotonic origin.
//!
//! # Pairing
//! Both hosts send HELLOs (role, protocol version, MTU, receive window, max message size,
//! guest-config fingerprint) every `hello_interval`, sealed under a per-sender HELLO key
//! derived from the pre-shared key. A host answers every valid HELLO that does not yet name
//! its session id with a HELLO_ACK naming the peer's. A host is paired once it receives a
//! valid HELLO/HELLO_ACK naming its own session id, or a valid session frame; it then sends a
//! session frame at once so the peer completes too. Replayed HELLOs of an earlier incarnation
//! can never complete pairing because they cannot name the current (random) session id.
//! Pairing fails for good (`Event::PairingFailed`) on role conflict, version or fingerprint
//! mismatch, or after `max_bad_hellos` unauthenticated HELLOs; the failed host keeps sending a
//! few HELLOs (and answers valid ones) so its peer reaches the same verdict.
//!
//! # Security
//! Every frame is authenticated with ChaCha20-Poly1305 (see [`crate::link::crypto`]); nothing is
//! acted upon before authentication succeeds, and session frames are checked against a replay
//! window. HELLO failures are the one thing an attacker on the wire can provoke (a
//! denial of service, as with any unauthenticated network).
//!
//! # Lifetime
//! `Failed` and `PeerLost` are terminal: an FT pair must not silently resume after a

mod pairing;
mod session;

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use self::pairing::Handshake;
use self::session::Session;
use super::config::{LinkConfig, MAX_FRAME, Role};
use super::congestion::Congestion;
use super::crypto::{PreSharedKey, RandomSource, TAG_LEN};
use super::error::{ConfigError, DropReason, PairingError, ParseError, SendError};
use super::fragment::{Reassembler, split};
use super::frame::{HEADER_LEN, Header};
use super::heartbeat::Liveness;
use super::rtt::RttEstimator;
use super::stats::LinkStats;
use super::window::{RecvWindow, SendWindow};

/// Identifies a message passed to [`Link::send`] (1, 2, 3, ... in send order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsgId(pub u64);

/// Something the application must know about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Pairing succeeded; messages may be sent.
    Paired {
        /// The peer's session id.
        peer_session: u64,
    },
    /// Pairing failed; the link is closed.
    PairingFailed(PairingError),
    /// A complete message from the peer, in order, exactly once.
    Delivered(Vec<u8>),
    /// The peer received the message (all its fragments).
    Acked(MsgId),
    /// Nothing authenticated arrived for `peer_timeout`; the link is closed. Reported once.
    PeerLost,
}

/// Lifecycle of a [`Link`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Exchanging HELLOs.
    Handshaking,
    /// Session established.
    Paired,
    /// Pairing failed (terminal).
    Failed(PairingError),
    /// The peer went silent (terminal).
    PeerLost,
}

/// What [`Link::on_frame`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// The frame authenticated and was processed.
    Accepted,
    /// The frame was dropped (and counted).
    Dropped(DropReason),
}

/// An [`Event`] waiting for [`Link::poll_event`], with what polling it frees.
#[derive(Debug)]
enum Queued {
    /// Frees nothing.
    Event(Event),
    /// Frees the receive slots (fragments) the message held.
    Delivered(Vec<u8>, u32),
    /// Frees a message slot.
    Acked(MsgId),
}

/// One end of the authenticated, reliable peer link. See the [module docs](self).
#[derive(Debug)]
pub struct Link {
    cfg: LinkConfig,
    role: Role,
    psk: PreSharedKey,
    /// Our random session id.
    local_sid: u64,
    state: LinkState,
    /// When the link first saw the clock (the pairing timeout counts from it).
    started: Option<u64>,
    /// The HELLO exchange.
    hello: Handshake,
    /// The session's keys and counters: the candidate session while pairing.
    session: Option<Session>,
    // Transport.
    send: SendWindow,
    recv: RecvWindow,
    reasm: Reassembler,
    /// Receive slots held by messages delivered but not yet polled.
    ready_slots: u32,
    /// Messages sent and not yet reported acknowledged.
    outstanding_msgs: usize,
    next_msg: u64,
    /// Payload bytes per data fragment (both MTUs allow it).
    frag_payload: usize,
    peer_max_message: usize,
    rtt: RttEstimator,
    cc: Congestion,
    rto_deadline: Option<u64>,
    /// When the next zero-window probe is due, and the current probe interval.
    probe_deadline: Option<u64>,
    probe_interval: u64,
    /// When an acknowledgement is due (0: at once).
    ack_at: Option<u64>,
    /// In-order data frames received since our last acknowledgement.
    unacked_rx: u32,
    /// The receive window's right edge and size as last advertised.
    last_adv_edge: u64,
    last_adv_window: u32,
    live: Liveness,
    /// When the last frame went out (for pacing).
    last_tx: Option<u64>,
    events: VecDeque<Queued>,
    stats: LinkStats,
    /// Decrypted bodies of received frames.
    scratch: Vec<u8>,
}

impl Link {
    /// Creates a link for `role` with a fresh random session id drawn from `rng`.
    ///
    /// # Errors
    /// [`ConfigError`] if `config` is inconsistent or `rng` returns only zeros.
    pub fn new(
        config: LinkConfig,
        role: Role,
        key: &PreSharedKey,
        rng: &mut impl RandomSource,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let local_sid = (0..8)
            .map(|_| rng.next_u64())
            .find(|&x| x != 0)
            .ok_or(ConfigError::BadRandomness)?;
        let cfg = config;
        Ok(Self {
            cfg,
            role,
            psk: key.clone(),
            local_sid,
            state: LinkState::Handshaking,
            started: None,
            hello: Handshake::new(key, local_sid, cfg.keystream),
            session: None,
            send: SendWindow::new(),
            recv: RecvWindow::new(cfg.recv_window_packets),
            reasm: Reassembler::new(cfg.max_message_bytes, cfg.recv_window_packets),
            ready_slots: 0,
            outstanding_msgs: 0,
            next_msg: 1,
            frag_payload: cfg.fragment_payload(),
            peer_max_message: cfg.max_message_bytes,
            rtt: RttEstimator::new(cfg.rto_initial, cfg.rto_min, cfg.rto_max),
            cc: Congestion::new(
                cfg.congestion_control,
                cfg.initial_cwnd,
                cfg.max_in_flight_packets,
            ),
            rto_deadline: None,
            probe_deadline: None,
            probe_interval: 0,
            ack_at: None,
            unacked_rx: 0,
            last_adv_edge: 0,
            last_adv_window: 0,
            live: Liveness::new(cfg.heartbeat_interval, cfg.peer_timeout),
            last_tx: None,
            events: VecDeque::new(),
            stats: LinkStats::default(),
            scratch: Vec::with_capacity(cfg.mtu),
        })
    }

    /// Current state.
    #[must_use]
    pub fn state(&self) -> LinkState {
        self.state
    }

    /// The cipher of the session's frames ("AES-256-GCM" or "ChaCha20-Poly1305"), once a
    /// peer's HELLO has been accepted.
    #[must_use]
    pub fn cipher(&self) -> Option<&'static str> {
        self.session.as_ref().map(|s| s.cipher)
    }

    /// Our role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// Our random session id (changes with every `Link`).
    #[must_use]
    pub fn local_session(&self) -> u64 {
        self.local_sid
    }

    /// The peer's session id once paired.
    #[must_use]
    pub fn peer_session(&self) -> Option<u64> {
        match self.state {
            LinkState::Paired | LinkState::PeerLost => self.session.as_ref().map(|s| s.peer),
            _ => None,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &LinkConfig {
        &self.cfg
    }

    /// Counters, with the current RTT estimate and congestion window filled in.
    #[must_use]
    pub fn stats(&self) -> LinkStats {
        let mut s = self.stats;
        s.srtt = self.rtt.srtt().unwrap_or(0);
        s.rto = self.rtt.rto();
        s.cwnd = u64::from(self.cc.cwnd());
        s
    }

    /// How long the peer has been silent (nothing authenticated received), once paired —
    /// including after it was declared lost.
    #[must_use]
    pub fn peer_silent_for(&self, now: u64) -> Option<u64> {
        matches!(self.state, LinkState::Paired | LinkState::PeerLost)
            .then(|| self.live.silent_for(now))
    }

    /// Data frames in flight (sent, not yet acknowledged or declared lost).
    #[must_use]
    pub fn in_flight(&self) -> u32 {
        self.send.in_flight()
    }

    /// Payload bytes buffered for (re)transmission.
    #[must_use]
    pub fn send_buffered(&self) -> usize {
        self.send.bytes()
    }

    /// Whether every fragment of the messages sent has gone out at least once (nothing waits
    /// for its first transmission; some may still wait for an acknowledgement).
    #[must_use]
    pub fn all_sent(&self) -> bool {
        !self.send.has_unsent()
    }

    /// Whether all sent messages have been acknowledged.
    #[must_use]
    pub fn all_acked(&self) -> bool {
        self.send.is_empty()
    }

    /// Largest message [`Link::send`] accepts now (ours and the peer's limits).
    #[must_use]
    pub fn max_message_len(&self) -> usize {
        self.peer_max_message
    }

    /// Whether `send` would accept a message of `len` bytes right now.
    #[must_use]
    pub fn can_send(&self, len: usize) -> bool {
        self.state == LinkState::Paired
            && len <= self.peer_max_message
            && self.outstanding_msgs < self.cfg.max_send_messages
            && self.send.bytes() + len <= self.cfg.send_buffer_bytes
    }

    /// Receive slots (fragments) currently held: undelivered in-order data plus out-of-order
    /// fragments. Never exceeds `recv_window_packets`.
    #[must_use]
    pub fn recv_slots_used(&self) -> usize {
        self.held() as usize + self.recv.buffered()
    }

    fn held(&self) -> u32 {
        self.reasm.slots() + self.ready_slots
    }

    fn note_time(&mut self, now: u64) {
        if self.started.is_none() {
            self.started = Some(now);
        }
    }

    /// Queues a message for reliable, in-order delivery.
    ///
    /// # Errors
    /// [`SendError::NotPaired`] before pairing, [`SendError::Closed`] after failure or peer
    /// loss, [`SendError::TooLarge`] beyond [`Link::max_message_len`], and
    /// [`SendError::WouldBlock`] when the send buffer or message slots are full (backpressure:
    /// retry after polling `Acked` events).
    pub fn send(&mut self, msg: &[u8]) -> Result<MsgId, SendError> {
        match self.state {
            LinkState::Paired => {}
            LinkState::Handshaking => return Err(SendError::NotPaired),
            LinkState::Failed(_) | LinkState::PeerLost => return Err(SendError::Closed),
        }
        if msg.len() > self.peer_max_message {
            return Err(SendError::TooLarge {
                len: msg.len(),
                max: self.peer_max_message,
            });
        }
        if !self.can_send(msg.len()) {
            return Err(SendError::WouldBlock);
        }
        let id = MsgId(self.next_msg);
        self.next_msg += 1;
        for (flags, chunk) in split(msg, self.frag_payload) {
            self.send.push(id, flags, chunk.to_vec());
        }
        self.outstanding_msgs += 1;
        self.stats.messages_sent += 1;
        Ok(id)
    }

    /// Returns the next event, if any. Polling `Delivered` events frees receive window;
    /// polling `Acked` events frees message slots.
    pub fn poll_event(&mut self) -> Option<Event> {
        Some(match self.events.pop_front()? {
            Queued::Event(e) => e,
            Queued::Delivered(m, slots) => {
                self.ready_slots -= slots;
                self.maybe_window_update();
                Event::Delivered(m)
            }
            Queued::Acked(id) => {
                self.outstanding_msgs -= 1;
                Event::Acked(id)
            }
        })
    }

    /// Makes the next [`poll_transmit`](Self::poll_transmit) acknowledge everything received
    /// so far at once instead of after the ack delay: for an application whose peer acts on
    /// the acknowledgement (the fault-tolerant pair's backup learns from it that output was
    /// released).
    pub fn acknowledge_now(&mut self) {
        if self.state == LinkState::Paired {
            self.ack_at = Some(0);
        }
    }

    /// Processes timers: pairing timeout, peer loss, retransmission timeout. Called by
    /// [`Link::poll_transmit`] as well.
    pub fn handle_timeout(&mut self, now: u64) {
        self.note_time(now);
        match self.state {
            LinkState::Handshaking => {
                if let (Some(t), Some(s)) = (self.cfg.pairing_timeout, self.started)
                    && now.saturating_sub(s) >= t
                {
                    self.fail(PairingError::Timeout);
                }
            }
            LinkState::Paired => {
                if self.live.check_lost(now) {
                    self.state = LinkState::PeerLost;
                    self.events.push_back(Queued::Event(Event::PeerLost));
                    return;
                }
                if self.rto_deadline.is_some_and(|d| now >= d) {
                    self.stats.timeouts += 1;
                    self.send.on_timeout(now, self.rtt.rto());
                    self.cc.on_timeout(self.send.next_unsent());
                    self.rtt.back_off();
                    self.rto_deadline =
                        (self.send.in_flight() > 0).then(|| now.saturating_add(self.rtt.rto()));
                }
            }
            LinkState::Failed(_) | LinkState::PeerLost => {}
        }
    }

    /// The earliest time at which [`Link::handle_timeout`] / [`Link::poll_transmit`] have
    /// something to do (absolute nanoseconds; may be in the past), or `None` if only a
    /// received frame or a `send` can create work.
    #[must_use]
    pub fn next_timeout(&self) -> Option<u64> {
        let hello = || self.hello.next_at;
        let t = match self.state {
            LinkState::Handshaking => {
                let pairing = self
                    .cfg
                    .pairing_timeout
                    .and_then(|t| self.started.map(|s| s.saturating_add(t)));
                let reply = self.hello.reply_due.then_some(0);
                [Some(hello()), pairing, reply].into_iter().flatten().min()
            }
            LinkState::Failed(_) => {
                let reply = self.hello.reply_due.then_some(0);
                let linger = (self.hello.linger > 0).then(hello);
                [reply, linger].into_iter().flatten().min()
            }
            LinkState::Paired => {
                let ready = (self.hello.reply_due
                    || self.send.next_to_send(self.send_limit()).is_some())
                .then_some(0);
                [
                    ready,
                    self.rto_deadline,
                    self.ack_at,
                    self.probe_deadline,
                    Some(self.live.heartbeat_due()),
                    Some(self.live.loss_deadline().saturating_add(1)),
                ]
                .into_iter()
                .flatten()
                .min()
            }
            LinkState::PeerLost => None,
        }?;
        match self.last_tx {
            Some(last) if self.cfg.pacing_interval > 0 => {
                Some(t.max(last.saturating_add(self.cfg.pacing_interval)))
            }
            _ => Some(t),
        }
    }

    /// Writes the next frame to transmit into `buf` (which must hold at least `config().mtu`
    /// bytes) and returns its length, or `None` if nothing is due. Call repeatedly until
    /// `None`.
    pub fn poll_transmit(&mut self, now: u64, buf: &mut [u8]) -> Option<usize> {
        self.handle_timeout(now);
        if buf.len() < self.cfg.mtu {
            self.stats.tx_buffer_too_small += 1;
            return None;
        }
        if let Some(last) = self.last_tx
            && self.cfg.pacing_interval > 0
            && now < last.saturating_add(self.cfg.pacing_interval)
        {
            return None;
        }
        let n = match self.state {
            LinkState::Handshaking | LinkState::Failed(_) => self.transmit_hello(now, buf),
            LinkState::Paired => self.transmit_session(now, buf),
            LinkState::PeerLost => None,
        }?;
        self.last_tx = Some(now);
        self.stats.frames_sent += 1;
        self.stats.bytes_sent += n as u64;
        Some(n)
    }

    /// Processes one received peer-link frame (the payload of an Ethernet frame of type
    /// 0x88B5 or of a UDP datagram). Never panics, whatever the bytes.
    pub fn on_frame(&mut self, now: u64, frame: &[u8]) -> Inbound {
        self.note_time(now);
        self.stats.frames_received += 1;
        if self.state == LinkState::PeerLost {
            return Inbound::Dropped(DropReason::Closed);
        }
        let raw = match Header::parse(frame) {
            Ok(r) => r,
            Err(e) => {
                self.stats.malformed += 1;
                return Inbound::Dropped(DropReason::Malformed(e));
            }
        };
        // Bound what a peer can make us buffer: no frame larger than both MTUs.
        let limit = self
            .hello
            .peer
            .map_or(MAX_FRAME, |p| usize::from(p.mtu).max(self.cfg.mtu));
        if HEADER_LEN + usize::from(raw.header.body_len) + TAG_LEN > limit {
            self.stats.malformed += 1;
            return Inbound::Dropped(DropReason::Malformed(ParseError::BadLength));
        }
        if raw.header.sender == self.local_sid {
            // Our own frame reflected back (or a forgery claiming our id).
            self.stats.stale_session += 1;
            return Inbound::Dropped(DropReason::StaleSession);
        }
        let r = if raw.header.kind.is_hello() {
            self.on_hello(now, &raw)
        } else {
            self.on_session(now, &raw)
        };
        match r {
            Ok(()) => {
                self.stats.frames_accepted += 1;
                Inbound::Accepted
            }
            Err(reason) => {
                match reason {
                    DropReason::Malformed(_) => self.stats.malformed += 1,
                    DropReason::Forged => self.stats.forged += 1,
                    DropReason::Replayed => self.stats.replayed += 1,
                    DropReason::StaleSession => self.stats.stale_session += 1,
                    DropReason::Closed => {}
                }
                Inbound::Dropped(reason)
            }
        }
    }
}
