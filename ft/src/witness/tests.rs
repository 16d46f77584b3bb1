// SPDX-License-Identifier: MIT OR Apache-2.0
//! The witness protocol: strict, authenticated messages; the lease rules; and a simulation of
//! two hosts contending for the lease across partitions, delays and clock drift, which checks
//! that no two hosts ever hold it at the same real time.

use alloc::vec::Vec;

use super::wire::{REPLY_LEN, REQUEST_LEN, WireError};
use super::*;
use crate::link::{ChaCha20, PreSharedKey, RandomSource};
use crate::testutil::Rng;

const PAIR: [u8; 16] = [7; 16];
const LEASE: u32 = 3000;

fn psk() -> PreSharedKey {
    PreSharedKey::from_bytes([0x42; 32])
}

struct Random(Rng);

impl RandomSource for Random {
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
}

fn witness(now_ms: u64) -> Witness {
    Witness::new(psk(), ChaCha20::apply_portable, 0xAAAA, LEASE, now_ms)
}

fn client(id: u64) -> LeaseClient {
    LeaseClient::new(psk(), ChaCha20::apply_portable, id, PAIR, Want::Hold)
}

#[test]
fn messages_are_strict_and_authenticated() {
    let request = Request {
        pair: PAIR,
        nonce: 99,
        want: Want::Query,
    };
    let bytes = request.seal(&psk(), ChaCha20::apply_portable, 5, 1);
    assert_eq!(bytes.len(), REQUEST_LEN);
    let opened = Request::open(&psk(), ChaCha20::apply_portable, &bytes).unwrap();
    assert_eq!(
        (opened.sender, opened.counter, opened.message),
        (5, 1, request)
    );
    for len in 0..bytes.len() {
        assert!(Request::open(&psk(), ChaCha20::apply_portable, &bytes[..len]).is_err());
    }
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x10;
        assert!(
            Request::open(&psk(), ChaCha20::apply_portable, &bad).is_err(),
            "byte {i} flipped"
        );
    }
    let other = PreSharedKey::from_bytes([0x43; 32]);
    assert_eq!(
        Request::open(&other, ChaCha20::apply_portable, &bytes),
        Err(WireError::Forged)
    );
    assert!(
        Reply::open(&psk(), ChaCha20::apply_portable, &bytes).is_err(),
        "a request is no reply"
    );
    let reply = Reply {
        pair: PAIR,
        nonce: 99,
        holder: 5,
        remaining_ms: 2999,
        lease_ms: 3000,
        granted: true,
    };
    let bytes = reply.seal(&psk(), ChaCha20::apply_portable, 0xAAAA, 7);
    assert_eq!(bytes.len(), REPLY_LEN);
    assert_eq!(
        Reply::open(&psk(), ChaCha20::apply_portable, &bytes).map(|s| s.message),
        Ok(reply)
    );
    let mut rng = Rng::new(3);
    for _ in 0..20_000 {
        let len = rng.below(100);
        let junk = rng.bytes(len);
        let _ = Reply::open(&psk(), ChaCha20::apply_portable, &junk);
        let _ = Request::open(&psk(), ChaCha20::apply_portable, &junk);
    }
}

#[test]
fn the_lease_goes_to_one_host_until_it_expires_and_replays_are_dropped() {
    let mut random = Random(Rng::new(1));
    let mut w = witness(0);
    let (mut a, mut b) = (client(1), client(2));
    // A starting witness grants nothing for one lease.
    let req = a.poll(10, &mut random).unwrap();
    let reply = a.on_reply(10, &w.on_message(10, &req).unwrap()).unwrap();
    assert!(!reply.granted && reply.holder == 0 && reply.remaining_ms == LEASE - 10);
    assert!(!a.holds(10));
    let now = u64::from(LEASE);
    let req = a.poll(now, &mut random).unwrap();
    let raw_reply = w.on_message(now, &req).unwrap();
    assert!(a.on_reply(now, &raw_reply).unwrap().granted);
    assert!(
        a.holds(now + 2699) && !a.holds(now + 2700),
        "90% of the lease"
    );
    assert_eq!(
        a.on_reply(now, &raw_reply),
        None,
        "a repeated reply is no news"
    );
    assert_eq!(
        w.on_message(now + 5, &req),
        None,
        "a replayed request is dropped"
    );
    // B asks while A holds it: refused, told who holds it.
    let req = b.poll(now + 100, &mut random).unwrap();
    let reply = b
        .on_reply(now + 100, &w.on_message(now + 100, &req).unwrap())
        .unwrap();
    assert!(!reply.granted);
    assert_eq!((reply.holder, reply.remaining_ms), (1, LEASE - 100));
    assert!(matches!(b.state(), LeaseState::Elsewhere { holder: 1, .. }));
    // A renews only every quarter lease.
    assert!(a.poll(now + 100, &mut random).is_none());
    let later = now + u64::from(LEASE / 4);
    let req = a.poll(later, &mut random).unwrap();
    assert!(
        a.on_reply(later, &w.on_message(later, &req).unwrap())
            .unwrap()
            .granted
    );
    // A falls silent: once its lease expired at the witness, B gets it.
    let expiry = later + u64::from(LEASE);
    let req = b.poll(expiry - 300, &mut random).unwrap();
    let reply = b.on_reply(expiry - 300, &w.on_message(expiry - 300, &req).unwrap());
    assert!(!reply.unwrap().granted);
    let req = b.poll(expiry, &mut random).unwrap();
    assert!(
        b.on_reply(expiry, &w.on_message(expiry, &req).unwrap())
            .unwrap()
            .granted
    );
    assert!(!a.holds(expiry), "A's own count ended earlier");
    // A comes back: refused, and it knows its lease is gone.
    let req = a.poll(expiry + 10, &mut random).unwrap();
    assert!(
        !a.on_reply(expiry + 10, &w.on_message(expiry + 10, &req).unwrap())
            .unwrap()
            .granted
    );
    assert!(matches!(a.state(), LeaseState::Elsewhere { holder: 2, .. }));
    // A query changes nothing.
    a.set_want(Want::Query);
    let t = expiry + 400;
    let req = a.poll(t, &mut random).unwrap();
    let reply = a.on_reply(t, &w.on_message(t, &req).unwrap()).unwrap();
    assert_eq!((reply.granted, reply.holder), (false, 2));
    assert_eq!(w.holder(&PAIR, t).map(|h| h.0), Some(2));
    assert_eq!(w.stats.dropped, 1);
}

