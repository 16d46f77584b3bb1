// SPDX-License-Identifier: MIT OR Apache-2.0
//! A hostile driver: every rule of the queue validation breaks the device with its reason,
//! without a panic or a write it should not make; a reset recovers; a random driver cannot
//! make the device panic or reach a state that does not restore.

use super::*;
use crate::testutil::{Rng, round_trip};
use crate::vmm::devices::virtio::mmio::INT_CONFIG;
use crate::vmm::devices::virtio::{QueueError, RxOutcome};

/// Asserts that the device is broken for `why` and stays inert: DEVICE_NEEDS_RESET, the
/// configuration interrupt if DRIVER_OK was set, no queue work, and no write to guest RAM.
fn assert_broken(g: &mut Guest, why: QueueError) {
    assert_eq!(g.dev.broken(), Some(why));
    assert_ne!(g.status() & status::DEVICE_NEEDS_RESET, 0);
    if g.status() & status::DRIVER_OK != 0 {
        assert_eq!(g.read(INTERRUPT_STATUS) & u32::from(INT_CONFIG), 2);
    }
    let writes = g.ram.writes.len();
    g.post_rx(2048);
    g.queue_tx(&frame(9, 60), false);
    g.notify(TXQ);
    assert_eq!(g.dev.receive(&mut g.ram, &frame(9, 60)), RxOutcome::Broken);
    assert_eq!(g.transmit(usize::MAX).0, TxReport::default());
    assert_eq!(g.ram.writes.len(), writes, "a broken device writes nothing");
    round_trip(&g.dev);
}

/// Makes a TX chain of `bufs` available, transmits, and returns why the device broke.
fn tx(g: &mut Guest, bufs: Bufs<'_>) -> QueueError {
    g.chain(TXQ, bufs);
    g.notify(TXQ);
    let (report, frames) = g.transmit(usize::MAX);
    assert_eq!((report.sent, frames.len()), (0, 0));
    g.dev.broken().expect("the device broke")
}

const A: u64 = 0x10_0000;

#[test]
fn invalid_queue_sizes_break_the_device() {
    let mut g = Guest::new();
    assert!(g.negotiate(FEATURES));
    g.write(QUEUE_SEL, 0);
    g.write(QUEUE_NUM, 3);
    assert_broken(&mut g, QueueError::Size(3));
    for (num, why) in [(512, 512), (0, 0), (0x1_0010, 0x1_0010)] {
        assert!(g.negotiate(FEATURES));
        g.write(QUEUE_NUM, num);
        assert_broken(&mut g, QueueError::Size(why));
    }
    assert!(g.negotiate(FEATURES));
    g.write(QUEUE_READY, 1);
    assert_broken(&mut g, QueueError::Size(0));
    assert!(!g.dev.irq_level(), "no interrupt before DRIVER_OK");
}

#[test]
fn misaligned_rings_break_the_device() {
    for (reg, addr) in [
        (QUEUE_DESC, 0x1_0008),
        (QUEUE_DRIVER, 0x1_4001),
        (QUEUE_DEVICE, 0x1_8002),
    ] {
        let mut g = Guest::new();
        assert!(g.negotiate(FEATURES));
        g.setup_queue(RXQ);
        g.write(QUEUE_SEL, 1);
        g.write(QUEUE_NUM, 8);
        g.write64(reg, addr);
        g.write(QUEUE_READY, 1);
        assert_eq!(g.read(QUEUE_READY), 0);
        assert_broken(&mut g, QueueError::Misaligned(addr));
    }
}

