// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host unit tests of the CMOS RTC model.

use super::*;
use crate::vmm::devices::pic::Pic;

/// 2026-11-22 00:14:37 UTC, a Sunday.
const T: u64 = 1_795_306_477;

fn read(r: &mut Rtc, index: u8) -> u8 {
    r.io_write(INDEX, 1, u32::from(index));
    r.io_read(DATA, 1) as u8
}

fn write(r: &mut Rtc, index: u8, v: u8) {
    r.io_write(INDEX, 1, u32::from(index));
    r.io_write(DATA, 1, u32::from(v));
}

fn clock(r: &mut Rtc) -> [u8; 8] {
    [SECONDS, MINUTES, HOURS, WEEKDAY, DAY, MONTH, YEAR, CENTURY].map(|i| read(r, i))
}

#[test]
fn calendar_matches_known_dates() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    for d in [-800_000, -1, 0, 59, 11_016, 20_779, 2_932_896] {
        let (y, m, day) = civil_from_days(d);
        assert_eq!(days_from_civil(y, m, day), d);
    }
    assert_eq!(civil_from_days(20_779), (2026, 11, 22));
}

#[test]
fn known_time_in_bcd_and_binary() {
    let mut r = Rtc::new(0, 0);
    r.set_time(T);
    assert_eq!(
        clock(&mut r),
        [0x37, 0x14, 0x00, 0x01, 0x22, 0x11, 0x26, 0x20]
    );
    write(&mut r, REG_B, B_24H | B_BINARY);
    assert_eq!(clock(&mut r), [37, 14, 0, 1, 22, 11, 26, 20]);
    assert_eq!(read(&mut r, REG_D), 0x80, "VRT");
    assert_eq!(read(&mut r, REG_A), 0x26, "UIP reads 0");
}

#[test]
fn twelve_hour_mode() {
    let mut r = Rtc::new(0, 0);
    write(&mut r, REG_B, 0); // BCD, 12-hour
    r.set_time(T);
    assert_eq!(read(&mut r, HOURS), 0x12, "00:14 is 12 AM");
    r.set_time(T + 13 * 3600);
    assert_eq!(read(&mut r, HOURS), 0x81, "13:14 is 1 PM");
    r.set_time(T + 12 * 3600);
    assert_eq!(read(&mut r, HOURS), 0x92, "noon");
    write(&mut r, REG_B, B_BINARY);
    assert_eq!(read(&mut r, HOURS), 0x8C);
}

#[test]
fn guest_sets_the_clock() {
    let mut r = Rtc::new(0, 0);
    r.set_time(T);
    write(&mut r, REG_B, B_SET | B_24H);
    write(&mut r, HOURS, 0x05);
    write(&mut r, YEAR, 0x27);
    r.set_time(T + 100);
    assert_eq!(read(&mut r, SECONDS), 0x37, "SET stops updates");
    write(&mut r, REG_B, B_24H);
    assert_eq!(clock(&mut r)[..3], [0x37, 0x14, 0x05]);
    assert_eq!(read(&mut r, YEAR), 0x27);
    r.set_time(T + 160);
    assert_eq!(read(&mut r, MINUTES), 0x15, "runs on from the guest's time");

    write(&mut r, MINUTES, 0x59); // without SET
    assert_eq!(read(&mut r, MINUTES), 0x59);
    assert_eq!(read(&mut r, HOURS), 0x05);
    write(&mut r, REG_B, B_SET | B_24H);
    for i in [SECONDS, MINUTES, HOURS, DAY, MONTH, YEAR, CENTURY] {
        write(&mut r, i, 0xFF); // garbage is clamped, never a panic
    }
    write(&mut r, REG_B, B_24H);
    let _ = clock(&mut r);
}

