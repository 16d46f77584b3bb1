// SPDX-License-Identifier: MIT OR Apache-2.0
//! Frames both ways: transmit order and content, back-pressure, receive layout, the edge
//! cases of receive, interrupt suppression and ring index wraparound.

use super::*;
use crate::vmm::devices::virtio::RxOutcome;
use crate::vmm::devices::virtio::mmio::INT_USED;

#[test]
fn transmitted_frames_reach_the_sink_in_order_and_byte_exact() {
    let mut g = Guest::ready(16);
    let sent: Vec<Vec<u8>> = (0..6).map(|n| frame(n, 14 + 300 * n as usize)).collect();
    let mut heads = Vec::new();
    for (n, f) in sent.iter().enumerate() {
        heads.push(g.queue_tx(f, n % 2 == 0));
    }
    g.notify(TXQ);
    assert!(g.dev.tx_pending());
    let (report, got) = g.transmit(usize::MAX);
    assert_eq!(
        report,
        TxReport {
            sent: 6,
            blocked: false
        }
    );
    assert_eq!(got, sent);
    assert!(!g.dev.tx_pending());
    let used = g.used(TXQ);
    let expect: Vec<(u32, u32)> = heads.iter().map(|&h| (u32::from(h), 0)).collect();
    assert_eq!(used, expect, "every chain used, length 0");
    assert_eq!(g.ack(), u32::from(INT_USED));
    assert_eq!(g.dev.stats().tx_frames, 6);
    assert_eq!(
        g.transmit(usize::MAX).0,
        TxReport::default(),
        "nothing more"
    );
}

#[test]
fn the_largest_and_smallest_frames_pass() {
    let mut g = Guest::ready(4);
    g.queue_tx(&frame(1, 1514), true);
    g.queue_tx(&frame(2, 14), false);
    let (report, got) = g.transmit(usize::MAX);
    assert_eq!(report.sent, 2);
    assert_eq!(got, [frame(1, 1514), frame(2, 14)]);
}

#[test]
fn a_refusing_sink_leaves_the_frame_for_later() {
    let mut g = Guest::ready(8);
    for n in 0..3 {
        g.queue_tx(&frame(n, 64), false);
    }
    g.notify(TXQ);
    let (report, got) = g.transmit(1);
    assert_eq!(
        report,
        TxReport {
            sent: 1,
            blocked: true
        }
    );
    assert_eq!(got, [frame(0, 64)]);
    assert_eq!(g.used(TXQ).len(), 1, "the refused chain is not used");
    assert!(g.dev.tx_pending(), "frames are left");
    let (report, got) = g.transmit(0);
    assert_eq!(
        report,
        TxReport {
            sent: 0,
            blocked: true
        }
    );
    assert!(got.is_empty());
    let (report, got) = g.transmit(usize::MAX);
    assert_eq!(
        report,
        TxReport {
            sent: 2,
            blocked: false
        }
    );
    assert_eq!(got, [frame(1, 64), frame(2, 64)], "in order, nothing lost");
    assert_eq!(g.dev.stats().tx_blocked, 2);
    assert_eq!(g.dev.stats().tx_frames, 3);
}

#[test]
fn one_transmit_call_takes_at_most_a_queue_of_chains() {
    let mut g = Guest::ready(4);
    for n in 0..4 {
        g.queue_tx(&frame(n, 60), false);
    }
    assert_eq!(g.transmit(usize::MAX).0.sent, 4);
    assert!(g.dev.tx_pending(), "it stopped at its bound: look again");
    assert_eq!(g.transmit(usize::MAX).0.sent, 0);
    assert!(!g.dev.tx_pending());
}

#[test]
fn a_received_frame_lands_with_its_header() {
    let mut g = Guest::ready(8);
    let head = g.post_rx(1530);
    g.notify(RXQ);
    assert!(g.dev.take_rx_notify());
    assert!(!g.dev.take_rx_notify());
    let f = frame(7, 1514);
    assert_eq!(g.dev.receive(&mut g.ram, &f), RxOutcome::Delivered);
    assert_eq!(g.used(RXQ), [(u32::from(head), 12 + 1514)]);
    let buf = DrvQueue::buffer(RXQ, head);
    let mut hdr = [0u8; 12];
    hdr[10] = 1; // num_buffers
    assert_eq!(g.ram.get(buf, 12), hdr);
    assert_eq!(g.ram.get(buf + 12, f.len()), &f[..]);
    assert_eq!(g.ack(), u32::from(INT_USED));
    assert_eq!(g.dev.stats().rx_frames, 1);
}

