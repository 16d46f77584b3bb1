//! Pairing failures and hostile input: wrong key, role conflicts, configuration and version
//! mismatches, forged, tampered and replayed frames, and an authenticated peer that lies.

use alloc::vec;
use alloc::vec::Vec;

use super::sim::{MS, NetConfig, Sim, key};
use super::transfer::message;
use crate::link::chacha::ChaCha20;
use crate::link::config::Fingerprint;
use crate::link::crypto::{Direction, SessionCipher, TAG_LEN, nonce};
use crate::link::frame::{
    AckInfo, FRAG_FIRST, HEADER_LEN, Header, HelloBody, Kind, PROTOCOL_VERSION, encode_data_header,
};
use crate::link::{
    DropReason, Event, Inbound, Link, LinkConfig, LinkState, PairingError, PreSharedKey, Role,
    SendError,
};
use crate::testutil::Rng;

/// Runs until both links report a pairing failure; returns the two errors.
fn run_until_both_fail(sim: &mut Sim) -> [PairingError; 2] {
    let mut errs: [Option<PairingError>; 2] = [None, None];
    let ok = sim.run(60_000 * MS, |s| {
        for (i, l) in s.links.iter_mut().enumerate() {
            while let Some(e) = l.poll_event() {
                match e {
                    Event::PairingFailed(p) => {
                        assert!(errs[i].is_none(), "reported twice");
                        errs[i] = Some(p);
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        errs.iter().all(Option::is_some)
    });
    assert!(ok, "both sides must fail: {errs:?}");
    // Keep running: no more events, nothing delivered, no sending.
    sim.run(5_000 * MS, |s| {
        for l in &mut s.links {
            assert_eq!(l.poll_event(), None);
            assert_eq!(l.send(b"x"), Err(SendError::Closed));
        }
        false
    });
    for l in &sim.links {
        assert!(matches!(l.state(), LinkState::Failed(_)));
        assert_eq!(l.stats().messages_delivered, 0);
        assert_eq!(l.peer_session(), None);
    }
    [errs[0].unwrap(), errs[1].unwrap()]
}

#[test]
fn wrong_key_fails_on_both_sides() {
    for (seed, loss) in [(1, 0.0), (2, 0.1), (3, 0.3)] {
        let cfg = LinkConfig::default();
        let (ka, kb) = (key(1), key(2));
        let mut sim = Sim::new(
            [cfg; 2],
            [Role::Primary, Role::Backup],
            [&ka, &kb],
            NetConfig::lossy(loss),
            seed,
        );
        let errs = run_until_both_fail(&mut sim);
        for e in errs {
            assert_eq!(
                e,
                PairingError::WrongKeyOrForged {
                    bad_hellos: cfg.max_bad_hellos
                }
            );
        }
        assert!(
            sim.links
                .iter()
                .all(|l| l.stats().forged >= u64::from(cfg.max_bad_hellos))
        );
    }
}

#[test]
fn two_primaries_and_two_backups_are_refused() {
    for role in [Role::Primary, Role::Backup] {
        let k = key(7);
        let cfg = LinkConfig::default();
        let mut sim = Sim::new([cfg; 2], [role, role], [&k, &k], NetConfig::lossy(0.2), 11);
        assert_eq!(
            run_until_both_fail(&mut sim),
            [PairingError::RoleConflict(role); 2]
        );
    }
}

#[test]
fn config_fingerprint_mismatch_is_refused() {
    let k = key(7);
    let a = LinkConfig {
        fingerprint: Fingerprint::new(b"vm-a").unwrap(),
        ..LinkConfig::default()
    };
    let b = LinkConfig {
        fingerprint: Fingerprint::new(b"vm-b").unwrap(),
        ..a
    };
    let mut sim = Sim::new(
        [a, b],
        [Role::Primary, Role::Backup],
        [&k, &k],
        NetConfig::lossy(0.2),
        12,
    );
    assert_eq!(
        run_until_both_fail(&mut sim),
        [PairingError::ConfigMismatch; 2]
    );
}

#[test]
fn matching_fingerprints_pair_under_heavy_loss() {
    let fp = Fingerprint::new(&[0xab; 32]).unwrap();
    let cfg = LinkConfig {
        fingerprint: fp,
        ..LinkConfig::default()
    };
    let mut sim = Sim::pair(cfg, NetConfig::lossy(0.5), 13);
    let seen = sim.run_pairing(60_000 * MS);
    let ids = [sim.links[0].local_session(), sim.links[1].local_session()];
    assert_eq!(
        seen[0],
        [Event::Paired {
            peer_session: ids[1]
        }]
    );
    assert_eq!(
        seen[1],
        [Event::Paired {
            peer_session: ids[0]
        }]
    );
    assert_eq!(sim.links[0].peer_session(), Some(ids[1]));
}

/// A HELLO sealed under `psk` from a made-up host.
fn hello_frame(psk: &PreSharedKey, sid: u64, receiver: u64, body: &HelloBody) -> Vec<u8> {
    let mut buf = vec![0u8; 200];
    let blen = body.encode(&mut buf[HEADER_LEN..]);
    let header = Header {
        kind: Kind::Hello,
        body_len: blen as u16,
        sender: sid,
        receiver,
        counter: 1,
    }
    .encode();
    buf[..HEADER_LEN].copy_from_slice(&header);
    let tag = psk
        .hello_key(sid, ChaCha20::apply_portable)
        .seal(
            &nonce(Direction::Hello, 1),
            &header,
            &mut buf[HEADER_LEN..HEADER_LEN + blen],
        )
        .unwrap();
    buf[HEADER_LEN + blen..HEADER_LEN + blen + TAG_LEN].copy_from_slice(&tag);
    buf.truncate(HEADER_LEN + blen + TAG_LEN);
    buf
}

fn backup_hello(version: u16) -> HelloBody {
    HelloBody {
        role: Role::Backup,
        version,
        mtu: 1500,
        recv_window: 512,
        max_message: 1 << 18,
        fingerprint: Fingerprint::EMPTY,
        aes_gcm: false,
    }
}

#[test]
fn version_mismatch_is_refused() {
    let k = key(3);
    let mut link = Link::new(LinkConfig::default(), Role::Primary, &k, &mut Rng::new(5)).unwrap();
    let f = hello_frame(&k, 77, 0, &backup_hello(PROTOCOL_VERSION + 1));
    assert_eq!(link.on_frame(0, &f), Inbound::Accepted);
    let err = PairingError::VersionMismatch {
        ours: PROTOCOL_VERSION,
        theirs: PROTOCOL_VERSION + 1,
    };
    assert_eq!(link.poll_event(), Some(Event::PairingFailed(err)));
    assert_eq!(link.state(), LinkState::Failed(err));
    // It answers with its own HELLO so the peer can reach the same verdict.
    let mut buf = [0u8; 1500];
    let n = link.poll_transmit(1, &mut buf).unwrap();
    assert_eq!(
        Header::parse(&buf[..n]).unwrap().header.kind,
        Kind::HelloAck
    );
}

#[test]
fn pairing_timeout() {
    let cfg = LinkConfig {
        pairing_timeout: Some(2_000 * MS),
        ..LinkConfig::default()
    };
    let k = key(1);
    let mut sim = Sim::new(
        [cfg; 2],
        [Role::Primary, Role::Backup],
        [&k, &k],
        NetConfig {
            loss: 1.0,
            ..NetConfig::PERFECT
        },
        1,
    );
    let errs = run_until_both_fail(&mut sim);
    assert_eq!(errs, [PairingError::Timeout; 2]);
}

#[test]
fn send_errors_and_backpressure() {
    let cfg = LinkConfig {
        send_buffer_bytes: 300_000,
        max_send_messages: 8,
        ..LinkConfig::default()
    };
    let mut sim = Sim::pair(cfg, NetConfig::PERFECT, 21);
    assert_eq!(sim.links[0].send(b"early"), Err(SendError::NotPaired));
    sim.run_pairing(1_000 * MS);
    let max = sim.links[0].max_message_len();
    assert_eq!(
        sim.links[0].send(&vec![0; max + 1]),
        Err(SendError::TooLarge { len: max + 1, max })
    );
    // Without running the network, the buffer fills up.
    assert!(sim.links[0].send(&vec![1; max]).is_ok());
    assert_eq!(
        sim.links[0].send(&vec![1; 100_000]),
        Err(SendError::WouldBlock)
    );
    for _ in 0..7 {
        sim.links[0].send(b"").unwrap();
    }
    assert_eq!(sim.links[0].send(b""), Err(SendError::WouldBlock));
    // Acknowledgements free the slots once their events are polled.
    let mut acked = 0;
    assert!(sim.run(1_000 * MS, |s| {
        while let Some(e) = s.links[0].poll_event() {
            assert!(matches!(e, Event::Acked(_)));
            acked += 1;
        }
        while s.links[1].poll_event().is_some() {}
        acked == 8
    }));
    assert!(sim.links[0].send(b"again").is_ok());
}

/// Pairs, moves a few messages, and returns the sim with the network idle.
fn paired_with_traffic(seed: u64) -> Sim {
    let mut sim = Sim::pair(LinkConfig::default(), NetConfig::PERFECT, seed);
    sim.capture = true;
    sim.run_pairing(1_000 * MS);
    for i in 0..5 {
        sim.links[0].send(&message(3, i, 3000)).unwrap();
        sim.links[1].send(&message(4, i, 100)).unwrap();
    }
    let mut got = [0; 2];
    assert!(sim.run(1_000 * MS, |s| {
        for (l, g) in s.links.iter_mut().zip(&mut got) {
            while let Some(e) = l.poll_event() {
                if matches!(e, Event::Delivered(_)) {
                    *g += 1;
                }
            }
        }
        got == [5, 5] && s.links.iter().all(Link::all_acked)
    }));
    sim
}

/// Drains events, asserting that none is a delivery.
fn assert_nothing_delivered(link: &mut Link) {
    while let Some(e) = link.poll_event() {
        assert!(!matches!(e, Event::Delivered(_)), "{e:?}");
    }
}

#[test]
fn forged_frames_are_dropped_and_counted() {
    let mut sim = paired_with_traffic(31);
    let (a, b) = (sim.links[0].local_session(), sim.links[1].local_session());
    let mut rng = Rng::new(99);
    let before = sim.links[1].stats();
    let n = 2000;
    for i in 0..n {
        // Correct session ids and a fresh counter: only the AEAD can tell.
        let kind = [Kind::Data, Kind::Ack, Kind::Heartbeat][i % 3];
        let blen = 20 + rng.below(1400);
        let mut f = Header {
            kind,
            body_len: blen as u16,
            sender: a,
            receiver: b,
            counter: 1_000_000 + i as u64,
        }
        .encode()
        .to_vec();
        let mut body = vec![0u8; blen + TAG_LEN];
        rng.fill(&mut body);
        f.extend_from_slice(&body);
        assert_eq!(sim.deliver(1, &f), Inbound::Dropped(DropReason::Forged));
    }
    // Wrong session ids are stale, whatever the body.
    let mut f = Header {
        kind: Kind::Data,
        body_len: 40,
        sender: a ^ 1,
        receiver: b,
        counter: 5,
    }
    .encode()
    .to_vec();
    f.extend_from_slice(&[0; 56]);
    assert_eq!(
        sim.deliver(1, &f),
        Inbound::Dropped(DropReason::StaleSession)
    );
    // Forged HELLOs after pairing are ignored without harm.
    let hello = hello_frame(&key(9), a, 0, &backup_hello(PROTOCOL_VERSION));
    assert_eq!(sim.deliver(1, &hello), Inbound::Dropped(DropReason::Forged));
    let after = sim.links[1].stats();
    assert_eq!(after.forged - before.forged, n as u64 + 1);
    assert_eq!(after.stale_session - before.stale_session, 1);
    assert_eq!(after.messages_delivered, before.messages_delivered);
    assert_eq!(sim.links[1].state(), LinkState::Paired);
    assert_nothing_delivered(&mut sim.links[1]);
    // The link still works.
    sim.links[0].send(b"still alive").unwrap();
    let mut ok = false;
    sim.run(1_000 * MS, |s| {
        while let Some(e) = s.links[1].poll_event() {
            ok |= e == Event::Delivered(b"still alive".to_vec());
        }
        ok
    });
    assert!(ok);
}

#[test]
fn tampered_frames_are_dropped_then_original_accepted_once() {
    let mut sim = paired_with_traffic(32);
    // Take a fresh DATA frame off the wire instead of delivering it.
    sim.links[0].send(b"precious payload").unwrap();
    let mut buf = [0u8; 1500];
    let n = sim.links[0].poll_transmit(sim.now, &mut buf).unwrap();
    let frame = buf[..n].to_vec();
    assert_eq!(Header::parse(&frame).unwrap().header.kind, Kind::Data);
    let before = sim.links[1].stats();
    let mut tampered = 0;
    // Every single-bit flip in the ciphertext, the tag, and the counter/kind/length fields.
    let positions: Vec<usize> = (HEADER_LEN..n).chain(24..32).chain([3, 5]).collect();
    for &pos in &positions {
        for bit in [0, 3, 7] {
            let mut f = frame.clone();
            f[pos] ^= 1 << bit;
            let r = sim.deliver(1, &f);
            assert!(
                matches!(
                    r,
                    Inbound::Dropped(DropReason::Forged | DropReason::Malformed(_))
                ),
                "flip at {pos}: {r:?}"
            );
            tampered += 1;
        }
    }
    let after = sim.links[1].stats();
    assert_eq!(
        (after.forged + after.malformed) - (before.forged + before.malformed),
        tampered
    );
    assert_nothing_delivered(&mut sim.links[1]);
    // The untouched frame is accepted and delivered exactly once; its replay is refused.
    assert_eq!(sim.deliver(1, &frame), Inbound::Accepted);
    assert_eq!(
        sim.links[1].poll_event(),
        Some(Event::Delivered(b"precious payload".to_vec()))
    );
    assert_eq!(
        sim.deliver(1, &frame),
        Inbound::Dropped(DropReason::Replayed)
    );
    assert_nothing_delivered(&mut sim.links[1]);
}

#[test]
fn replayed_frames_are_dropped_and_never_delivered() {
    let mut sim = paired_with_traffic(33);
    let old: Vec<Vec<u8>> = sim.captured[0].clone();
    let sessions = old
        .iter()
        .filter(|f| !Header::parse(f).unwrap().header.kind.is_hello())
        .count();
    let before = sim.links[1].stats();
    for f in &old {
        let r = sim.deliver(1, f);
        assert_ne!(r, Inbound::Dropped(DropReason::Forged));
    }
    let after = sim.links[1].stats();
    assert_eq!(after.replayed - before.replayed, sessions as u64);
    assert_eq!(after.messages_delivered, before.messages_delivered);
    assert_nothing_delivered(&mut sim.links[1]);
    assert_eq!(sim.links[1].state(), LinkState::Paired);
    // Replayed HELLOs of the current peer only trigger a harmless HELLO_ACK.
    sim.run(100 * MS, |s| {
        assert_nothing_delivered(&mut s.links[1]);
        false
    });
    assert_eq!(sim.links[1].state(), LinkState::Paired);

    // A new incarnation of the backup is not fooled by the old primary's frames: it never
    // pairs with them and never delivers anything.
    let mut fresh = Link::new(
        LinkConfig::default(),
        Role::Backup,
        &key(0x42),
        &mut Rng::new(1234),
    )
    .unwrap();
    let mut buf = [0u8; 1500];
    for (t, f) in old.iter().enumerate() {
        let _ = fresh.on_frame(t as u64, f);
        while fresh.poll_transmit(t as u64, &mut buf).is_some() {}
    }
    assert_eq!(fresh.state(), LinkState::Handshaking);
    assert_eq!(fresh.poll_event(), None);
    assert!(fresh.stats().stale_session > 0);
}

/// Seals a session frame as the primary of a session `(primary_sid, backup_sid)`.
fn session_frame(
    psk: &PreSharedKey,
    p_sid: u64,
    b_sid: u64,
    counter: u64,
    kind: Kind,
    body: &[u8],
) -> Vec<u8> {
    let (tx, _) = psk.session_keys(
        Role::Primary,
        p_sid,
        b_sid,
        SessionCipher::ChaCha20Poly1305(ChaCha20::apply_portable),
    );
    let header = Header {
        kind,
        body_len: body.len() as u16,
        sender: p_sid,
        receiver: b_sid,
        counter,
    }
    .encode();
    let mut f = header.to_vec();
    let mut ct = body.to_vec();
    let tag = tx
        .seal(
            &nonce(Direction::PrimaryToBackup, counter),
            &header,
            &mut ct,
        )
        .unwrap();
    f.extend_from_slice(&ct);
    f.extend_from_slice(&tag);
    f
}

fn data_body(ack: AckInfo, seq: u64, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 200 + payload.len()];
    let mut n = ack.encode(&mut b);
    n += encode_data_header(&mut b[n..], seq, flags);
    b[n..n + payload.len()].copy_from_slice(payload);
    b.truncate(n + payload.len());
    b
}

#[test]
fn lying_authenticated_peer_cannot_exhaust_memory() {
    // We hold the key and play a misbehaving primary against a real backup.
    let k = key(0x42);
    let cfg = LinkConfig {
        recv_window_packets: 64,
        max_message_bytes: 32 << 10,
        ..LinkConfig::default()
    };
    let mut backup = Link::new(cfg, Role::Backup, &k, &mut Rng::new(8)).unwrap();
    let b_sid = backup.local_session();
    let p_sid = 0x1111;
    let hello = hello_frame(
        &k,
        p_sid,
        b_sid,
        &HelloBody {
            role: Role::Primary,
            ..backup_hello(PROTOCOL_VERSION)
        },
    );
    assert_eq!(backup.on_frame(0, &hello), Inbound::Accepted);
    assert_eq!(backup.state(), LinkState::Paired);
    let mut ctr = 0;
    let mut next = |kind, body: &[u8]| {
        ctr += 1;
        session_frame(&k, p_sid, b_sid, ctr, kind, body)
    };
    // A window far beyond anything sane, and fragments far beyond the receive window.
    let greedy = AckInfo {
        window: u32::MAX,
        ..AckInfo::default()
    };
    for seq in [65, 1000, u64::MAX / 2, u64::MAX] {
        let f = next(Kind::Data, &data_body(greedy, seq, FRAG_FIRST, &[0; 1000]));
        assert_eq!(backup.on_frame(1, &f), Inbound::Accepted);
    }
    assert_eq!(backup.stats().out_of_window, 4);
    assert_eq!(backup.recv_slots_used(), 0);
    // An ack for data never sent is rejected.
    let liar = AckInfo {
        cum: 5,
        ..AckInfo::default()
    };
    let f = next(Kind::Ack, &data_body(liar, 1, 0, &[])[..14]);
    assert!(matches!(
        backup.on_frame(2, &f),
        Inbound::Dropped(DropReason::Malformed(_))
    ));
    // A message that never ends: at most the window is buffered, then it is discarded.
    for seq in 1..=200 {
        let flags = if seq == 1 { FRAG_FIRST } else { 0 };
        let f = next(Kind::Data, &data_body(greedy, seq, flags, &[7; 1300]));
        let _ = backup.on_frame(3, &f);
        assert!(backup.recv_slots_used() <= 64);
    }
    assert!(backup.stats().messages_discarded >= 1);
    assert_nothing_delivered(&mut backup);
    // The backup, told the window is u32::MAX, still bounds what it sends.
    for _ in 0..20 {
        backup.send(&[1; 30_000]).unwrap();
    }
    let mut buf = [0u8; 1500];
    let mut sent = 0;
    while backup.poll_transmit(4, &mut buf).is_some() {
        sent += 1;
        assert!(sent < 1000);
    }
    assert!(backup.in_flight() <= cfg.initial_cwnd);
}
