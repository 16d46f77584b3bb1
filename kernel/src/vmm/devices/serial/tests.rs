// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host unit tests of the 16550A model: output, the receiver, the interrupt priorities, the
//! THRE rules, OUT2 gating, loopback, hostile accesses and state round trips.

use alloc::vec::Vec;

use super::*;
use crate::testutil::{Rng, round_trip};

const RBR: u16 = COM1;
const IER: u16 = COM1 + 1;
const IIR: u16 = COM1 + 2;
const LCR: u16 = COM1 + 3;
const MCR: u16 = COM1 + 4;
const LSR: u16 = COM1 + 5;
const MSR: u16 = COM1 + 6;

/// IIR values with FIFOs on.
const NONE: u32 = 0xC1;
const LINE: u32 = 0xC6;
const DATA: u32 = 0xC4;
const TIMEOUT: u32 = 0xCC;
const THRE: u32 = 0xC2;
const MODEM: u32 = 0xC0;

fn out(s: &mut Serial, text: &[u8]) {
    for &b in text {
        s.write(COM1, 1, u32::from(b));
    }
}

/// A UART with FIFOs on at trigger level bits `trigger` (FCR 7:6) and interrupts `ier`.
fn uart(trigger: u8, ier: u8) -> Serial {
    let mut s = Serial::default();
    s.write(IIR, 1, u32::from(trigger << 6 | 1));
    s.write(IER, 1, u32::from(ier));
    s
}

fn drain(s: &mut Serial) -> Vec<u8> {
    let mut got = Vec::new();
    while s.read(LSR, 1) & 1 != 0 {
        got.push(s.read(RBR, 1) as u8);
    }
    got
}

#[test]
fn lines_are_collected() {
    let mut s = Serial::default();
    out(&mut s, b"hello\r\nwor");
    assert_eq!(s.take_output(false), ["hello"]);
    out(&mut s, b"ld");
    assert_eq!(s.take_output(true), ["world"]);
    assert_eq!(s.bytes_out, 12);
}

#[test]
fn long_lines_are_split() {
    let mut s = Serial::default();
    out(&mut s, &[b'a'; 300]);
    assert_eq!(s.take_output(false).len(), 1);
    assert_eq!(s.take_output(true)[0].len(), 44);
}

#[test]
fn reset_state_divisor_latch_scratch_and_status() {
    let mut s = Serial::default();
    assert_eq!(s.read(IIR, 1), 0x01, "16450 mode, nothing pending");
    assert_eq!(s.read(LSR, 1), 0x60, "transmitter empty, no data");
    assert_eq!(
        s.read(MSR, 1),
        0xB0,
        "a terminal is attached: DCD, DSR, CTS"
    );
    s.write(LCR, 1, 0x83); // DLAB, 8N1
    s.write(COM1, 1, 0x01);
    s.write(IER, 1, 0x00);
    assert_eq!(s.read(COM1, 1), 1, "divisor low");
    assert_eq!(s.read(IER, 1), 0, "divisor high");
    s.write(LCR, 1, 0x03);
    assert_eq!(s.bytes_out, 0, "divisor writes are not output");
    s.write(COM1 + 7, 1, 0x42);
    assert_eq!(s.read(COM1 + 7, 1), 0x42, "scratch (UART presence checks)");
    s.write(IER, 1, 0xFF);
    assert_eq!(s.read(IER, 1), 0x0F, "IER bits 7:4 are 0");
    s.write(MCR, 1, 0xFF);
    assert_eq!(s.read(MCR, 1), 0x1F, "MCR bits 7:5 are 0");
}

#[test]
fn input_is_read_in_order_with_data_ready() {
    let mut s = uart(0, 0);
    assert_eq!(s.input_room(), 16);
    assert_eq!(s.push_input(b"ls -l\r"), 6);
    assert_eq!(s.input_room(), 10);
    assert_eq!(s.read(LSR, 1), 0x61);
    assert_eq!(drain(&mut s), b"ls -l\r");
    assert_eq!(s.read(LSR, 1), 0x60);
    assert_eq!(s.read(RBR, 1), 0, "an empty receiver reads 0");
}

