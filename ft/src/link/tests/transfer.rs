//! Bulk transfers over the simulated network: every message delivered exactly once, in
//! order, byte-identical, under loss, reordering, duplication and corruption.

use alloc::vec::Vec;

use super::sim::{MS, NetConfig, Sim, US, key};
use crate::link::{Event, LinkConfig, LinkState, LinkStats, MsgId, Role};
use crate::testutil::{Rng, volume};

pub(crate) fn message(stream: u64, i: usize, len: usize) -> Vec<u8> {
    Rng::new(stream.wrapping_mul(0x1000_0000_01B3) ^ i as u64).bytes(len)
}

/// Mixed sizes: many small, many medium, some large and a few near the maximum.
pub(crate) fn sizes(seed: u64, total: usize, max: usize) -> Vec<usize> {
    let mut rng = Rng::new(seed);
    let mut v = Vec::new();
    let mut sum = 0;
    while sum < total {
        let r = rng.below(100);
        let len = match r {
            0..40 => rng.below(200),
            40..80 => 200 + rng.below(3800),
            80..97 => 4000 + rng.below(60_000),
            _ => max - rng.below(1000),
        };
        sum += len;
        v.push(len);
    }
    v
}

pub(crate) struct Report {
    pub(crate) sim_time: u64,
    pub(crate) stats: [LinkStats; 2],
    pub(crate) bytes: [usize; 2],
}

/// Moves `volume[i]` bytes from link i to link 1-i and checks delivery semantics.
pub(crate) fn transfer(cfg: LinkConfig, net: NetConfig, seed: u64, volume: [usize; 2]) -> Report {
    let mut sim = Sim::pair(cfg, net, seed);
    sim.run_pairing(30_000 * MS);
    let start = sim.now;
    let max = sim.links[0].max_message_len();
    let sizes = [
        sizes(seed + 1, volume[0], max),
        sizes(seed + 2, volume[1], max),
    ];
    let streams = [seed ^ 0xAAAA, seed ^ 0x5555];
    let mut next_send = [0usize; 2];
    let mut next_recv = [0usize; 2];
    let mut next_ack = [0usize; 2];
    let mut app = |s: &mut Sim| {
        for i in 0..2 {
            while let Some(&len) = sizes[i].get(next_send[i]) {
                if !s.links[i].can_send(len) {
                    break;
                }
                let id = s.links[i]
                    .send(&message(streams[i], next_send[i], len))
                    .unwrap();
                assert_eq!(id, MsgId(next_send[i] as u64 + 1));
                next_send[i] += 1;
            }
            while let Some(e) = s.links[i].poll_event() {
                match e {
                    Event::Delivered(m) => {
                        let src = 1 - i;
                        let k = next_recv[i];
                        assert!(k < sizes[src].len(), "extra delivery");
                        assert_eq!(m.len(), sizes[src][k], "message {k} length");
                        assert!(
                            m == message(streams[src], k, m.len()),
                            "message {k} corrupted"
                        );
                        next_recv[i] += 1;
                    }
                    Event::Acked(id) => {
                        assert_eq!(id, MsgId(next_ack[i] as u64 + 1), "acks out of order");
                        next_ack[i] += 1;
                    }
                    other => panic!("unexpected event {other:?} on link {i}"),
                }
            }
            assert!(s.links[i].recv_slots_used() <= cfg.recv_window_packets as usize);
        }
        (0..2).all(|i| next_recv[i] == sizes[1 - i].len() && next_ack[i] == sizes[i].len())
    };
    let done = sim.run(600_000 * MS, &mut app);
    let sim_time = sim.now - start;
    assert!(
        done,
        "transfer incomplete: sent {next_send:?} recv {next_recv:?} acked {next_ack:?}\n{:#?}",
        [sim.links[0].stats(), sim.links[1].stats()]
    );
    // Let retransmissions and duplicates drain: nothing more may be delivered.
    sim.run(2000 * MS, &mut app);
    for l in &sim.links {
        assert!(l.all_acked());
        assert_eq!(l.stats().out_of_window, 0);
    }
    Report {
        sim_time,
        stats: [sim.links[0].stats(), sim.links[1].stats()],
        bytes: [sizes[0].iter().sum(), sizes[1].iter().sum()],
    }
}

#[test]
fn lossless_bulk() {
    let v = volume(16 << 20, 2 << 20);
    let r = transfer(LinkConfig::default(), NetConfig::PERFECT, 1, [v, 0]);
    assert_eq!(r.stats[0].retransmissions, 0);
    assert_eq!(
        r.stats[1].forged + r.stats[1].malformed + r.stats[1].replayed,
        0
    );
    let mbps = r.bytes[0] as f64 / (r.sim_time as f64 / 1e9) / 1e6;
    std::println!(
        "lossless: {} bytes in {} ms simulated ({mbps:.0} MB/s)",
        r.bytes[0],
        r.sim_time / MS
    );
}

