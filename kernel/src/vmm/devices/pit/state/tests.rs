// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host unit tests of the PIT's saved state.

use super::super::{CHANNEL0, CONTROL, PORT_B, time_of_clock};
use super::*;
use crate::testutil::round_trip;

fn program(p: &mut Pit, ch: u16, mode: u8, count: u16) {
    p.io_write(CONTROL, 1, u32::from((ch as u8) << 6 | 0x30 | mode << 1));
    p.io_write(CHANNEL0 + ch, 1, u32::from(count & 0xFF));
    p.io_write(CHANNEL0 + ch, 1, u32::from(count >> 8));
}

/// Reads every observable of both PITs at the same times and compares them.
fn same_future(mut a: Pit, mut b: Pit, from: u64) {
    for k in 0..400_u64 {
        let t = from + time_of_clock(k * 97);
        a.advance(t);
        b.advance(t);
        for port in [0x40, 0x41, 0x42, 0x61] {
            assert_eq!(
                a.io_read(port, 1),
                b.io_read(port, 1),
                "port {port:#x} at {t}"
            );
        }
        if k % 50 == 0 {
            a.io_write(CONTROL, 1, 0xCE); // read-back: count and status of all three
            b.io_write(CONTROL, 1, 0xCE);
        }
        assert_eq!(a.next_deadline(), b.next_deadline());
        assert_eq!(a.take_tick(), b.take_tick());
    }
    assert_eq!(a, b);
}

/// Every mode on every channel, saved with a half-read latch, a latched status, a
/// half-written count and (mode 2) a reload pending mid-period.
#[test]
fn every_mode_with_latches_pending_round_trips() {
    for mode in 0..6_u8 {
        let mut p = Pit::new();
        p.io_write(PORT_B, 1, 1); // channel 2 gate high
        program(&mut p, 0, mode, 1000 + u16::from(mode));
        program(&mut p, 1, mode, 300);
        program(&mut p, 2, mode, 5000);
        p.io_write(PORT_B, 1, 0); // a trigger for modes 1 and 5 on channel 2
        p.io_write(PORT_B, 1, 1);
        p.advance(time_of_clock(2_345));
        p.io_write(CONTROL, 1, 0x00); // latch channel 0 ...
        _ = p.io_read(CHANNEL0, 1); // ... and read half of it
        p.io_write(CONTROL, 1, 0xE4); // status of channel 1
        p.io_write(CHANNEL0 + 2, 1, 0x10); // first byte of a new channel 2 count
        if mode == 2 {
            p.io_write(CHANNEL0 + 1, 1, 0x20);
            p.io_write(CHANNEL0 + 1, 1, 0x00); // applies at the next reload
        }
        let q = round_trip(&p);
        same_future(p, q, time_of_clock(2_345));
    }
}

#[test]
fn backlog_and_counters_round_trip() {
    let mut p = Pit::new();
    program(&mut p, 0, 2, 1193);
    p.advance(3_000_000_000);
    assert_eq!(p.pending_ticks(), 1000);
    assert!(p.dropped_ticks() > 0);
    assert!(p.take_tick());
    let q = round_trip(&p);
    assert_eq!(q.pending_ticks(), 999);
    assert_eq!(q.delivered_ticks(), 1);
    assert_eq!(q.dropped_ticks(), p.dropped_ticks());
    assert_eq!(q.now(), 3_000_000_000);
}

#[test]
fn impossible_states_are_refused() {
    let mut p = Pit::new();
    program(&mut p, 0, 2, 1193);
    p.advance(1_000_000);
    let good = p.state_bytes();
    // Offsets: now 0, port B 8, pending 9, dropped 17, delivered 25, channel 0 from 33:
    // mode 33, access 34, BCD 35, reload 36, armed 40, null 41, running 42, start 43,
    // start count 51, fired 55, next 56.
    let field = |at: usize, v: &[u8]| {
        let mut b = good.clone();
        b[at..at + v.len()].copy_from_slice(v);
        match Pit::from_state_bytes(&b) {
            Err(StateError::Invalid { field, .. }) => field,
            other => panic!("{at}: {other:?}"),
        }
    };
    assert_eq!(field(8, &[0x10]), "PIT port B");
    assert_eq!(field(9, &2_000_000_u64.to_le_bytes()), "PIT tick backlog");
    assert_eq!(field(33, &[8]), "PIT mode");
    assert_eq!(field(34, &[0]), "PIT access");
    assert_eq!(field(36, &0_u32.to_le_bytes()), "PIT count register");
    assert_eq!(field(36, &0x1_0001_u32.to_le_bytes()), "PIT count register");
    assert_eq!(field(40, &[0]), "PIT running without a count");
    assert_eq!(field(42, &[0]), "PIT running against its gate");
    assert_eq!(
        field(43, &u64::MAX.to_le_bytes()),
        "PIT segment start after now"
    );
    assert_eq!(field(55, &[1]), "PIT fired");
    // A count written mid-period, reloaded at clock 1000 (next: tag 56, clock 57, count 65).
    program(&mut p, 0, 2, 1000);
    p.advance(time_of_clock(clock_at(1_000_000) + 250));
    p.io_write(CHANNEL0, 1, 0xF4);
    p.io_write(CHANNEL0, 1, 0x01);
    let good = p.state_bytes();
    assert_eq!(good[56], 1);
    let field = |at: usize, v: &[u8]| {
        let mut b = good.clone();
        b[at..at + v.len()].copy_from_slice(v);
        match Pit::from_state_bytes(&b) {
            Err(StateError::Invalid { field, .. }) => field,
            other => panic!("{at}: {other:?}"),
        }
    };
    assert_eq!(
        field(57, &0_u64.to_le_bytes()),
        "PIT pending reload not after now"
    );
    assert_eq!(field(65, &0_u32.to_le_bytes()), "PIT next count");
    assert_eq!(field(42, &[0]), "PIT pending reload while stopped");
    // Channel 2's gate is port B bit 0: a running mode 2 channel 2 needs it high.
    let mut p = Pit::new();
    p.io_write(PORT_B, 1, 1);
    program(&mut p, 2, 2, 100);
    let mut b = p.state_bytes();
    b[8] = 0;
    assert_eq!(
        Pit::from_state_bytes(&b),
        Err(StateError::Invalid {
            field: "PIT running against its gate",
            value: 2
        })
    );
}

/// Random port traffic and time steps; after every step the PIT restores to an equal one.
#[test]
fn every_reachable_state_round_trips_exactly() {
    let mut x = 0x9E6C_63D0_676A_9A99_u64;
    let ports = [0x40, 0x41, 0x42, 0x43, 0x43, 0x61];
    for _ in 0..2 {
        let mut p = Pit::new();
        let mut now = 0_u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let port = ports[(x % 6) as usize];
            match (x >> 8) % 5 {
                0 => _ = p.io_read(port, 1),
                1 | 2 => p.io_write(port, 1, (x >> 32) as u32 & 0xFF),
                3 => {
                    now += x >> 44;
                    p.advance(now);
                }
                _ => _ = p.take_tick(),
            }
            round_trip(&p);
        }
    }
}