#[test]
fn push_input_takes_what_fits_and_never_overruns() {
    let mut s = uart(3, 0x0F);
    let text: Vec<u8> = (b'a'..=b'z').collect();
    assert_eq!(s.push_input(&text), 16);
    assert_eq!(s.push_input(&text[16..]), 0);
    assert_eq!(s.read(LSR, 1) & 0x02, 0, "no overrun");
    assert_eq!(s.read(RBR, 1), u32::from(b'a'));
    assert_eq!(s.push_input(&text[16..]), 1);
    assert_eq!(drain(&mut s)[14..], *b"pq");
    // 16450 mode: the RBR holds one byte.
    let mut s = Serial::default();
    assert_eq!(s.input_room(), 1);
    assert_eq!(s.push_input(b"xy"), 1);
    assert_eq!(drain(&mut s), b"x");
}

#[test]
fn iir_reports_sources_in_the_datasheets_priority_order() {
    let mut s = uart(2, 0x0F); // trigger 8, every interrupt enabled: THRE latched
    s.write(MCR, 1, 0x10); // loopback
    out(&mut s, &[b'x'; 17]); // 16 stored, the 17th overruns
    s.write(MCR, 1, 0x00); // leaving loopback changes the modem inputs: MSR deltas
    assert_eq!(s.read(IIR, 1), LINE, "line status first");
    assert_eq!(s.read(IIR, 1), LINE, "an IIR read does not clear it");
    assert_eq!(s.read(LSR, 1), 0x63, "OE, read and cleared");
    assert_eq!(s.read(IIR, 1), DATA, "16 bytes at trigger 8");
    for _ in 0..9 {
        s.read(RBR, 1);
    }
    assert_eq!(s.read(IIR, 1), TIMEOUT, "7 bytes below the trigger");
    drain(&mut s);
    assert_eq!(s.read(IIR, 1), THRE, "THRE below the receiver");
    assert_eq!(
        s.read(IIR, 1),
        MODEM,
        "the read that reported THRE cleared it"
    );
    assert_eq!(s.read(MSR, 1) & 0x0F, 0x0B, "DCTS, DDSR, DDCD");
    assert_eq!(s.read(IIR, 1), NONE);
}

#[test]
fn each_source_needs_its_enable_bit() {
    let mut s = uart(0, 0);
    s.write(MCR, 1, 0x10);
    out(&mut s, &[b'x'; 17]);
    s.write(MCR, 1, 0x00);
    assert_eq!(s.read(IIR, 1), NONE, "nothing enabled");
    for (ier, iir) in [(4, LINE), (1, DATA), (8, MODEM)] {
        s.write(IER, 1, ier);
        assert_eq!(s.read(IIR, 1), iir, "IER {ier:#x}");
        s.write(IER, 1, 0);
    }
    s.write(IER, 1, 2);
    assert_eq!(s.read(IIR, 1), THRE);
}

#[test]
fn fifo_trigger_levels_and_the_character_timeout() {
    for (bits, level) in [(0u8, 1usize), (1, 4), (2, 8), (3, 14)] {
        let mut s = uart(bits, 1);
        assert_eq!(s.push_input(&[b'a'; 13][..level - 1]), level - 1);
        let below = if level == 1 { NONE } else { TIMEOUT };
        assert_eq!(
            s.read(IIR, 1),
            below,
            "level {level}: {} byte(s)",
            level - 1
        );
        s.push_input(b"b");
        assert_eq!(s.read(IIR, 1), DATA, "level {level} reached");
        s.push_input(b"c");
        assert_eq!(s.read(IIR, 1), DATA, "level {level} passed");
        s.read(RBR, 1);
        s.read(RBR, 1);
        assert_eq!(s.read(IIR, 1), below, "level {level}: read back below");
    }
}

