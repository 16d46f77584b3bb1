//! The peer-link state machine: pairing handshake, authenticated session, reliable ordered
//! message transport with flow and congestion control, and heartbeats.
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
//! Every frame is authenticated with ChaCha20-Poly1305 (see [`super::crypto`]); nothing is
//! acted upon before authentication succeeds, and session frames are checked against a replay
//! window. HELLO failures are the one thing an attacker on the wire can provoke (a
//! denial of service, as with any unauthenticated network).
//!
//! # Lifetime
//! `Failed` and `PeerLost` are terminal: an FT pair must not silently resume after a
//! failover decision. Create a new `Link` (new session id, new keys) to pair again.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::config::{LinkConfig, MAX_FRAME, MIN_MTU, Role};
use super::congestion::Congestion;
use super::crypto::{Aead, Direction, PreSharedKey, RandomSource, TAG_LEN, nonce};
use super::error::{ConfigError, DropReason, PairingError, ParseError, SendError};
use super::fragment::{Reassembled, Reassembler, split};
use super::frame::{
    ACK_REQUESTED, DATA_OVERHEAD, HEADER_LEN, Header, HelloBody, Kind, PROTOCOL_VERSION, RawFrame,
    SessionBody, encode_data_header,
};
use super::heartbeat::Liveness;
use super::replay::ReplayWindow;
use super::rtt::RttEstimator;
use super::stats::LinkStats;
use super::window::{RecvWindow, RxOutcome, SendWindow};

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

/// Keys and counters of one session (or of the candidate session while pairing).
#[derive(Debug)]
struct Session {
    peer: u64,
    tx: Aead,
    rx: Aead,
    tx_dir: Direction,
    rx_dir: Direction,
    tx_counter: u64,
    replay: ReplayWindow,
}

#[derive(Debug)]
enum Queued {
    Event(Event),
    Delivered(Vec<u8>, u32),
    Acked(MsgId),
}

/// One end of the authenticated, reliable peer link. See the [module docs](self).
#[derive(Debug)]
pub struct Link {
    cfg: LinkConfig,
    role: Role,
    psk: PreSharedKey,
    local_sid: u64,
    state: LinkState,
    started: Option<u64>,
    // Pairing.
    hello_key: Aead,
    hello_counter: u64,
    next_hello: u64,
    hello_reply: bool,
    bad_hellos: u32,
    linger_hellos: u32,
    peer_hello: Option<HelloBody>,
    session: Option<Session>,
    // Transport.
    send: SendWindow,
    recv: RecvWindow,
    reasm: Reassembler,
    ready_slots: u32,
    outstanding_msgs: usize,
    next_msg: u64,
    frag_payload: usize,
    peer_max_message: usize,
    rtt: RttEstimator,
    cc: Congestion,
    rto_deadline: Option<u64>,
    probe_deadline: Option<u64>,
    probe_interval: u64,
    ack_at: Option<u64>,
    unacked_rx: u32,
    last_adv_edge: u64,
    last_adv_window: u32,
    live: Liveness,
    last_tx: Option<u64>,
    events: VecDeque<Queued>,
    stats: LinkStats,
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
            hello_key: key.hello_key(local_sid),
            hello_counter: 0,
            next_hello: 0,
            hello_reply: false,
            bad_hellos: 0,
            linger_hellos: 0,
            peer_hello: None,
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

    /// Schedules a window update if the application freed a worthwhile amount of window.
    /// Makes the next [`poll_transmit`](Self::poll_transmit) acknowledge everything received
    /// so far at once instead of after the ack delay: for an application whose peer acts on
    /// the acknowledgement (the fault-tolerant pair's backup learns from it that output was
    /// released).
    pub fn acknowledge_now(&mut self) {
        if self.state == LinkState::Paired {
            self.ack_at = Some(0);
        }
    }

