// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host unit tests of the e1000 descriptor rings, against a simulated device.

use super::*;

#[test]
fn register_values_match_the_manual() {
    assert_eq!(RCTL_VALUE, 0x0400_8002);
    assert_eq!(TCTL_VALUE, 0x0004_00FA);
    assert_eq!(TIPG_VALUE, 0x0060_200A);
}

#[test]
fn ring_indices_wrap() {
    assert_eq!(next(0, 256), 1);
    assert_eq!(next(254, 256), 255);
    assert_eq!(next(255, 256), 0);
    assert_eq!(in_flight(0, 0, 256), 0);
    assert_eq!(in_flight(10, 20, 256), 10);
    assert_eq!(in_flight(250, 4, 256), 10);
    assert_eq!(in_flight(5, 4, 256), 255);
}

#[test]
fn transmit_ring_keeps_one_slot_free() {
    let n = 8;
    let (clean, mut tail) = (3, 3);
    let mut queued = 0;
    while tx_has_room(clean, tail, n) {
        tail = next(tail, n);
        queued += 1;
    }
    assert_eq!(queued, n - 1);
    assert_eq!(
        next(tail, n),
        clean,
        "tail stops right behind the oldest in flight"
    );
    assert!(
        tx_has_room(next(clean, n), tail, n),
        "reclaiming one frees one"
    );
}

#[test]
fn short_frames_are_padded_to_60_bytes() {
    assert_eq!(padded_len(14), 60);
    assert_eq!(padded_len(59), 60);
    assert_eq!(padded_len(60), 60);
    assert_eq!(padded_len(1514), 1514);
}

#[test]
fn transmit_descriptor_layout() {
    let [addr, upper] = tx_desc(0x1234_5000, 1514, TX_CMD_EOP | TX_CMD_IFCS | TX_CMD_RS);
    assert_eq!(addr, 0x1234_5000);
    let bytes = upper.to_le_bytes();
    assert_eq!(u16::from_le_bytes([bytes[0], bytes[1]]), 1514);
    assert_eq!(bytes[2], 0, "CSO");
    assert_eq!(bytes[3], 0b1011, "CMD = EOP | IFCS | RS");
    assert_eq!(bytes[DESC_STATUS - 8], 0, "status starts clear");
    assert_eq!(rx_desc(0x8000), [0x8000, 0]);
}

#[test]
fn receive_descriptor_decoding() {
    // length 0x05EA, checksum 0xBEEF, status DD|EOP, errors 0, special 0x1234
    let upper = 0x05EA | 0xBEEF << 16 | 0x03 << 32 | 0x1234 << 48;
    let wb = rx_decode(upper);
    assert_eq!(
        wb,
        RxWriteBack {
            length: 1514,
            status: RX_STA_DD | RX_STA_EOP,
            errors: 0
        }
    );
    assert_eq!(rx_decode(0x81 << 40).errors, 0x81);
}

fn wb(length: u16, status: u8, errors: u8) -> RxWriteBack {
    RxWriteBack {
        length,
        status,
        errors,
    }
}

#[test]
fn good_frames_are_delivered() {
    let mut d = false;
    let done = RX_STA_DD | RX_STA_EOP;
    assert_eq!(
        rx_verdict(wb(60, done, 0), 14, 1514, &mut d),
        RxVerdict::Deliver(60)
    );
    assert_eq!(
        rx_verdict(wb(14, done, 0), 14, 1514, &mut d),
        RxVerdict::Deliver(14)
    );
    assert_eq!(
        rx_verdict(wb(1514, done, 0), 14, 1514, &mut d),
        RxVerdict::Deliver(1514)
    );
    assert!(!d);
}

#[test]
fn bad_frames_are_dropped_and_counted_once() {
    let done = RX_STA_DD | RX_STA_EOP;
    let mut d = false;
    let dropped = RxVerdict::Drop { count: true };
    assert_eq!(
        rx_verdict(wb(60, done, 0x01), 14, 1514, &mut d),
        dropped,
        "CRC error"
    );
    assert_eq!(
        rx_verdict(wb(60, done, 0x80), 14, 1514, &mut d),
        dropped,
        "RX data error"
    );
    assert_eq!(
        rx_verdict(wb(13, done, 0), 14, 1514, &mut d),
        dropped,
        "runt"
    );
    assert_eq!(
        rx_verdict(wb(0, done, 0), 14, 1514, &mut d),
        dropped,
        "empty"
    );
    assert_eq!(
        rx_verdict(wb(1515, done, 0), 14, 1514, &mut d),
        dropped,
        "too long"
    );
    assert_eq!(
        rx_verdict(wb(100, done, 0), 14, 99, &mut d),
        dropped,
        "caller's buffer"
    );
    assert_eq!(
        rx_verdict(wb(u16::MAX, done, 0), 14, usize::MAX, &mut d),
        dropped,
        "buffer"
    );
    assert!(!d);
}

#[test]
fn fragmented_frames_are_dropped_through_their_eop() {
    let mut d = false;
    assert_eq!(
        rx_verdict(wb(2048, RX_STA_DD, 0), 14, 1514, &mut d),
        RxVerdict::Drop { count: true }
    );
    assert!(d);
    assert_eq!(
        rx_verdict(wb(2048, RX_STA_DD, 0), 14, 1514, &mut d),
        RxVerdict::Drop { count: false }
    );
    assert_eq!(
        rx_verdict(wb(100, RX_STA_DD | RX_STA_EOP, 0), 14, 1514, &mut d),
        RxVerdict::Drop { count: false },
        "the tail of the fragmented frame"
    );
    assert!(!d);
    assert_eq!(
        rx_verdict(wb(100, RX_STA_DD | RX_STA_EOP, 0), 14, 1514, &mut d),
        RxVerdict::Deliver(100),
        "the next frame is fine"
    );
}

#[test]
fn mac_from_registers_and_eeprom() {
    // QEMU's e1000 with mac=52:54:00:12:34:56 after reset.
    let mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    assert_eq!(
        mac_from_receive_address(0x1200_5452, 0x8000_5634),
        Some(mac)
    );
    assert_eq!(receive_address(&mac), (0x1200_5452, 0x8000_5634));
    assert_eq!(
        mac_from_receive_address(0x1200_5452, 0x0000_5634),
        None,
        "AV clear"
    );
    assert_eq!(mac_from_receive_address(0, RAH_AV), None, "zero");
    assert_eq!(
        mac_from_receive_address(0xFFFF_FFFF, 0x8000_FFFF),
        None,
        "broadcast"
    );
    assert_eq!(
        mac_from_receive_address(0x0000_0001, RAH_AV | 1),
        None,
        "multicast"
    );
    assert_eq!(mac_from_eeprom([0x5452, 0x1200, 0x5634]), mac);
}

#[test]
fn eeprom_read_register() {
    assert_eq!(eerd_start(0), 0x001);
    assert_eq!(eerd_start(2), 0x201);
    assert_eq!(eerd_done(0x5452_0201), None);
    assert_eq!(eerd_done(0x5452_0211), Some(0x5452));
}