#[test]
fn ten_percent_loss_with_reordering_and_duplication() {
    let v = volume(16 << 20, 1 << 20);
    let r = transfer(LinkConfig::default(), NetConfig::lossy(0.10), 2, [v, v / 8]);
    assert!(r.stats[0].retransmissions > 0);
    assert!(r.stats[1].duplicates > 0);
    assert!(r.stats[1].out_of_order > 0);
}

#[test]
fn thirty_percent_loss_with_corruption() {
    let net = NetConfig {
        corrupt: 0.05,
        dup: 0.05,
        reorder: 0.2,
        ..NetConfig::lossy(0.30)
    };
    let v = volume(8 << 20, 512 << 10);
    let r = transfer(LinkConfig::default(), net, 3, [v, v / 4]);
    let s = r.stats;
    assert!(
        s[1].forged + s[1].malformed > 0,
        "corruption must be detected: {s:?}"
    );
    assert!(s[0].fast_retransmits > 0);
}

#[test]
fn bidirectional_udp_mtu_without_congestion_control() {
    let cfg = LinkConfig {
        congestion_control: false,
        ..LinkConfig::for_udp()
    };
    let v = volume(4 << 20, 512 << 10);
    let r = transfer(cfg, NetConfig::lossy(0.05), 4, [v, v]);
    for s in r.stats {
        assert!(
            s.retransmissions < s.data_frames_sent / 4,
            "too many retransmissions: {s:?}"
        );
    }
}

#[test]
fn congested_bottleneck_with_tail_drop() {
    // 100 Mbit/s with at most 2 ms of queue: flooding it loses frames; congestion control must
    // back off and still deliver everything.
    let net = NetConfig {
        ns_per_byte: 80,
        max_queue_delay: 2 * MS,
        ..NetConfig::PERFECT
    };
    let v = volume(4 << 20, 512 << 10);
    let r = transfer(LinkConfig::default(), net, 5, [v, 0]);
    let mbps = r.bytes[0] as f64 / (r.sim_time as f64 / 1e9) / 1e6;
    std::println!(
        "bottleneck 12.5 MB/s: got {mbps:.1} MB/s, {} retx",
        r.stats[0].retransmissions
    );
    assert!(r.stats[0].retransmissions < r.stats[0].data_frames_sent / 5);
    assert!(mbps > 5.0, "{mbps} MB/s");
}

#[test]
fn bochs_like_receiver_one_frame_per_ms() {
    // The receiver takes at most one frame per ms; everything else is dropped. Pacing at
    // 1 ms on both sides plus congestion control keeps the link working.
    let net = NetConfig {
        rx_min_gap: MS,
        ..NetConfig::PERFECT
    };
    let cfg = LinkConfig {
        pacing_interval: MS,
        ack_delay: 5 * MS,
        ..LinkConfig::default()
    };
    let r = transfer(cfg, net, 6, [volume(1 << 20, 256 << 10), 0]);
    let fps = r.stats[0].data_frames_sent as f64 / (r.sim_time as f64 / 1e9);
    std::println!(
        "bochs-like: {fps:.0} data frames/s, {} retx",
        r.stats[0].retransmissions
    );
}

#[test]
fn large_messages_with_lost_fragments() {
    // Every message spans ~190 fragments; 20% of frames are lost, so nearly every message
    // loses fragments and must be repaired before reassembly completes.
    let cfg = LinkConfig::default();
    let mut sim = Sim::pair(
        cfg,
        NetConfig {
            loss: 0.2,
            ..NetConfig::PERFECT
        },
        7,
    );
    sim.run_pairing(10_000 * MS);
    let max = sim.links[0].max_message_len();
    assert_eq!(max, cfg.max_message_bytes);
    let n = volume(12, 3);
    let mut sent = 0;
    let mut got = 0;
    let ok = sim.run(120_000 * MS, |s| {
        while sent < n && s.links[0].can_send(max) {
            s.links[0].send(&message(9, sent, max - sent)).unwrap();
            sent += 1;
        }
        while let Some(e) = s.links[1].poll_event() {
            if let Event::Delivered(m) = e {
                assert!(m == message(9, got, max - got));
                got += 1;
            }
        }
        while s.links[0].poll_event().is_some() {}
        got == n
    });
    assert!(ok);
    assert!(sim.links[0].stats().retransmissions > 0);
    assert_eq!(sim.links[1].stats().messages_discarded, 0);
}