    fn maybe_window_update(&mut self) {
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

    fn fail(&mut self, e: PairingError) {
        if matches!(self.state, LinkState::Failed(_)) {
            return;
        }
        self.state = LinkState::Failed(e);
        self.events
            .push_back(Queued::Event(Event::PairingFailed(e)));
        self.linger_hellos = 3 * self.cfg.max_bad_hellos;
        self.session = None;
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
        let hello = || self.next_hello;
        let t = match self.state {
            LinkState::Handshaking => {
                let pairing = self
                    .cfg
                    .pairing_timeout
                    .and_then(|t| self.started.map(|s| s.saturating_add(t)));
                let reply = self.hello_reply.then_some(0);
                [Some(hello()), pairing, reply].into_iter().flatten().min()
            }
            LinkState::Failed(_) => {
                let reply = self.hello_reply.then_some(0);
                let linger = (self.linger_hellos > 0).then(hello);
                [reply, linger].into_iter().flatten().min()
            }
            LinkState::Paired => {
                let ready = (self.hello_reply
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

    fn send_limit(&self) -> u32 {
        self.cc.window().min(self.cfg.max_in_flight_packets)
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

    fn hello_body(&self) -> HelloBody {
        HelloBody {
            role: self.role,
            version: PROTOCOL_VERSION,
            mtu: u16::try_from(self.cfg.mtu).unwrap_or(u16::MAX),
            recv_window: self.cfg.recv_window_packets,
            max_message: u32::try_from(self.cfg.max_message_bytes).unwrap_or(u32::MAX),
            fingerprint: self.cfg.fingerprint,
        }
    }

    fn transmit_hello(&mut self, now: u64, buf: &mut [u8]) -> Option<usize> {
        let timer_allowed = match self.state {
            LinkState::Handshaking => true,
            LinkState::Failed(_) => self.linger_hellos > 0,
            _ => false,
        };
        let timer = timer_allowed && now >= self.next_hello;
        if !timer && !self.hello_reply {
            return None;
        }
        let kind = if self.hello_reply {
            Kind::HelloAck
        } else {
            Kind::Hello
        };
        let receiver = self.session.as_ref().map_or(0, |s| s.peer);
        let body = self.hello_body();
        let blen = body.encode(&mut buf[HEADER_LEN..]);
        self.hello_counter += 1;
        let header = Header {
            kind,
            body_len: u16::try_from(blen).ok()?,
            sender: self.local_sid,
            receiver,
            counter: self.hello_counter,
        }
        .encode();
        buf[..HEADER_LEN].copy_from_slice(&header);
        let end = HEADER_LEN + blen;
        let tag = self
            .hello_key
            .seal(
                &nonce(Direction::Hello, self.hello_counter),
                &header,
                &mut buf[HEADER_LEN..end],
            )
            .ok()?;
        buf[end..end + TAG_LEN].copy_from_slice(&tag);
        if timer {
            self.next_hello = now.saturating_add(self.cfg.hello_interval);
            if matches!(self.state, LinkState::Failed(_)) {
                self.linger_hellos -= 1;
            }
        }
        self.hello_reply = false;
        self.stats.hellos_sent += 1;
        Some(end + TAG_LEN)
    }

    fn transmit_session(&mut self, now: u64, buf: &mut [u8]) -> Option<usize> {
        if self.hello_reply {
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
        let counter = session.tx_counter;
        // A 64-bit counter cannot wrap in practice; refuse rather than reuse a nonce.
        session.tx_counter = counter.checked_add(1)?;
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
        let tag = session
            .tx
            .seal(
                &nonce(session.tx_dir, counter),
                &header,
                &mut buf[HEADER_LEN..off],
            )
            .ok()?;
        buf[off..off + TAG_LEN].copy_from_slice(&tag);
        self.ack_at = None;
        self.unacked_rx = 0;
        self.last_adv_edge = self.recv.right_edge(held);
        self.last_adv_window = ack.window;
        self.live.on_transmit(now);
        Some(off + TAG_LEN)
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
            .peer_hello
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

    fn check_peer(&self, peer: &HelloBody) -> Result<(), PairingError> {
        if peer.version != PROTOCOL_VERSION {
            return Err(PairingError::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: peer.version,
            });
        }
        if peer.role == self.role {
            return Err(PairingError::RoleConflict(self.role));
        }
        if peer.fingerprint != self.cfg.fingerprint {
            return Err(PairingError::ConfigMismatch);
        }
        Ok(())
    }

    fn on_hello(&mut self, now: u64, raw: &RawFrame<'_>) -> Result<(), DropReason> {
        let h = raw.header;
        if h.receiver != 0 && h.receiver != self.local_sid {
            return Err(DropReason::StaleSession);
        }
        if self.state == LinkState::Paired
            && self.session.as_ref().is_some_and(|s| s.peer != h.sender)
        {
            return Err(DropReason::StaleSession);
        }
        let key = self.psk.hello_key(h.sender);
        self.scratch.clear();
        self.scratch.extend_from_slice(raw.body);
        if key
            .open(
                &nonce(Direction::Hello, h.counter),
                raw.aad,
                &mut self.scratch,
                raw.tag,
            )
            .is_err()
        {
            self.stats.bad_hellos += 1;
            if self.state == LinkState::Handshaking {
                self.bad_hellos += 1;
                if self.bad_hellos >= self.cfg.max_bad_hellos {
                    self.fail(PairingError::WrongKeyOrForged {
                        bad_hellos: self.bad_hellos,
                    });
                }
            }
            return Err(DropReason::Forged);
        }
        let body = HelloBody::decode(&self.scratch).map_err(DropReason::Malformed)?;
        match self.state {
            LinkState::Failed(_) => {
                // Let the peer see our parameters and reach the same verdict.
                self.hello_reply = true;
                Ok(())
            }
            LinkState::Paired => {
                if h.receiver != self.local_sid {
                    self.hello_reply = true;
                }
                Ok(())
            }
            LinkState::PeerLost => Err(DropReason::Closed),
            LinkState::Handshaking => {
                self.bad_hellos = 0;
                self.hello_reply = true;
                if let Err(e) = self.check_peer(&body) {
                    self.fail(e);
                    return Ok(());
                }
                if self.session.as_ref().is_none_or(|s| s.peer != h.sender) {
                    let (tx, rx) = self.psk.session_keys(self.role, self.local_sid, h.sender);
                    self.session = Some(Session {
                        peer: h.sender,
                        tx,
                        rx,
                        tx_dir: Direction::from_sender(self.role),
                        rx_dir: Direction::from_sender(self.role.peer()),
                        tx_counter: 1,
                        replay: ReplayWindow::new(),
                    });
                }
                self.peer_hello = Some(body);
                if h.receiver == self.local_sid {
                    self.become_paired(now);
                }
                Ok(())
            }
        }
    }

    fn become_paired(&mut self, now: u64) {
        let Some(peer) = self.peer_hello else { return };
        let Some(peer_sid) = self.session.as_ref().map(|s| s.peer) else {
            return;
        };
        self.state = LinkState::Paired;
        let peer_mtu = usize::from(peer.mtu).max(MIN_MTU);
        self.frag_payload = self.cfg.mtu.min(peer_mtu) - DATA_OVERHEAD;
        let peer_window_bytes = (peer.recv_window as usize).saturating_mul(self.frag_payload);
        self.peer_max_message = self
            .cfg
            .max_message_bytes
            .min(peer.max_message as usize)
            .min(peer_window_bytes);
        self.send.set_initial_window(peer.recv_window);
        self.live.start(now);
        self.ack_at = Some(0);
        self.events.push_back(Queued::Event(Event::Paired {
            peer_session: peer_sid,
        }));
    }

    fn on_session(&mut self, now: u64, raw: &RawFrame<'_>) -> Result<(), DropReason> {
        let h = raw.header;
        if h.receiver != self.local_sid {
            return Err(DropReason::StaleSession);
        }
        if !matches!(self.state, LinkState::Handshaking | LinkState::Paired) {
            return Err(DropReason::Closed);
        }
        let session = self.session.as_mut().ok_or(DropReason::StaleSession)?;
        if session.peer != h.sender {
            return Err(DropReason::StaleSession);
        }
        if !session.replay.check(h.counter) {
            return Err(DropReason::Replayed);
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(raw.body);
        session
            .rx
            .open(
                &nonce(session.rx_dir, h.counter),
                raw.aad,
                &mut self.scratch,
                raw.tag,
            )
            .map_err(|_| DropReason::Forged)?;
        session.replay.accept(h.counter);
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
