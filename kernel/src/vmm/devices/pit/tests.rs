// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host unit tests of the 8254 PIT model.

use super::*;
use crate::vmm::devices::pic::Pic;

/// Guest time of PIT clock `k` after time 0.
fn at(k: u64) -> u64 {
    time_of_clock(k)
}

/// Programs channel `ch` with a word count in `mode`.
fn program(p: &mut Pit, ch: u16, mode: u8, count: u16) {
    p.io_write(CONTROL, 1, u32::from((ch as u8) << 6 | 0x30 | mode << 1));
    p.io_write(CHANNEL0 + ch, 1, u32::from(count & 0xFF));
    p.io_write(CHANNEL0 + ch, 1, u32::from(count >> 8));
}

/// Latches and reads channel `ch`'s count (word access).
fn latched(p: &mut Pit, ch: u16) -> u16 {
    p.io_write(CONTROL, 1, u32::from(ch << 6));
    let lo = p.io_read(CHANNEL0 + ch, 1);
    let hi = p.io_read(CHANNEL0 + ch, 1);
    (hi << 8 | lo) as u16
}

#[test]
fn clock_conversion_is_exact() {
    assert_eq!(clock_at(1_000_000_000), 1_193_181);
    for k in [0, 1, 2, 1193, 65_536, 1 << 40] {
        assert_eq!(clock_at(at(k)), k);
        assert_eq!(clock_at(at(k).saturating_sub(1)), k.saturating_sub(1));
    }
    assert_eq!(clock_at(u64::MAX), 22_010_319_633_403_442, "no overflow");
}

#[test]
fn mode2_rate_generator_counts_and_ticks() {
    let mut p = Pit::new();
    program(&mut p, 0, 2, 1193);
    p.advance(at(100));
    assert_eq!(latched(&mut p, 0), 1093);
    p.advance(at(1192));
    assert_eq!(latched(&mut p, 0), 1);
    assert_eq!(p.pending_ticks(), 0);
    assert_eq!(p.next_deadline(), Some(at(1193)));
    p.advance(at(1193) - 1);
    assert_eq!(p.pending_ticks(), 0);
    p.advance(at(1193));
    assert_eq!(latched(&mut p, 0), 1193, "reloaded");
    assert_eq!(p.pending_ticks(), 1);
    assert_eq!(p.next_deadline(), Some(at(2386)));
}

#[test]
fn mode3_square_wave() {
    let mut p = Pit::new();
    program(&mut p, 0, 3, 1000);
    p.io_write(CONTROL, 1, 0xE2); // read-back status of channel 0
    assert_eq!(
        p.io_read(CHANNEL0, 1),
        0b1011_0110,
        "OUT high, count loaded"
    );
    p.advance(at(100));
    assert_eq!(latched(&mut p, 0), 800, "decrements by two");
    p.advance(at(499));
    assert_eq!(latched(&mut p, 0), 2);
    p.advance(at(500));
    assert_eq!(latched(&mut p, 0), 1000, "second half-period");
    p.io_write(CONTROL, 1, 0xE2);
    assert_eq!(
        p.io_read(CHANNEL0, 1) & 0x80,
        0,
        "OUT low in the second half"
    );
    p.advance(at(2999));
    assert_eq!(p.pending_ticks(), 2);
    p.advance(at(3000));
    assert_eq!(p.pending_ticks(), 3);
}

#[test]
fn byte_access_modes() {
    let mut p = Pit::new();
    p.io_write(CONTROL, 1, 0x14); // channel 0, LSB only, mode 2
    p.io_write(CHANNEL0, 1, 0x50);
    p.advance(at(0x10));
    assert_eq!(p.io_read(CHANNEL0, 1), 0x40);
    assert_eq!(p.io_read(CHANNEL0, 1), 0x40, "LSB only: no toggle");
    p.io_write(CONTROL, 1, 0x24); // MSB only
    p.io_write(CHANNEL0, 1, 0x12);
    assert_eq!(p.io_read(CHANNEL0, 1), 0x12);
    p.io_write(CONTROL, 1, 0x34); // LSB then MSB
    p.io_write(CHANNEL0, 1, 0x34);
    p.advance(at(0x20));
    assert_eq!(
        p.io_read(CHANNEL0, 1),
        0x00,
        "half a count: the element stays frozen"
    );
    p.io_write(CHANNEL0, 1, 0x12);
    assert_eq!(p.io_read(CHANNEL0, 1), 0x12, "MSB of the new count");
    p.advance(at(0x21));
    assert_eq!(p.io_read(CHANNEL0, 1), 0x33);
    assert_eq!(p.io_read(CHANNEL0, 1), 0x12);
    assert_eq!(
        p.io_read(CHANNEL0, 2),
        0x0033,
        "a word access reads channel 1 too"
    );
}

