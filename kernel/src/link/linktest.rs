// SPDX-License-Identifier: MIT OR Apache-2.0
//! `linktest=MiB`: two Castor hosts pair over the peer link (`role=`, `key=`); the primary
//! streams that many MiB of pseudo-random data from a seed both know, the backup regenerates
//! the stream and checks every byte it received against it (cheaper than a digest, so the
//! figures are the link's, and exact); then both keep the link alive on heartbeats and report
//! when the peer goes silent for longer than `peer_timeout=`. With `ip=`, `peer_ip=` (and
//! `gateway=` for a peer behind a router) the link runs over UDP/IPv4 instead of raw Ethernet.
//!
//! Console contract (the two-host integration tests rely on it): `link: paired ...`,
//! `link: pairing failed: <reason>`, `link: sent N MiB ...`, `link: received N MiB ...,
//! identical to the sender's stream` (or `..., differs from the sender's stream at byte <B>`),
//! `link: peer lost after <ms> ms of silence (timeout <ms> ms)`.

use alloc::vec;
use alloc::vec::Vec;

use castor_ft::link::{Event, Role};

use super::connect::connect;
use super::peer::{LinkCycles, PeerLink};
use crate::arch::x86_64::machine::ExitStatus;
use crate::arch::x86_64::{instr, time};
use crate::config::Config;
use crate::kprintln;

const MS: u64 = 1_000_000;
/// Message size of the bulk stream.
const CHUNK: usize = 32 * 1024;
/// Marks the final message: `DONE`, total bytes (u64 LE).
const DONE: &[u8; 4] = b"DONE";
/// The stream's seed.
const SEED: u64 = 0x2545_F491_4F6C_DD1D;
/// Announces the raw benchmark phase, then its end (`RAW!` + frames sent, u64 LE).
const RAW_START: &[u8; 4] = b"RAW?";
const RAW_END: &[u8; 4] = b"RAW!";
/// Length of the raw blast.
const RAW_BLAST: u64 = 1000 * MS;

