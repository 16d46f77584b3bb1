// SPDX-License-Identifier: MIT OR Apache-2.0
//! The machine's own real-time clock (MC146818-compatible CMOS RTC at ports 0x70/0x71), read
//! once at boot for the wall-clock time guests see. Registers: Motorola MC146818A datasheet;
//! century at 0x32 as the ACPI FADT usually names it.

use super::instr::{inb, outb};
use crate::calendar::unix_time;

fn read(index: u8) -> u8 {
    // SAFETY: ports 0x70/0x71 are the CMOS index/data pair on PC-compatible machines; bit 7 of
    // the index (NMI disable) is left set while reading, as firmware does.
    unsafe {
        outb(0x70, 0x80 | index);
        inb(0x71)
    }
}

fn registers() -> [u8; 8] {
    [0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32, 0x0B].map(read)
}

/// Unix time from the RTC (read twice until two reads agree and no update is in progress),
/// or `None` if the values make no sense (no RTC, or a broken one).
pub fn read_unix_time() -> Option<u64> {
    let mut last = None;
    for _ in 0..10 {
        // Wait out an update in progress (register A bit 7), bounded.
        for _ in 0..100_000 {
            if read(0x0A) & 0x80 == 0 {
                break;
            }
            core::hint::spin_loop();
        }
        let now = registers();
        if last == Some(now) {
            return decode(now);
        }
        last = Some(now);
    }
    None
}

fn decode([sec, min, hour, day, month, year, century, status_b]: [u8; 8]) -> Option<u64> {
    let binary = status_b & 0x04 != 0;
    let h24 = status_b & 0x02 != 0;
    let num = |v: u8| -> i64 {
        if binary {
            i64::from(v)
        } else {
            i64::from((v >> 4) * 10 + (v & 0x0F))
        }
    };
    let pm = !h24 && hour & 0x80 != 0;
    let mut hour = num(hour & 0x7F);
    if !h24 {
        hour %= 12;
        if pm {
            hour += 12;
        }
    }
    let century = match num(century) {
        c @ 19..=30 => c,
        _ => 20,
    };
    let (year, month, day) = (century * 100 + num(year), num(month), num(day));
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && num(min) < 60
        && num(sec) < 61;
    if !valid {
        return None;
    }
    u64::try_from(unix_time(year, month, day, hour, num(min), num(sec))).ok()
}