#[test]
fn a_frame_is_scattered_across_a_chain() {
    let mut g = Guest::ready(8);
    let (a, b) = (DrvQueue::buffer(RXQ, 0), DrvQueue::buffer(RXQ, 1));
    let head = g.chain(RXQ, &[(a, 10, F_WRITE), (b, 100, F_WRITE)]);
    let f = frame(3, 98);
    assert_eq!(g.dev.receive(&mut g.ram, &f), RxOutcome::Delivered);
    assert_eq!(g.used(RXQ), [(u32::from(head), 110)]);
    assert_eq!(
        g.ram.get(a, 10),
        [0; 10],
        "the header starts in the first buffer"
    );
    assert_eq!(g.ram.get(b, 2), [1, 0], "num_buffers in the second");
    assert_eq!(g.ram.get(b + 2, 98), &f[..]);
}

#[test]
fn receive_without_buffers_or_driver() {
    let mut g = Guest::new();
    assert_eq!(
        g.dev.receive(&mut g.ram, &frame(0, 60)),
        RxOutcome::NotReady
    );
    assert!(g.negotiate(FEATURES));
    g.setup_queue(RXQ);
    assert_eq!(
        g.dev.receive(&mut g.ram, &frame(0, 60)),
        RxOutcome::NotReady
    );
    g.set_status(status::DRIVER_OK);
    assert_eq!(
        g.dev.receive(&mut g.ram, &frame(0, 60)),
        RxOutcome::NoBuffers
    );
    assert_eq!(g.dev.stats().rx_no_buffers, 1);
    assert_eq!(
        g.transmit(usize::MAX).0,
        TxReport::default(),
        "TX queue not ready"
    );
    assert!(g.ram.writes.is_empty());
}

#[test]
fn frames_too_long_for_the_buffer_or_malformed_are_dropped() {
    let mut g = Guest::ready(8);
    let head = g.post_rx(12 + 60);
    assert_eq!(g.dev.receive(&mut g.ram, &frame(0, 61)), RxOutcome::Dropped);
    assert_eq!(g.dev.receive(&mut g.ram, &frame(0, 13)), RxOutcome::Dropped);
    assert_eq!(g.dev.receive(&mut g.ram, &[0; 1519]), RxOutcome::Dropped);
    assert_eq!(g.dev.stats().rx_dropped, 3);
    assert!(g.ram.writes.is_empty() && g.used(RXQ).is_empty());
    assert_eq!(
        g.dev.receive(&mut g.ram, &frame(1, 60)),
        RxOutcome::Delivered
    );
    assert_eq!(
        g.used(RXQ),
        [(u32::from(head), 72)],
        "the buffer stayed posted"
    );
    assert_eq!(g.dev.broken(), None);
}

#[test]
fn no_interrupt_suppresses_the_used_interrupt() {
    let mut g = Guest::ready(8);
    g.suppress(TXQ, true);
    g.suppress(RXQ, true);
    g.queue_tx(&frame(0, 60), false);
    g.post_rx(2048);
    assert_eq!(g.transmit(usize::MAX).0.sent, 1);
    assert_eq!(
        g.dev.receive(&mut g.ram, &frame(1, 60)),
        RxOutcome::Delivered
    );
    assert!(!g.dev.irq_level());
    assert_eq!(
        g.used(TXQ).len() + g.used(RXQ).len(),
        2,
        "work done all the same"
    );
    g.suppress(TXQ, false);
    g.queue_tx(&frame(2, 60), false);
    assert_eq!(g.transmit(usize::MAX).0.sent, 1);
    assert!(g.dev.irq_level());
}

#[test]
fn ring_indices_wrap_past_65535() {
    let mut g = Guest::ready(4);
    let rounds = 70_000u32;
    for n in 0..rounds {
        let f = frame(n as u8, 60 + (n % 7) as usize);
        g.queue_tx(&f, n % 3 == 0);
        let (report, got) = g.transmit(usize::MAX);
        assert_eq!(
            (report.sent, &got[..]),
            (1, core::slice::from_ref(&f)),
            "{n}"
        );
        assert_eq!(g.used(TXQ).len(), 1);
        let head = g.post_rx(1530);
        assert_eq!(g.dev.receive(&mut g.ram, &f), RxOutcome::Delivered, "{n}");
        assert_eq!(g.used(RXQ), [(u32::from(head), 12 + f.len() as u32)]);
    }
    let s = g.dev.stats();
    assert_eq!((s.tx_frames, s.rx_frames), (70_000, 70_000));
    assert_eq!(g.q[RXQ].avail_idx, (rounds % 65536) as u16, "wrapped");
    assert_eq!(g.ram.u16(g.q[TXQ].used + 2), (rounds % 65536) as u16);
}