#[test]
fn rings_outside_ram_break_the_device() {
    let ram = RAM as u64;
    for (q, ring, addr, why) in [
        (TXQ, 1, 0x1_0000_0000, 0x1_0000_0002),
        (TXQ, 0, ram - 0x10, ram),
        (TXQ, 0, u64::MAX - 15, u64::MAX - 15),
        (RXQ, 2, ram, ram + 4),
    ] {
        let mut g = Guest::new();
        let dq = &mut g.q[q];
        *[&mut dq.desc, &mut dq.avail, &mut dq.used][ring] = addr;
        g.probe(FEATURES);
        g.q[q] = DrvQueue::at(q, 256); // the test's driver writes its rings inside RAM
        match (q, ring) {
            (TXQ, 1) => {}
            (TXQ, _) => g.make_available(TXQ, 1),
            _ => _ = g.post_rx(2048),
        }
        g.notify(TXQ);
        assert_eq!(g.transmit(usize::MAX).0.sent, 0);
        assert_eq!(g.dev.receive(&mut g.ram, &frame(0, 60)), RxOutcome::Broken);
        let in_buffer = |&(a, n): &(u64, usize)| a >= A && a + n as u64 <= A + 72;
        assert!(g.ram.writes.iter().all(in_buffer), "{:x?}", g.ram.writes);
        assert_broken(&mut g, QueueError::OutOfRam(why));
    }
}

#[test]
fn an_available_index_too_far_ahead_breaks_the_device() {
    let mut g = Guest::ready(8);
    g.ram.put(g.q[TXQ].avail + 2, &9u16.to_le_bytes());
    g.notify(TXQ);
    g.transmit(usize::MAX);
    assert_broken(&mut g, QueueError::AvailIndex(9));
}

#[test]
fn descriptor_indices_outside_the_table_break_the_device() {
    let mut g = Guest::ready(8);
    g.make_available(TXQ, 8);
    g.transmit(usize::MAX);
    assert_broken(&mut g, QueueError::DescIndex(8));

    let mut g = Guest::ready(8);
    let at = g.q[TXQ].desc;
    g.ram.put(at, &desc(A, 12, F_NEXT, 200));
    g.make_available(TXQ, 0);
    g.transmit(usize::MAX);
    assert_broken(&mut g, QueueError::DescIndex(200));
}

#[test]
fn a_descriptor_loop_breaks_the_device() {
    let mut g = Guest::ready(4);
    let at = g.q[RXQ].desc;
    g.ram.put(at, &desc(A, 1, F_WRITE | F_NEXT, 1));
    g.ram.put(at + 16, &desc(A, 1, F_WRITE | F_NEXT, 0));
    g.make_available(RXQ, 0);
    assert_eq!(g.dev.receive(&mut g.ram, &frame(0, 60)), RxOutcome::Broken);
    assert_broken(&mut g, QueueError::ChainLoop);
}