#[test]
fn latch_freezes_the_value_until_read() {
    let mut p = Pit::new();
    program(&mut p, 0, 2, 10_000);
    p.advance(at(100));
    p.io_write(CONTROL, 1, 0x00);
    p.advance(at(500));
    p.io_write(CONTROL, 1, 0x00); // ignored: a latch is held
    assert_eq!(p.io_read(CHANNEL0, 1), (9900 & 0xFF) as u32);
    p.advance(at(700));
    assert_eq!(p.io_read(CHANNEL0, 1), (9900 >> 8) as u32);
    assert_eq!(latched(&mut p, 0), 9300, "released after both bytes");
}

#[test]
fn read_back_status_and_count() {
    let mut p = Pit::new();
    p.io_write(CONTROL, 1, 0xB0); // channel 2, word, mode 0
    p.io_write(CONTROL, 1, 0xE8); // status of channel 2
    assert_eq!(
        p.io_read(0x42, 1),
        0b0111_0000,
        "OUT low, null count, word, mode 0"
    );
    p.io_write(PORT_B, 1, 1);
    p.io_write(0x42, 1, 100);
    p.io_write(0x42, 1, 0);
    p.advance(at(40));
    p.io_write(CONTROL, 1, 0xC8); // count and status
    assert_eq!(p.io_read(0x42, 1), 0b0011_0000, "OUT low, count loaded");
    assert_eq!(p.io_read(0x42, 1), 60);
    assert_eq!(p.io_read(0x42, 1), 0);
    p.advance(at(100));
    p.io_write(CONTROL, 1, 0xE8);
    assert_eq!(p.io_read(0x42, 1) >> 7, 1, "OUT high at terminal count");
    p.io_write(CONTROL, 1, 0x21); // BCD accepted, counts in binary
    p.io_write(CONTROL, 1, 0xE2);
    assert_eq!(p.io_read(CHANNEL0, 1) & 0x0F, 0x01);
}

/// The calibration sequence of Castor's own kernel (arch/x86_64/pit.rs) and Linux.
#[test]
fn channel2_gate_and_out2_through_port_b() {
    let mut p = Pit::new();
    let t0 = 5_000_000;
    p.advance(t0);
    p.io_write(PORT_B, 1, 0); // gate low, speaker off
    p.io_write(CONTROL, 1, 0xB0);
    p.io_write(0x42, 1, 11_932 & 0xFF);
    p.io_write(0x42, 1, 11_932 >> 8);
    p.advance(t0 + 50_000_000);
    assert_eq!(p.io_read(PORT_B, 1) & 0x20, 0, "gate low: no counting");
    assert_eq!(latched(&mut p, 2), 11_932);
    let g = clock_at(t0 + 50_000_000);
    p.io_write(PORT_B, 1, 1); // gate high: counting starts
    assert_eq!(p.io_read(PORT_B, 1) & 0x0F, 1);
    p.advance(at(g + 11_931));
    assert_eq!(p.io_read(PORT_B, 1) & 0x20, 0);
    assert_eq!(latched(&mut p, 2), 1);
    p.advance(at(g + 11_932));
    assert_eq!(
        p.io_read(PORT_B, 1) & 0x20,
        0x20,
        "OUT2 high at terminal count"
    );
    assert_eq!(p.pending_ticks(), 0, "channel 2 is not IRQ0");

    // The refresh toggle flips every 15.085 µs.
    p.advance(150_850_000);
    let a = p.io_read(PORT_B, 1) & 0x10;
    p.advance(150_850_000 + REFRESH_PERIOD_NS);
    assert_ne!(p.io_read(PORT_B, 1) & 0x10, a);
}

#[test]
fn gate_suspends_mode0_and_retriggers_mode1() {
    let mut p = Pit::new();
    p.io_write(PORT_B, 1, 1);
    program(&mut p, 2, 0, 1000);
    p.advance(at(300));
    p.io_write(PORT_B, 1, 0);
    p.advance(at(5000));
    assert_eq!(latched(&mut p, 2), 700, "suspended");
    p.io_write(PORT_B, 1, 1);
    p.advance(at(5699));
    assert_eq!(p.io_read(PORT_B, 1) & 0x20, 0);
    p.advance(at(5700));
    assert_eq!(p.io_read(PORT_B, 1) & 0x20, 0x20);

    program(&mut p, 2, 1, 100);
    assert_eq!(
        p.io_read(PORT_B, 1) & 0x20,
        0x20,
        "mode 1 waits with OUT high"
    );
    p.io_write(PORT_B, 1, 0);
    p.io_write(PORT_B, 1, 1); // trigger
    assert_eq!(p.io_read(PORT_B, 1) & 0x20, 0);
    p.advance(at(5750));
    assert_eq!(latched(&mut p, 2), 50);
}

#[test]
fn mode4_strobe_is_one_tick() {
    let mut p = Pit::new();
    program(&mut p, 0, 4, 50);
    assert_eq!(
        p.next_deadline(),
        Some(at(51)),
        "OUT rises after the strobe clock"
    );
    p.advance(at(50));
    assert_eq!(p.pending_ticks(), 0);
    p.advance(at(1_000_000));
    assert_eq!(p.pending_ticks(), 1);
    assert_eq!(p.next_deadline(), None);
}