/// A simulated run: two hosts that both want the lease all the time (the worst case: a cut
/// link between live primary and backup), a witness, lossy paths that are cut at random for
/// stretches, random delays, and each clock running at its own rate. Returns the real time
/// (ms) at which both hosts held the lease, if that ever happened, and how many times the
/// lease changed hands.
fn contend(seed: u64, rates: [f64; 3]) -> (Option<u64>, u32) {
    let mut rng = Rng::new(seed);
    let mut random = Random(Rng::new(seed ^ 0x55));
    let clock = |who: usize, real: u64| (real as f64 * rates[who]) as u64;
    let mut w = witness(clock(2, 0));
    let mut hosts = [client(11), client(12)];
    // In flight: (arrival real ms, to: 0/1 host or 2 witness, from, bytes).
    let mut flight: Vec<(u64, usize, usize, Vec<u8>)> = Vec::new();
    let mut cut = [false; 2];
    let mut changes = 0;
    let mut last_holder = None;
    for real in 0..200_000u64 {
        if real % 500 == 0 {
            for c in &mut cut {
                *c = rng.below(4) == 0;
            }
        }
        for (i, host) in hosts.iter_mut().enumerate() {
            if let Some(req) = host.poll(clock(i, real), &mut random)
                && !cut[i]
                && rng.below(10) > 0
            {
                flight.push((real + rng.below_u64(40), 2, i, req));
            }
        }
        let mut k = 0;
        while k < flight.len() {
            if flight[k].0 > real {
                k += 1;
                continue;
            }
            let (_, to, from, bytes) = flight.swap_remove(k);
            if to == 2 {
                if let Some(reply) = w.on_message(clock(2, real), &bytes)
                    && !cut[from]
                    && rng.below(10) > 0
                {
                    flight.push((real + rng.below_u64(40), from, 2, reply));
                }
            } else {
                hosts[to].on_reply(clock(to, real), &bytes);
            }
        }
        let held = [0, 1].map(|i| hosts[i].holds(clock(i, real)));
        if held[0] && held[1] {
            return (Some(real), changes);
        }
        let holder = held.iter().position(|&h| h);
        if holder.is_some() && holder != last_holder {
            changes += 1;
            last_holder = holder;
        }
    }
    (None, changes)
}

#[test]
fn no_two_hosts_ever_hold_the_lease_with_clocks_within_the_margin() {
    let mut changes = 0;
    for seed in 1..=12 {
        // Each clock within 4.5% of real time, in every direction.
        let rate = |k: u64| 1.0 + ((seed * 7 + k * 13) % 19) as f64 / 200.0 - 0.045;
        let rates = [rate(1), rate(2), rate(3)];
        let (both, c) = contend(seed, rates);
        assert_eq!(both, None, "seed {seed}, clock rates {rates:?}");
        changes += c;
    }
    assert!(
        changes > 24,
        "the lease changed hands only {changes} times: too gentle"
    );
}

#[test]
fn a_holder_whose_clock_runs_too_slow_would_overlap_and_the_simulation_sees_it() {
    // Host 0's clock at 70% of the witness's: its 2.7 s of lease last 3.86 real seconds.
    let overlaps = (1..=6)
        .filter(|&seed| contend(seed, [0.7, 1.0, 1.0]).0.is_some())
        .count();
    assert!(overlaps > 0, "the margin only holds for clocks within it");
}