#[test]
fn fcr_resets_the_receiver_and_programs_only_with_fifos_on() {
    let mut s = uart(1, 1);
    s.push_input(b"abc");
    s.write(IIR, 1, 0x43); // FIFOs on, RX reset, trigger 4
    assert_eq!(s.read(LSR, 1) & 1, 0, "RX reset empties the FIFO");
    s.push_input(b"abc");
    s.write(IIR, 1, 0xC4 | 1); // TX reset only, trigger 14
    assert_eq!(drain(&mut s), b"abc", "TX reset leaves the receiver");
    s.push_input(b"abc");
    s.write(IIR, 1, 0x00); // FIFOs off
    assert_eq!(
        s.read(IIR, 1),
        0x01,
        "16450 mode: bits 7:6 clear; cleared FIFO"
    );
    s.push_input(b"a");
    assert_eq!(s.read(IIR, 1), 0x04, "the RBR is full");
    s.write(IIR, 1, 0x80); // bit 0 off: the trigger is not programmed
    assert_eq!(s.read(IIR, 1), 0x04, "FIFOs stay off and the RBR stays");
    assert_eq!(s.rx.fcr(), 0xC0, "trigger 14 kept from before");
    s.write(IIR, 1, 0x41);
    assert_eq!(s.read(IIR, 1), NONE, "enabling the FIFOs clears them");
    s.push_input(b"abc");
    assert_eq!(s.read(IIR, 1), TIMEOUT, "trigger 4 programmed with bit 0");
    s.push_input(b"d");
    assert_eq!(s.read(IIR, 1), DATA);
}

#[test]
fn overrun_drops_the_new_byte_in_fifo_mode_and_the_old_one_in_16450_mode() {
    let mut s = uart(3, 4);
    s.write(MCR, 1, 0x10);
    out(&mut s, b"0123456789abcdefX");
    assert_eq!(s.read(IIR, 1), LINE);
    assert_eq!(s.read(LSR, 1), 0x63);
    assert_eq!(s.read(LSR, 1), 0x61, "OE clears on the LSR read");
    assert_eq!(drain(&mut s), b"0123456789abcdef");
    let mut s = Serial::default();
    s.write(MCR, 1, 0x10);
    out(&mut s, b"ab");
    assert_eq!(s.read(LSR, 1), 0x63);
    assert_eq!(drain(&mut s), b"b");
}

#[test]
fn thre_is_raised_by_enabling_and_by_writes_and_cleared_by_the_iir_read_reporting_it() {
    let mut s = uart(0, 0);
    assert_eq!(s.read(IIR, 1), NONE);
    s.write(IER, 1, 2);
    assert_eq!(s.read(IIR, 1), THRE, "ETBEI set with the THR empty");
    assert_eq!(s.read(IIR, 1), NONE, "cleared by the read that reported it");
    s.write(IER, 1, 2);
    assert_eq!(s.read(IIR, 1), NONE, "ETBEI already set: no new edge");
    out(&mut s, b"x");
    assert_eq!(
        s.read(IIR, 1),
        THRE,
        "the written byte left: THR empty again"
    );
    s.write(IER, 1, 0);
    s.write(IER, 1, 2);
    assert_eq!(s.read(IIR, 1), THRE, "Linux' THRE re-assert test passes");
    // A pending line status hides THRE; an IIR read reporting that does not clear THRE.
    s.write(IER, 1, 6);
    s.write(MCR, 1, 0x10);
    s.write(IIR, 1, 0); // 16450 mode: one byte overruns the next
    out(&mut s, b"ab");
    assert_eq!(s.read(IIR, 1), 0x06);
    s.read(LSR, 1);
    assert_eq!(
        s.read(IIR, 1),
        0x02,
        "THRE was not cleared by the line status read"
    );
    // A THR write clears THRE and, the byte gone at once, raises it again.
    s.write(MCR, 1, 0);
    s.write(COM1, 1, u32::from(b'c'));
    assert_eq!(s.read(IIR, 1), 0x02);
}

#[test]
fn input_wakes_a_halted_guest_only_with_the_receive_interrupt_and_out2_on() {
    let mut s = uart(0, 0);
    s.write(MCR, 1, 0x0B); // DTR, RTS, OUT2
    assert!(!s.wakes_on_input(), "receive interrupt off");
    s.write(IER, 1, 2);
    assert!(!s.wakes_on_input(), "only THRE enabled");
    s.write(IER, 1, 1);
    assert!(s.wakes_on_input());
    s.write(MCR, 1, 0x03);
    assert!(!s.wakes_on_input(), "OUT2 off: the line driver is off");
    s.write(MCR, 1, 0x1B);
    assert!(!s.wakes_on_input(), "loopback: no external input");
}