#[test]
fn mode2_count_written_mid_period_applies_at_reload() {
    let mut p = Pit::new();
    program(&mut p, 0, 2, 1000);
    p.advance(at(250));
    p.io_write(CHANNEL0, 1, 500 & 0xFF);
    p.io_write(CHANNEL0, 1, 500 >> 8);
    assert_eq!(p.next_deadline(), Some(at(1000)));
    p.advance(at(1999));
    assert_eq!(p.pending_ticks(), 2, "ticks at 1000 and 1500");
    assert_eq!(p.next_deadline(), Some(at(2000)));
}

/// 1000 Hz (count 1193) for 10 simulated seconds, advanced at irregular times, delivered
/// through the PIC to a guest that acknowledges late: every tick arrives exactly once.
#[test]
fn every_tick_is_delivered_exactly_once() {
    let mut pit = Pit::new();
    let mut pic = Pic::new();
    pic.io_write(0x21, 1, 0xFA); // unmask IRQ0 (and the cascade)
    program(&mut pit, 0, 2, 1193);
    let end = 10_000_000_000;
    // Every edge in (0, end]: floor(clock(end) / 1193), 10001 on real hardware.
    let expected = clock_at(end) / 1193;
    assert_eq!(expected, 10_001);
    let (mut now, mut seen, mut x) = (0_u64, 0_u64, 88_172_645_463_325_252_u64);
    let (mut in_service, mut max_backlog) = (false, 0);
    while now < end {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        now = match x % 4 {
            0 => pit.next_deadline().unwrap(),     // exactly on a tick
            1 => pit.next_deadline().unwrap() - 1, // just before one
            _ => now + x % 3_000_000,              // anywhere up to 3 ms on
        }
        .min(end);
        pit.advance(now);
        max_backlog = max_backlog.max(pit.pending_ticks());
        // The guest handles 0-3 interrupts before the next exit; the next tick is already
        // latched in IRR while one is in service.
        for _ in 0..(x >> 8) % 4 {
            pit.deliver(&mut pic);
            if in_service {
                pic.io_write(0x20, 1, 0x20);
            }
            in_service = pic.pending_vector() == Some(0x08);
            if in_service {
                assert_eq!(pic.acknowledge(), Some(0x08));
                seen += 1;
            }
            pit.deliver(&mut pic);
        }
    }
    assert!(max_backlog > 3, "the guest fell behind at times");
    loop {
        if in_service {
            pic.io_write(0x20, 1, 0x20);
        }
        pit.deliver(&mut pic);
        in_service = pic.pending_vector() == Some(0x08);
        if !in_service {
            break;
        }
        assert_eq!(pic.acknowledge(), Some(0x08));
        seen += 1;
    }
    assert_eq!(seen, expected);
    assert_eq!(pit.delivered_ticks(), expected);
    assert_eq!(pit.dropped_ticks(), 0);
}

#[test]
fn backlog_is_bounded_to_one_second() {
    let mut p = Pit::new();
    program(&mut p, 0, 2, 1193);
    let ticks = clock_at(5_000_000_000) / 1193;
    p.advance(5_000_000_000);
    let cap = FREQUENCY_HZ / 1193;
    assert_eq!(cap, 1000);
    assert_eq!(p.pending_ticks(), cap);
    assert_eq!(p.dropped_ticks(), ticks - cap);
    assert!(p.take_tick());
    p.advance(5_000_000_000); // same time: nothing new
    assert_eq!(p.pending_ticks(), cap - 1);
    p.advance(1); // time never goes back
    assert_eq!(p.now(), 5_000_000_000);
}

#[test]
fn random_port_traffic_never_panics() {
    let mut x = 0x2545_F491_4F6C_DD1D_u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let ports = [0x40, 0x41, 0x42, 0x43, 0x43, 0x61, 0x44, 0xFFFF];
    for _ in 0..3 {
        let mut p = Pit::new();
        let mut pic = Pic::new();
        let mut now = 0_u64;
        for _ in 0..30_000 {
            let r = next();
            let port = ports[(r % 8) as usize];
            let width = [1, 2, 4, 0, 3, 255][(r >> 8) as usize % 6];
            match (r >> 16) % 5 {
                0 => _ = p.io_read(port, width),
                1 | 2 => p.io_write(port, width, (r >> 32) as u32),
                3 => {
                    now = match r >> 60 {
                        0 => u64::MAX - (r >> 40),
                        1 => r >> 50,
                        _ => now.saturating_add(r >> 44),
                    };
                    p.advance(now);
                    if let Some(t) = p.next_deadline() {
                        assert!(t > p.now() || p.now() == u64::MAX);
                    }
                }
                _ => {
                    p.deliver(&mut pic);
                    _ = pic.acknowledge();
                }
            }
        }
    }
}