#[test]
fn bad_transmit_chains_break_the_device() {
    let ram = RAM as u64;
    let max = u64::from(u32::MAX);
    let cases: [(Bufs<'_>, QueueError); 7] = [
        (&[(A, 12, 0), (A, 60, F_INDIRECT)], QueueError::Indirect),
        (&[(A, 12, 0), (A, 60, F_WRITE)], QueueError::Direction),
        (&[(A, 12, 0)], QueueError::TxLength(12)),
        (&[(A, 12, 0), (A, 13, 0)], QueueError::TxLength(25)),
        (&[(A, 1527, 0)], QueueError::TxLength(1527)),
        (
            &[(A, u32::MAX, 0), (A, u32::MAX, 0)],
            QueueError::TxLength(2 * max),
        ),
        (
            &[(A, 12, 0), (ram - 10, 60, 0)],
            QueueError::OutOfRam(ram - 10),
        ),
    ];
    for (bufs, why) in cases {
        let mut g = Guest::ready(8);
        assert_eq!(tx(&mut g, bufs), why);
        assert_broken(&mut g, why);
    }
}

#[test]
fn receive_chains_that_are_read_only_or_outside_ram_break_the_device() {
    let mut g = Guest::ready(8);
    g.chain(RXQ, &[(A, 12, F_WRITE), (A + 12, 2000, 0)]);
    assert_eq!(g.dev.receive(&mut g.ram, &frame(0, 60)), RxOutcome::Broken);
    assert_broken(&mut g, QueueError::Direction);

    let mut g = Guest::ready(8);
    g.chain(RXQ, &[(A, 40, F_WRITE), (u64::MAX - 8, 2000, F_WRITE)]);
    assert_eq!(g.dev.receive(&mut g.ram, &frame(0, 60)), RxOutcome::Broken);
    assert_eq!(g.ram.writes, [(A, 40)], "only the buffer inside RAM");
    assert!(g.used(RXQ).is_empty());
    assert_broken(&mut g, QueueError::OutOfRam(u64::MAX - 8));
}

#[test]
fn a_reset_recovers_a_broken_device() {
    let mut g = Guest::ready(8);
    tx(&mut g, &[(A, 12, 0)]);
    assert!(g.dev.broken().is_some());
    g.q = [DrvQueue::at(RXQ, 8), DrvQueue::at(TXQ, 8)];
    g.probe(FEATURES);
    assert_eq!((g.dev.broken(), g.status()), (None, 0x0F));
    g.queue_tx(&frame(1, 60), false);
    assert_eq!(g.transmit(usize::MAX).1, [frame(1, 60)]);
}

/// A register offset: mostly real registers, sometimes anything near the window.
fn offset(rng: &mut Rng) -> u64 {
    const REGS: [u64; 18] = [
        0x10, 0x14, 0x20, 0x24, 0x30, 0x38, 0x44, 0x50, 0x64, 0x70, 0x80, 0x84, 0x90, 0x94, 0xA0,
        0xA4, 0x100, 0x106,
    ];
    match rng.below(4) {
        0 => rng.below(0x220),
        _ => REGS[rng.below(REGS.len() as u64) as usize],
    }
}

/// A register value: mostly small or a ring address, sometimes anything.
fn value(rng: &mut Rng) -> u64 {
    match rng.below(4) {
        0 => rng.next(),
        1 => 0x1_0000 * rng.below(4) + 2 * rng.below(4),
        _ => 1 << rng.below(10) & 0x3FF,
    }
}

#[test]
fn a_random_driver_cannot_panic_the_device() {
    let mut rng = Rng::new(0x7669_7274_696F);
    let mut g = Guest::ready(8);
    for step in 0..6000 {
        match rng.below(16) {
            0..=3 => {
                let width = [1, 2, 3, 4, 4, 4, 8][rng.below(7) as usize];
                g.dev.mmio_write(offset(&mut rng), width, value(&mut rng));
            }
            4 | 5 => {
                let _ = g
                    .dev
                    .mmio_read(offset(&mut rng), [1, 2, 4, 8][rng.below(4) as usize]);
            }
            6 | 7 => {
                // Scribble on the rings (descriptor tables, available and used rings).
                let at = 0x1_0000 + rng.below(0x2_0000);
                let bytes: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                g.ram.put(at, &bytes);
            }
            8 => {
                let room = rng.below(3) as usize;
                let _ = g.transmit(room);
            }
            9 => {
                let len = rng.below(1600) as usize;
                let _ = g.dev.receive(&mut g.ram, &vec![step as u8; len]);
            }
            10 => {
                g.queue_tx(
                    &frame(step as u8, 14 + rng.below(1500) as usize),
                    rng.below(2) == 0,
                );
                g.notify(TXQ);
            }
            11 => {
                g.post_rx(rng.below(2048) as u32);
            }
            12 => {
                let _ = g.ack();
            }
            13 if rng.below(8) == 0 => {
                let size = 1 << rng.below(9);
                g.q = [DrvQueue::at(RXQ, size), DrvQueue::at(TXQ, size)];
                g.probe(FEATURES);
            }
            _ => {
                round_trip(&g.dev);
            }
        }
        assert_eq!(g.ram.bytes.len(), RAM);
        assert_eq!(
            g.dev.broken().is_some(),
            g.status() & status::DEVICE_NEEDS_RESET != 0
        );
        assert_eq!(g.read(INTERRUPT_STATUS) & !3, 0);
    }
    round_trip(&g.dev);
}
