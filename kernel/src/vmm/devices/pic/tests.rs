// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host unit tests of the 8259 PIC pair model.

use super::*;

fn line(n: u8) -> IrqLine {
    IrqLine::new(n).unwrap()
}

/// The Linux/PC sequence: master base 0x20, slave 0x28, 8086 mode, nothing masked.
fn pic() -> Pic {
    let mut p = Pic::new();
    for (port, v) in [(0x20, 0x11), (0x21, 0x20), (0x21, 0x04), (0x21, 0x01)] {
        p.io_write(port, 1, v);
    }
    for (port, v) in [(0xA0, 0x11), (0xA1, 0x28), (0xA1, 0x02), (0xA1, 0x01)] {
        p.io_write(port, 1, v);
    }
    p.io_write(0x21, 1, 0);
    p.io_write(0xA1, 1, 0);
    p
}

fn eoi(p: &mut Pic, port: u16) {
    p.io_write(port, 1, 0x20);
}

#[test]
fn bios_state_and_init_sequence() {
    let mut p = Pic::new();
    p.raise(IrqLine::PIT);
    assert_eq!(p.pending_vector(), None, "masked after the BIOS");
    p.io_write(0x21, 1, 0xFE);
    assert_eq!(p.pending_vector(), Some(0x08));
    p.io_write(0x20, 1, 0x11);
    assert_eq!(p.pending_vector(), None, "ICW1 resets the edge sense");
    assert_eq!(p.acknowledge(), None, "no INTA mid-initialization");
    p.io_write(0x21, 1, 0x30);
    p.io_write(0x21, 1, 0x04);
    p.io_write(0x21, 1, 0x01);
    assert_eq!(p.imr(), 0xFF00, "ICW1 cleared the master's IMR");
    p.lower(IrqLine::PIT);
    p.raise(IrqLine::PIT);
    assert_eq!(p.pending_vector(), Some(0x30), "vector = ICW2 base + line");
    assert_eq!(p.acknowledge(), Some(0x30));

    // Single mode without ICW4: ICW1, ICW2, then OCW1.
    p.io_write(0x20, 1, 0x12);
    p.io_write(0x21, 1, 0x47); // low three bits are ignored
    p.io_write(0x21, 1, 0xFB);
    assert_eq!(p.imr() & 0xFF, 0xFB, "no ICW3 or ICW4 was expected");
    p.raise(IrqLine::CASCADE);
    assert_eq!(
        p.pending_vector(),
        Some(0x42),
        "IR2 is an ordinary input when single"
    );
}

#[test]
fn priorities_nesting_and_eoi() {
    let mut p = pic();
    p.raise(line(3));
    p.raise(line(1));
    assert_eq!(p.acknowledge(), Some(0x21), "IR1 outranks IR3");
    assert_eq!(p.isr(), 0b10);
    assert_eq!(p.pending_vector(), None, "IR3 waits for IR1's EOI");
    p.raise(line(0));
    assert_eq!(p.acknowledge(), Some(0x20), "IR0 nests above IR1");
    eoi(&mut p, 0x20); // non-specific: the highest in service, IR0
    assert_eq!(p.isr(), 0b10);
    assert_eq!(p.pending_vector(), None);
    p.io_write(0x20, 1, 0x61); // specific EOI for IR1
    assert_eq!(p.isr(), 0);
    assert_eq!(p.acknowledge(), Some(0x23));
    p.io_write(0x20, 1, 0x0B); // OCW3: read ISR
    assert_eq!(p.io_read(0x20, 1), 0b1000);
    p.io_write(0x20, 1, 0x0A); // OCW3: read IRR
    assert_eq!(p.io_read(0x20, 1), 0);
}

#[test]
fn rotation_changes_priorities() {
    let mut p = pic();
    p.io_write(0x20, 1, 0xC3); // set priority: IR3 lowest, IR4 highest
    p.raise(line(1));
    p.raise(line(5));
    assert_eq!(p.acknowledge(), Some(0x25));
    p.io_write(0x20, 1, 0xA0); // rotate on non-specific EOI: IR5 becomes lowest
    assert_eq!(p.acknowledge(), Some(0x21));
}

#[test]
fn masking_holds_requests_in_irr() {
    let mut p = pic();
    p.io_write(0x21, 1, 0x10);
    assert_eq!(p.io_read(0x21, 1), 0x10);
    p.raise(IrqLine::COM1);
    assert_eq!(p.pending_vector(), None);
    assert!(p.is_requested(IrqLine::COM1));
    p.io_write(0x21, 1, 0);
    assert_eq!(p.acknowledge(), Some(0x24));
}

#[test]
fn cascade_through_ir2() {
    let mut p = pic();
    p.raise(line(12));
    assert_eq!(p.pending_vector(), Some(0x2C));
    assert_eq!(p.acknowledge(), Some(0x2C));
    assert_eq!(p.isr(), 0x1004, "slave IR4 and master IR2 in service");
    p.raise(line(9));
    assert_eq!(
        p.pending_vector(),
        None,
        "fully nested: IR2 in service blocks the slave"
    );
    p.raise(line(1));
    assert_eq!(
        p.acknowledge(),
        Some(0x21),
        "a higher master level still nests"
    );
    eoi(&mut p, 0x20);
    eoi(&mut p, 0xA0);
    assert_eq!(p.pending_vector(), None, "until the master's EOI for IR2");
    eoi(&mut p, 0x20);
    assert_eq!(p.acknowledge(), Some(0x29));
    p.io_write(0xA1, 1, 0x02);
    assert_eq!(p.imr(), 0x0200);
}

