// SPDX-License-Identifier: MIT OR Apache-2.0
//! Pairing: the HELLO exchange that checks the peer's parameters and derives the session keys
//! (see the [endpoint's docs](super) for the protocol and [`crate::link::crypto`] for the key
//! schedule), and its two outcomes: paired, or failed for good.

use super::session::Session;
use super::{Event, Link, LinkState, Queued};
use crate::link::chacha::Keystream;
use crate::link::config::MIN_MTU;
use crate::link::crypto::{Aead, Direction, PreSharedKey, SessionCipher, TAG_LEN, nonce};
use crate::link::error::{DropReason, PairingError};
use crate::link::frame::{
    DATA_OVERHEAD, HEADER_LEN, Header, HelloBody, Kind, PROTOCOL_VERSION, RawFrame,
};

/// The HELLO exchange's state.
#[derive(Debug)]
pub(super) struct Handshake {
    /// Seals our HELLOs: derived from the pre-shared key and our session id.
    key: Aead,
    /// Nonce counter of the last HELLO sent.
    counter: u64,
    /// When the HELLO timer next fires.
    pub(super) next_at: u64,
    /// A valid HELLO came in: answer it with a HELLO_ACK at once.
    pub(super) reply_due: bool,
    /// Unauthenticated HELLOs since the last valid one, while handshaking.
    bad_hellos: u32,
    /// HELLOs still to send after failing, so the peer reaches the same verdict.
    pub(super) linger: u32,
    /// The peer's parameters, from its last valid HELLO.
    pub(super) peer: Option<HelloBody>,
}

impl Handshake {
    /// The state before any HELLO, for the link with session id `local_sid` whose cipher
    /// runs on `keystream`.
    pub(super) fn new(psk: &PreSharedKey, local_sid: u64, keystream: Keystream) -> Self {
        Self {
            key: psk.hello_key(local_sid, keystream),
            counter: 0,
            next_at: 0,
            reply_due: false,
            bad_hellos: 0,
            linger: 0,
            peer: None,
        }
    }
}

impl Link {
    pub(super) fn fail(&mut self, e: PairingError) {
        if matches!(self.state, LinkState::Failed(_)) {
            return;
        }
        self.state = LinkState::Failed(e);
        self.events
            .push_back(Queued::Event(Event::PairingFailed(e)));
        self.hello.linger = 3 * self.cfg.max_bad_hellos;
        self.session = None;
    }

    fn hello_body(&self) -> HelloBody {
        HelloBody {
            role: self.role,
            version: PROTOCOL_VERSION,
            mtu: u16::try_from(self.cfg.mtu).unwrap_or(u16::MAX),
            recv_window: self.cfg.recv_window_packets,
            max_message: u32::try_from(self.cfg.max_message_bytes).unwrap_or(u32::MAX),
            fingerprint: self.cfg.fingerprint,
            aes_gcm: self.cfg.aes_gcm.is_some(),
        }
    }

    pub(super) fn transmit_hello(&mut self, now: u64, buf: &mut [u8]) -> Option<usize> {
        let timer_allowed = match self.state {
            LinkState::Handshaking => true,
            LinkState::Failed(_) => self.hello.linger > 0,
            _ => false,
        };
        let timer = timer_allowed && now >= self.hello.next_at;
        if !timer && !self.hello.reply_due {
            return None;
        }
        let kind = if self.hello.reply_due {
            Kind::HelloAck
        } else {
            Kind::Hello
        };
        let receiver = self.session.as_ref().map_or(0, |s| s.peer);
        let body = self.hello_body();
        let blen = body.encode(&mut buf[HEADER_LEN..]);
        self.hello.counter += 1;
        let header = Header {
            kind,
            body_len: u16::try_from(blen).ok()?,
            sender: self.local_sid,
            receiver,
            counter: self.hello.counter,
        }
        .encode();
        buf[..HEADER_LEN].copy_from_slice(&header);
        let end = HEADER_LEN + blen;
        let tag = self
            .hello
            .key
            .seal(
                &nonce(Direction::Hello, self.hello.counter),
                &header,
                &mut buf[HEADER_LEN..end],
            )
            .ok()?;
        buf[end..end + TAG_LEN].copy_from_slice(&tag);
        if timer {
            self.hello.next_at = now.saturating_add(self.cfg.hello_interval);
            if matches!(self.state, LinkState::Failed(_)) {
                self.hello.linger -= 1;
            }
        }
        self.hello.reply_due = false;
        self.stats.hellos_sent += 1;
        Some(end + TAG_LEN)
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

    pub(super) fn on_hello(&mut self, now: u64, raw: &RawFrame<'_>) -> Result<(), DropReason> {
        let h = raw.header;
        if h.receiver != 0 && h.receiver != self.local_sid {
            return Err(DropReason::StaleSession);
        }
        if self.state == LinkState::Paired
            && self.session.as_ref().is_some_and(|s| s.peer != h.sender)
        {
            return Err(DropReason::StaleSession);
        }
        let key = self.psk.hello_key(h.sender, self.cfg.keystream);
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
                self.hello.bad_hellos += 1;
                if self.hello.bad_hellos >= self.cfg.max_bad_hellos {
                    self.fail(PairingError::WrongKeyOrForged {
                        bad_hellos: self.hello.bad_hellos,
                    });
                }
            }
            return Err(DropReason::Forged);
        }
        let body = HelloBody::decode(&self.scratch).map_err(DropReason::Malformed)?;
        match self.state {
            LinkState::Failed(_) => {
                // Let the peer see our parameters and reach the same verdict.
                self.hello.reply_due = true;
                Ok(())
            }
            LinkState::Paired => {
                if h.receiver != self.local_sid {
                    self.hello.reply_due = true;
                }
                Ok(())
            }
            LinkState::PeerLost => Err(DropReason::Closed),
            LinkState::Handshaking => {
                self.hello.bad_hellos = 0;
                self.hello.reply_due = true;
                if let Err(e) = self.check_peer(&body) {
                    self.fail(e);
                    return Ok(());
                }
                if self.session.as_ref().is_none_or(|s| s.peer != h.sender) {
                    // AES-256-GCM where both offer it (a HELLO is authentic, so no one else
                    // can strip the offer).
                    let cipher = match self.cfg.aes_gcm {
                        Some(imp) if body.aes_gcm => SessionCipher::Aes256Gcm(imp),
                        _ => SessionCipher::ChaCha20Poly1305(self.cfg.keystream),
                    };
                    self.session = Some(Session::new(
                        &self.psk,
                        self.role,
                        self.local_sid,
                        h.sender,
                        cipher,
                    ));
                }
                self.hello.peer = Some(body);
                if h.receiver == self.local_sid {
                    self.become_paired(now);
                }
                Ok(())
            }
        }
    }

    pub(super) fn become_paired(&mut self, now: u64) {
        let Some(peer) = self.hello.peer else { return };
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
}