/// Xorshift64* stream: the primary's data, reproducible by anyone with the seed. Each call
/// starts a new word, so both sides cut the stream alike (into the sender's messages).
fn fill(state: &mut u64, buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        let v = next_word(state).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

fn next_word(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// Whether `msg` is the next message of the stream at `state` (advanced past it either way).
fn matches(state: &mut u64, msg: &[u8]) -> bool {
    let mut same = true;
    for chunk in msg.chunks(8) {
        let v = next_word(state).to_le_bytes();
        same &= chunk == &v[..chunk.len()];
    }
    same
}

/// Where the time of `frames` frames went since `start` (a TSC value and the link's cycle
/// counts then): TSC cycles per frame in each part of the link's I/O, and in the rest (the
/// test's own work, and waiting).
fn per_frame(peer: &PeerLink, frames: u64, start: (u64, LinkCycles)) -> alloc::string::String {
    let n = frames.max(1);
    let (now, was) = (instr::rdtsc(), start.1);
    let c = peer.cycles;
    let parts = [
        c.nic_receive - was.nic_receive,
        c.link_receive - was.link_receive,
        c.link_transmit - was.link_transmit,
        c.nic_transmit - was.nic_transmit,
    ];
    let rest = now.wrapping_sub(start.0).saturating_sub(parts.iter().sum());
    alloc::format!(
        "TSC cycles per frame: NIC receive {}, link receive {}, link transmit {}, NIC transmit \
         {}, rest {}",
        parts[0] / n,
        parts[1] / n,
        parts[2] / n,
        parts[3] / n,
        rest / n
    )
}

/// Runs the link test with the configured role and key on the first NIC.
pub fn run(config: &Config) -> ExitStatus {
    let (Some(role), Some(mib)) = (config.role, config.linktest_mib) else {
        kprintln!("link: linktest= needs role= and key= too");
        return ExitStatus::Failure;
    };
    let timeout = u64::from(config.peer_timeout_ms) * MS;
    let Some(mut peer) = connect(config, "link") else {
        return ExitStatus::Failure;
    };
    // Frames per second the backup received data at (0 on the primary).
    let link_rate = match role {
        Role::Primary => send_stream(&mut peer, u64::from(mib) << 20).then_some(0),
        Role::Backup => receive_stream(&mut peer),
    };
    let Some(link_rate) = link_rate else {
        return ExitStatus::Failure;
    };
    if config.linkbench && role == Role::Primary && !raw_phase(&mut peer) {
        return ExitStatus::Failure;
    }
    hold(&mut peer, timeout, link_rate)
}

/// Sends `msg` and pumps until the peer acknowledged it; false if the link died.
fn send_acked(peer: &mut PeerLink, msg: &[u8]) -> bool {
    while !peer.link().can_send(msg.len()) {
        peer.pump();
        if !drain(peer) {
            return false;
        }
    }
    let _ = peer.link().send(msg);
    while !peer.link().all_acked() {
        peer.pump();
        if !drain(peer) {
            return false;
        }
    }
    true
}

/// Benchmark (primary): announce, blast raw frames for [`RAW_BLAST`], report the count. The
/// backup measures the rate it received them at and compares it with the link's.
fn raw_phase(peer: &mut PeerLink) -> bool {
    if !send_acked(peer, RAW_START) {
        return false;
    }
    let sent = peer.blast_raw(RAW_BLAST);
    let mut end = RAW_END.to_vec();
    end.extend_from_slice(&sent.to_le_bytes());
    kprintln!("link: blasted {sent} raw frames in {} ms", RAW_BLAST / MS);
    send_acked(peer, &end)
}

/// Handles events that need no action while streaming; false if the link died.
fn drain(peer: &mut PeerLink) -> bool {
    while let Some(e) = peer.link().poll_event() {
        match e {
            Event::Acked(_) | Event::Delivered(_) | Event::Paired { .. } => {}
            Event::PeerLost | Event::PairingFailed(_) => {
                kprintln!("link: the peer was lost during the transfer");
                return false;
            }
        }
    }
    true
}

fn send_stream(peer: &mut PeerLink, total: u64) -> bool {
    let start = time::now_ns();
    let cycles = (instr::rdtsc(), peer.cycles);
    let frames_before = peer.link().stats().frames_sent;
    let mut state = SEED;
    let mut chunk = vec![0u8; CHUNK];
    let mut sent = 0;
    while sent < total {
        let len = CHUNK.min((total - sent) as usize);
        fill(&mut state, &mut chunk[..len]);
        while !peer.link().can_send(len) {
            peer.pump();
            if !drain(peer) {
                return false;
            }
        }
        if peer.link().send(&chunk[..len]).is_err() {
            kprintln!("link: send refused after can_send");
            return false;
        }
        sent += len as u64;
    }
    let mut done = Vec::with_capacity(12);
    done.extend_from_slice(DONE);
    done.extend_from_slice(&total.to_le_bytes());
    while !peer.link().can_send(done.len()) {
        peer.pump();
        if !drain(peer) {
            return false;
        }
    }
    let _ = peer.link().send(&done);
    while !peer.link().all_acked() {
        peer.pump();
        if !drain(peer) {
            return false;
        }
    }
    let ms = ((time::now_ns() - start) / MS).max(1);
    let stats = peer.link().stats();
    kprintln!(
        "link: sent {} MiB in {ms} ms ({} KiB/s), {} retransmissions, {} frames, {} received frames dropped on purpose, round trip {} us, window {} frames; {}",
        total >> 20,
        (total >> 10) * 1000 / ms,
        stats.retransmissions,
        stats.frames_sent,
        peer.injected_drops,
        stats.srtt / 1000,
        stats.cwnd,
        per_frame(peer, stats.frames_sent - frames_before, cycles)
    );
    true
}

/// Receives the stream and checks it byte for byte; returns the frame rate it arrived at.
fn receive_stream(peer: &mut PeerLink) -> Option<u64> {
    let start = time::now_ns();
    let cycles = (instr::rdtsc(), peer.cycles);
    let frames_before = peer.link().stats().frames_received;
    let mut state = SEED;
    let mut received = 0u64;
    // Where the first message unlike the sender's stream began.
    let mut differs_at = None;
    loop {
        match peer.next_event(u64::MAX) {
            Some(Event::Delivered(msg)) if msg.len() == 12 && msg.starts_with(DONE) => {
                let total = u64::from_le_bytes(msg[4..12].try_into().unwrap_or([0; 8]));
                let ms = ((time::now_ns() - start) / MS).max(1);
                let verdict = match differs_at {
                    None if total == received => "identical to the sender's stream".into(),
                    None => alloc::format!("short of the sender's stream ({total} bytes sent)"),
                    Some(at) => alloc::format!("differs from the sender's stream at byte {at}"),
                };
                let frames = peer.link().stats().frames_received - frames_before;
                kprintln!(
                    "link: received {} MiB in {ms} ms ({} KiB/s), {verdict}; {}",
                    received >> 20,
                    (received >> 10) * 1000 / ms,
                    per_frame(peer, frames, cycles)
                );
                let rate = frames * 1000 / ms;
                return verdict.starts_with("identical").then_some(rate);
            }
            Some(Event::Delivered(msg)) => {
                if !matches(&mut state, &msg) && differs_at.is_none() {
                    differs_at = Some(received);
                }
                received += msg.len() as u64;
            }
            Some(Event::PeerLost | Event::PairingFailed(_)) | None => {
                kprintln!(
                    "link: the peer was lost during the transfer ({received} bytes received)"
                );
                return None;
            }
            Some(_) => {}
        }
    }
}

/// Keeps the link up on heartbeats until the peer goes silent; reports how long it was silent.
/// On the backup, reports the raw-frame benchmark when the primary announces its end.
fn hold(peer: &mut PeerLink, timeout: u64, link_rate: u64) -> ExitStatus {
    kprintln!(
        "link: holding the link; the peer counts as lost after {} ms of silence",
        timeout / MS
    );
    loop {
        let event = peer.next_event(u64::MAX);
        if let Some(Event::Delivered(msg)) = &event
            && msg.len() == 12
            && msg.starts_with(RAW_END)
        {
            let sent = u64::from_le_bytes(msg[4..12].try_into().unwrap_or([0; 8]));
            let raw = peer.raw;
            let span = raw.last_ns.saturating_sub(raw.first_ns).max(1);
            let raw_rate = raw.frames * 1_000_000_000 / span;
            kprintln!(
                "link bench: {} on {}: raw {raw_rate} frames/s ({} of {sent} blasted frames arrived), peer link {link_rate} frames/s, ratio {}.{:02}",
                peer.nic_name(),
                if raw.frames > 0 {
                    "the wire"
                } else {
                    "nothing"
                },
                raw.frames,
                link_rate / raw_rate.max(1),
                link_rate * 100 / raw_rate.max(1) % 100
            );
        }
        if let Some(Event::PeerLost) = event {
            let silent = peer.link().peer_silent_for(time::now_ns()).unwrap_or(0);
            let s = peer.link().stats();
            kprintln!(
                "link: peer lost after {} ms of silence (timeout {} ms); {} forged, {} replayed, {} malformed frames dropped",
                silent / MS,
                timeout / MS,
                s.forged,
                s.replayed,
                s.malformed
            );
            return ExitStatus::Success;
        }
    }
}