#[test]
fn special_fully_nested_mode_lets_the_slave_nest() {
    let mut p = pic();
    p.io_write(0x20, 1, 0x11);
    p.io_write(0x21, 1, 0x20);
    p.io_write(0x21, 1, 0x04);
    p.io_write(0x21, 1, 0x11); // SFNM
    p.raise(line(12));
    assert_eq!(p.acknowledge(), Some(0x2C));
    p.raise(line(9));
    assert_eq!(p.acknowledge(), Some(0x29));
}

#[test]
fn edges_must_fall_before_they_request_again() {
    let mut p = pic();
    p.raise(IrqLine::PIT);
    assert_eq!(p.acknowledge(), Some(0x20));
    eoi(&mut p, 0x20);
    p.raise(IrqLine::PIT);
    assert_eq!(p.pending_vector(), None, "line held high: no new edge");
    p.lower(IrqLine::PIT);
    assert_eq!(p.pending_vector(), None);
    p.raise(IrqLine::PIT);
    assert_eq!(p.pending_vector(), Some(0x20));
    p.lower(IrqLine::PIT);
    assert_eq!(p.pending_vector(), Some(0x20), "the edge stays latched");
}

#[test]
fn level_lines_follow_the_line_and_vanish_into_spurious_irq7() {
    let mut p = pic();
    p.io_write(0x4D0, 1, 0xFF);
    assert_eq!(
        p.io_read(0x4D0, 1),
        0xF8,
        "IRQ0-2 cannot be level-triggered"
    );
    p.raise(line(5));
    assert_eq!(p.acknowledge(), Some(0x25));
    eoi(&mut p, 0x20);
    assert_eq!(p.pending_vector(), Some(0x25), "still high: requests again");
    p.lower(line(5));
    assert_eq!(p.pending_vector(), None);
    assert_eq!(p.acknowledge(), Some(0x27), "spurious IRQ7");
    assert_eq!(p.isr(), 0, "a spurious vector sets nothing in service");

    // An edge request masked between INT and INTA is spurious too.
    p.raise(line(4));
    p.io_write(0x21, 1, 0x10);
    assert_eq!(p.acknowledge(), Some(0x27));
}

#[test]
fn vanished_slave_request_is_spurious_irq15() {
    let mut p = pic();
    p.io_write(0x4D1, 1, 0x04); // IRQ10 level-triggered
    p.raise(line(10));
    assert_eq!(p.pending_vector(), Some(0x2A));
    p.lower(line(10));
    assert_eq!(
        p.pending_vector(),
        Some(0x2F),
        "the master latched the slave's INT"
    );
    assert_eq!(p.acknowledge(), Some(0x2F));
    assert_eq!(
        p.isr(),
        0x0004,
        "master IR2 in service, nothing on the slave"
    );
    eoi(&mut p, 0x20);
    assert_eq!(p.pending_vector(), None);
}

#[test]
fn auto_eoi_and_poll() {
    let mut p = pic();
    p.io_write(0x20, 1, 0x11);
    p.io_write(0x21, 1, 0x20);
    p.io_write(0x21, 1, 0x04);
    p.io_write(0x21, 1, 0x03); // AEOI
    p.io_write(0x21, 1, 0x80);
    p.raise(line(6));
    assert_eq!(p.acknowledge(), Some(0x26));
    assert_eq!(p.isr(), 0);
    p.raise(line(3));
    p.io_write(0x20, 1, 0x0C); // OCW3: poll
    assert_eq!(p.io_read(0x20, 1), 0x83);
    p.io_write(0x20, 1, 0x0C);
    assert_eq!(p.io_read(0x21, 1), 0, "nothing requesting");
    assert_eq!(p.io_read(0x21, 1), 0x80, "IMR after the poll word");
}

#[test]
fn random_port_and_line_traffic_never_panics() {
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let ports = [0x20, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1, 0x22, 0xFFFF];
    for _ in 0..3 {
        let mut p = Pic::new();
        for _ in 0..20_000 {
            let r = next();
            let port = ports[(r % 8) as usize];
            let width = [1, 2, 4, 0, 3, 255][(r >> 8) as usize % 6];
            match (r >> 16) % 6 {
                0 => _ = p.io_read(port, width),
                1 | 2 => p.io_write(port, width, (r >> 32) as u32),
                3 => p.set_level(line((r >> 24) as u8 & 15), r & (1 << 30) != 0),
                4 => _ = p.acknowledge(),
                _ => {
                    if let Some(v) = p.pending_vector() {
                        assert_eq!(p.acknowledge(), Some(v), "INTA matches INT");
                    }
                }
            }
        }
    }
}