#[test]
fn slow_receiver_is_never_flooded() {
    let cfg = LinkConfig {
        recv_window_packets: 32,
        max_message_bytes: 16 << 10,
        ..LinkConfig::default()
    };
    let mut sim = Sim::pair(
        cfg,
        NetConfig {
            reorder: 0.2,
            jitter: 300 * US,
            ..NetConfig::PERFECT
        },
        8,
    );
    sim.run_pairing(10_000 * MS);
    let total = volume(400, 150);
    let (mut sent, mut got) = (0, 0);
    let mut next_drain = sim.now;
    let mut max_used = 0;
    let ok = sim.run(120_000 * MS, |s| {
        while sent < total && s.links[0].can_send(3000) {
            s.links[0].send(&message(1, sent, 3000)).unwrap();
            sent += 1;
        }
        while s.links[0].poll_event().is_some() {}
        // The application consumes one message every 5 ms.
        if s.now >= next_drain {
            if let Some(e) = s.links[1].poll_event() {
                let Event::Delivered(m) = e else {
                    panic!("{e:?}")
                };
                assert!(m == message(1, got, 3000));
                got += 1;
            }
            next_drain = s.now + 5 * MS;
        }
        let used = s.links[1].recv_slots_used();
        max_used = max_used.max(used);
        assert!(used <= 32, "receiver holds {used} > 32 fragments");
        assert!(s.links[0].in_flight() <= 32);
        got == total
    });
    assert!(ok);
    let st = sim.links[1].stats();
    assert_eq!(st.out_of_window, 0, "sender exceeded the advertised window");
    assert!(max_used >= 30, "window was never filled ({max_used})");
    assert!(
        sim.now > total as u64 * 5 * MS,
        "finished faster than the receiver drains"
    );
}

#[test]
fn zero_window_probe_recovers_a_lost_window_update() {
    let cfg = LinkConfig {
        recv_window_packets: 8,
        max_message_bytes: 8 << 10,
        heartbeat_interval: 2_000 * MS,
        peer_timeout: 10_000 * MS,
        ..LinkConfig::default()
    };
    let mut sim = Sim::pair(cfg, NetConfig::PERFECT, 9);
    sim.run_pairing(1_000 * MS);
    for i in 0..20 {
        sim.links[0].send(&message(2, i, 500)).unwrap();
    }
    // The receiving application is busy: the window closes after 8 fragments.
    sim.run(300 * MS, |s| {
        while s.links[0].poll_event().is_some() {}
        false
    });
    assert_eq!(sim.links[1].recv_slots_used(), 8);
    assert_eq!(sim.links[1].stats().out_of_window, 0);
    // It drains while the reverse path drops everything: the window update is lost.
    sim.net[1].loss = 1.0;
    let mut got = 0;
    while let Some(Event::Delivered(m)) = sim.links[1].poll_event() {
        assert!(m == message(2, got, 500));
        got += 1;
    }
    assert_eq!(got, 8);
    sim.run(20 * MS, |_| false);
    sim.net[1].loss = 0.0;
    let probes_before = sim.links[0].stats().acks_sent;
    let t0 = sim.now;
    assert!(sim.run(1_500 * MS, |s| {
        while let Some(e) = s.links[1].poll_event() {
            let Event::Delivered(m) = e else { panic!() };
            assert!(m == message(2, got, 500));
            got += 1;
        }
        while s.links[0].poll_event().is_some() {}
        got == 20
    }));
    assert!(
        sim.links[0].stats().acks_sent > probes_before,
        "recovered by a probe"
    );
    assert!(
        sim.now - t0 < cfg.heartbeat_interval,
        "recovered before any heartbeat"
    );
}

/// Hosts that both supply AES-256-GCM use it for session frames (and a transfer through loss,
/// reordering and corruption arrives whole); where one does not, both use ChaCha20-Poly1305.
#[test]
fn sessions_use_aes_gcm_only_where_both_hosts_offer_it() {
    let aes = LinkConfig {
        aes_gcm: Some(crate::testutil::AES_GCM),
        ..LinkConfig::default()
    };
    let net = NetConfig {
        corrupt: 0.02,
        ..NetConfig::lossy(0.05)
    };
    let v = volume(2 << 20, 256 << 10);
    let r = transfer(aes, net, 11, [v, v / 4]);
    assert!(
        r.stats[1].forged + r.stats[1].malformed > 0,
        "{:?}",
        r.stats
    );
    let k = key(7);
    for (cfgs, expected) in [
        ([aes, aes], "AES-256-GCM"),
        ([aes, LinkConfig::default()], "ChaCha20-Poly1305"),
        ([LinkConfig::default(), aes], "ChaCha20-Poly1305"),
    ] {
        let mut sim = Sim::new(
            cfgs,
            [Role::Primary, Role::Backup],
            [&k, &k],
            NetConfig::PERFECT,
            12,
        );
        sim.run_pairing(10 * MS * 1000);
        for l in &sim.links {
            assert_eq!(l.state(), LinkState::Paired);
            assert_eq!(l.cipher(), Some(expected));
        }
    }
}
