//! Heartbeats and peer-loss detection, and a primary restart.

use super::sim::{MS, NetConfig, Sim, key};
use crate::link::{DropReason, Event, Inbound, Link, LinkConfig, LinkState, Role, SendError};
use crate::testutil::Rng;

#[test]
fn idle_link_stays_alive_on_heartbeats() {
    let cfg = LinkConfig::default();
    let mut sim = Sim::pair(cfg, NetConfig::lossy(0.3), 41);
    sim.run_pairing(10_000 * MS);
    let t0 = sim.now;
    sim.run(30_000 * MS, |s| {
        for l in &mut s.links {
            assert_eq!(l.poll_event(), None, "idle link must stay quiet");
        }
        false
    });
    for l in &sim.links {
        assert_eq!(l.state(), LinkState::Paired);
        let st = l.stats();
        // About one heartbeat per interval, not a flood.
        let expected = (sim.now - t0) / cfg.heartbeat_interval;
        assert!(
            st.heartbeats_sent >= expected * 9 / 10 && st.heartbeats_sent <= expected + 2,
            "{st:?}"
        );
    }
}

#[test]
fn silent_peer_is_reported_lost_exactly_once() {
    let cfg = LinkConfig::default();
    let mut sim = Sim::pair(cfg, NetConfig::lossy(0.1), 42);
    sim.run_pairing(10_000 * MS);
    // Some traffic in flight when the cable is cut.
    for i in 0..50 {
        sim.links[0].send(&[i as u8; 5000]).unwrap();
    }
    sim.run(3 * MS, |_| false);
    let cut = sim.now;
    sim.net = [NetConfig {
        loss: 1.0,
        ..NetConfig::PERFECT
    }; 2];
    let mut lost_at: [Option<u64>; 2] = [None, None];
    sim.run(30_000 * MS, |s| {
        for (i, l) in s.links.iter_mut().enumerate() {
            while let Some(e) = l.poll_event() {
                if e == Event::PeerLost {
                    assert!(lost_at[i].is_none(), "PeerLost twice on link {i}");
                    lost_at[i] = Some(s.now);
                }
            }
        }
        false
    });
    for (i, t) in lost_at.iter().enumerate() {
        let t = t.unwrap_or_else(|| panic!("link {i} never noticed"));
        let after = t - cut;
        // Detected no earlier than the timeout after the last frame (sent at most one
        // heartbeat interval before the cut) and promptly after it.
        assert!(
            after > cfg.peer_timeout - cfg.heartbeat_interval,
            "{i}: {after}"
        );
        assert!(after <= cfg.peer_timeout + 2 * MS, "{i}: {after}");
        assert_eq!(sim.links[i].state(), LinkState::PeerLost);
        assert_eq!(sim.links[i].send(b"x"), Err(SendError::Closed));
        assert_eq!(sim.links[i].next_timeout(), None);
    }
    // Frames arriving after the verdict are ignored: the pair never silently resumes.
    let mut buf = [0u8; 1500];
    assert_eq!(sim.links[0].poll_transmit(sim.now, &mut buf), None);
    assert_eq!(
        sim.links[1].on_frame(sim.now, &[0; 80]),
        Inbound::Dropped(DropReason::Closed)
    );
}

#[test]
fn restarted_primary_pairs_with_a_new_backup_link() {
    let k = key(0x42);
    let cfg = LinkConfig::default();
    let mut sim = Sim::pair(cfg, NetConfig::lossy(0.1), 43);
    sim.run_pairing(10_000 * MS);
    let old_primary = sim.links[0].local_session();
    // The primary host restarts: a new Link with a new session id replaces it.
    sim.links[0] = Link::new(cfg, Role::Primary, &k, &mut Rng::new(777)).unwrap();
    assert_ne!(sim.links[0].local_session(), old_primary);
    // The backup ignores the newcomer's HELLOs while it still believes in the old session,
    // then reports the old primary lost.
    let mut lost = false;
    assert!(sim.run(10_000 * MS, |s| {
        while let Some(e) = s.links[1].poll_event() {
            assert_eq!(e, Event::PeerLost);
            lost = true;
        }
        assert_eq!(s.links[0].state(), LinkState::Handshaking);
        lost
    }));
    assert!(sim.links[1].stats().stale_session > 0);
    // The backup host creates a new Link; the two pair and work.
    sim.links[1] = Link::new(cfg, Role::Backup, &k, &mut Rng::new(778)).unwrap();
    sim.run_pairing(10_000 * MS);
    sim.links[0].send(b"after restart").unwrap();
    let mut ok = false;
    assert!(sim.run(5_000 * MS, |s| {
        while let Some(e) = s.links[1].poll_event() {
            ok |= e == Event::Delivered(b"after restart".to_vec());
        }
        ok
    }));
}