#[test]
fn update_and_alarm_interrupts_and_register_c() {
    let mut r = Rtc::new(0, 0);
    let mut pic = Pic::new();
    pic.io_write(0xA1, 1, 0xFE); // unmask IRQ8
    r.set_time(T);
    assert_eq!(read(&mut r, REG_C), C_UF, "flag set, interrupt not enabled");
    assert_eq!(read(&mut r, REG_C), 0, "reading C clears it");
    write(&mut r, REG_B, B_24H | B_UIE | 0x20);
    write(&mut r, SECONDS_ALARM, 0x38);
    write(&mut r, MINUTES_ALARM, 0xC0);
    write(&mut r, HOURS_ALARM, 0xFF);
    r.set_time(T + 1);
    assert!(r.irq_level());
    r.deliver(&mut pic);
    assert_eq!(pic.pending_vector(), Some(0x70));
    assert_eq!(read(&mut r, REG_C), C_IRQF | C_AF | C_UF);
    assert!(!r.irq_level());
    r.deliver(&mut pic);
    assert_eq!(pic.acknowledge(), Some(0x70), "the edge stays latched");
    r.set_time(T + 1);
    assert_eq!(read(&mut r, REG_C), 0, "no new second, no update");
}

#[test]
fn cmos_memory_sizes() {
    let mut r = Rtc::new(256 << 20, 0);
    let mut word = |lo| u16::from_le_bytes([read(&mut r, lo), read(&mut r, lo + 1)]);
    assert_eq!(word(0x15), 640, "base memory, KiB");
    assert_eq!(word(0x17), 0xFFFF, "extended memory saturates");
    assert_eq!(word(0x30), 0xFFFF);
    assert_eq!(word(0x34), 3840, "64 KiB units above 16 MiB");
    let mut r = Rtc::new(0xC000_0000, 1 << 32);
    let above = [0x5B, 0x5C, 0x5D].map(|i| read(&mut r, i));
    assert_eq!(above, [0, 0, 1], "4 GiB above 4 GiB: 0x10000 units");
    let mut r = Rtc::new(32 << 20, 0);
    assert_eq!(
        u16::from_le_bytes([read(&mut r, 0x17), read(&mut r, 0x18)]),
        31_744
    );
    let sum: u16 = (0x10..=0x2D).map(|i| u16::from(read(&mut r, i))).sum();
    assert_eq!(
        u16::from_be_bytes([read(&mut r, 0x2E), read(&mut r, 0x2F)]),
        sum
    );
}

#[test]
fn index_port_masks_nmi_bit_and_ram_is_kept() {
    let mut r = Rtc::new(0, 0);
    write(&mut r, 0x8F, 0x5A); // NMI disable + shutdown status byte
    assert!(r.nmi_masked());
    assert_eq!(read(&mut r, 0x0F), 0x5A);
    assert!(!r.nmi_masked(), "each index write sets the mask anew");
    write(&mut r, 0xFF, 0xA5);
    assert_eq!(read(&mut r, 0x7F), 0xA5, "index 0xFF is 0x7F");
    assert_eq!(r.io_read(INDEX, 1), 0xFF, "the index port is write-only");
    write(&mut r, REG_D, 0);
    assert_eq!(read(&mut r, REG_D), 0x80, "D is read-only");
    r.io_write(INDEX, 2, 0x42_0F); // index 0x0F, then 0x42 to the data port
    assert_eq!(read(&mut r, 0x0F), 0x42);
}

#[test]
fn random_port_traffic_never_panics() {
    let mut x = 0x5851_F42D_4C95_7F2D_u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..3 {
        let mut r = Rtc::new(next(), next());
        for _ in 0..30_000 {
            let v = next();
            let port = [INDEX, DATA, DATA, 0x72, 0xFFFF][(v % 5) as usize];
            let width = [1, 2, 4, 0, 3, 255][(v >> 8) as usize % 6];
            match (v >> 16) % 4 {
                0 => _ = r.io_read(port, width),
                1 | 2 => r.io_write(port, width, (v >> 32) as u32),
                _ => r.set_time(if v >> 63 == 0 { v >> 20 } else { v }),
            }
        }
    }
}