#[test]
fn out2_gates_the_interrupt_line_and_loopback_forces_it_low() {
    let mut s = uart(0, 1);
    s.push_input(b"k");
    assert_eq!(s.read(IIR, 1), DATA);
    assert!(!s.irq_level(), "OUT2 off: the line driver is off");
    s.write(MCR, 1, 0x0B); // DTR, RTS, OUT2
    assert!(s.irq_level());
    s.write(MCR, 1, 0x1B);
    assert!(!s.irq_level(), "loopback forces OUT2 inactive");
    s.write(MCR, 1, 0x0B);
    s.read(RBR, 1);
    assert!(!s.irq_level(), "nothing pending");
    s.write(IER, 1, 0);
    s.push_input(b"k");
    assert!(!s.irq_level(), "pending but not enabled");
}

#[test]
fn loopback_returns_writes_as_input_and_feeds_the_modem_inputs() {
    let mut s = uart(0, 0);
    s.write(MCR, 1, 0x1A); // loopback, OUT2, RTS: Linux' 8250 probe
    assert_eq!(s.read(MSR, 1) & 0xF0, 0x90, "CTS from RTS, DCD from OUT2");
    out(&mut s, b"echo\n");
    assert_eq!(s.bytes_out, 0, "nothing leaves the chip");
    assert!(s.take_output(true).is_empty());
    assert_eq!(s.input_room(), 0, "the serial input is disconnected");
    assert_eq!(s.push_input(b"z"), 0);
    assert_eq!(drain(&mut s), b"echo\n");
    s.write(MCR, 1, 0x15); // loopback, OUT1, DTR
    assert_eq!(
        s.read(MSR, 1),
        0x60 | 0x0B,
        "DSR, RI; deltas of CTS, DSR, DCD"
    );
    s.write(MCR, 1, 0x10);
    assert_eq!(s.read(MSR, 1), 0x06, "DSR changed, RI trailing edge");
    s.write(MCR, 1, 0x14);
    assert_eq!(s.read(MSR, 1), 0x40, "RI rising is no event");
    s.write(IER, 1, 8);
    s.write(MCR, 1, 0x10);
    assert_eq!(s.read(IIR, 1), MODEM);
    s.read(MSR, 1);
    assert_eq!(s.read(IIR, 1), NONE);
}

#[test]
fn wide_accesses_are_split_into_byte_cycles() {
    let mut s = uart(0, 0);
    s.push_input(b"ab");
    assert_eq!(s.read(LSR, 2), 0xB0_61, "LSR, then MSR");
    assert_eq!(s.read(COM1, 2), 0x00_61, "RBR pops 'a', then IER");
    s.write(COM1 + 6, 4, 0x1122_3344);
    assert_eq!(
        s.read(COM1 + 7, 1),
        0x33,
        "scratch got byte 1; bytes 2, 3 miss the UART"
    );
    assert_eq!(s.read(COM1 + 7, 4), 0xFFFF_FF33);
}

/// Random register accesses, host input and state round trips: no panic, the receiver within
/// bounds, and every state restores to the same device.
#[test]
fn hostile_accesses_never_panic_and_every_state_round_trips() {
    let mut rng = Rng::new(0x16550);
    let mut s = Serial::default();
    for step in 0..50_000 {
        let port = COM1 + rng.below(8) as u16;
        let width = [1, 2, 4, 0, 3, 8][rng.below(6) as usize];
        let value = rng.next() as u32;
        match rng.below(5) {
            0 | 1 => {
                s.read(port, width);
            }
            2 | 3 => {
                s.write(port, width, value);
            }
            _ => {
                let input = value.to_le_bytes();
                let room = s.input_room();
                let n = s.push_input(&input[..rng.below(5) as usize]);
                assert!(n <= room);
            }
        }
        assert!(s.rx.len() <= s.rx.capacity());
        let _ = s.irq_level();
        if step % 97 == 0 {
            s.take_output(rng.below(2) == 0);
            round_trip(&s);
        }
    }
    // Every port, width and value.
    for port in COM1..=COM1 + 7 {
        for width in [1, 2, 4] {
            for value in 0..=255u32 {
                let mut s = Serial::default();
                s.write(port, width, value * 0x0101_0101);
                s.read(port, width);
                s.take_output(true);
                round_trip(&s);
            }
        }
    }
}
