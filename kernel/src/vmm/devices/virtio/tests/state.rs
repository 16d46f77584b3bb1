// SPDX-License-Identifier: MIT OR Apache-2.0
//! Saved state: mid-stream save and restore continue identically; forged states are refused.

use alloc::string::ToString;

use super::*;
use crate::testutil::round_trip;
use crate::vmm::devices::state::{DeviceId, DeviceState, StateError};
use crate::vmm::devices::virtio::{QueueError, RxOutcome};

// Offsets in the state of a device that is not broken (see `VirtioNet`'s `DeviceState`).
const LINK: usize = 6;
const STATUS_AT: usize = 47;
const DRIVER_FEATURES_AT: usize = 56;
const ISR: usize = 68;
const BROKEN: usize = 73;
/// Queue `q`'s notified flag; its size, ready flag, addresses and indices follow.
const fn queue(q: usize) -> usize {
    74 + 32 * q
}
const LEN: usize = queue(2);

/// A device in mid-stream: traffic done, a TX chain refused and waiting, RX buffers posted,
/// an interrupt not acknowledged.
fn mid_stream() -> Guest {
    let mut g = Guest::ready(8);
    for n in 0..5 {
        g.queue_tx(&frame(n, 100), n % 2 == 0);
        g.post_rx(1530);
    }
    g.notify(TXQ);
    assert_eq!(
        g.transmit(3).0,
        TxReport {
            sent: 3,
            blocked: true
        }
    );
    for n in 0..2 {
        assert_eq!(
            g.dev.receive(&mut g.ram, &frame(n, 80)),
            RxOutcome::Delivered
        );
    }
    g.dev.set_link_up(false);
    g
}

/// The rest of a session: what a backup does after taking over.
fn continue_session(g: &mut Guest) -> Vec<u8> {
    let (report, mut log) = g.transmit(usize::MAX);
    log.push(alloc::format!("{report:?}").into_bytes());
    for n in 10..15 {
        log.push(alloc::format!("{:?}", g.dev.receive(&mut g.ram, &frame(n, 90))).into_bytes());
    }
    g.queue_tx(&frame(20, 1000), true);
    g.notify(TXQ);
    log.extend(g.transmit(usize::MAX).1);
    log.push(g.ack().to_le_bytes().to_vec());
    log.push(alloc::format!("{:?}", g.used(RXQ)).into_bytes());
    log.concat()
}

#[test]
fn a_restored_device_continues_identically() {
    let mut primary = mid_stream();
    let bytes = primary.dev.state_bytes();
    assert_eq!(bytes.len(), LEN);
    let mut backup = Guest {
        dev: VirtioNet::from_state_bytes(&bytes).expect("restores"),
        ram: primary.ram.clone(),
        q: primary.q,
    };
    assert_eq!(backup.dev, primary.dev);
    assert!(backup.dev.tx_pending() && backup.dev.irq_level());
    let a = continue_session(&mut primary);
    let b = continue_session(&mut backup);
    assert_eq!(a, b);
    assert_eq!(primary.ram.bytes, backup.ram.bytes);
    assert_eq!(primary.dev.state_bytes(), backup.dev.state_bytes());
    assert_eq!(backup.dev.stats().tx_frames, 6);
}

#[test]
fn states_round_trip() {
    let mut g = Guest::new();
    round_trip(&g.dev);
    g.negotiate(FEATURES);
    round_trip(&g.dev);
    let g = mid_stream();
    round_trip(&g.dev);
    let mut g = Guest::ready(8);
    g.write(QUEUE_SEL, 0);
    g.write(QUEUE_READY, 0);
    g.write(QUEUE_NUM, 5);
    assert_eq!(round_trip(&g.dev).broken(), Some(QueueError::Size(5)));
    assert_eq!(DeviceId::virtio_mmio(0).to_string(), "virtio-mmio device 0");
}

/// The field a forged copy of `good` with `edit` applied is refused for.
fn refused(good: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> &'static str {
    let mut b = good.to_vec();
    edit(&mut b);
    match VirtioNet::from_state_bytes(&b) {
        Err(StateError::Invalid { field, .. }) => field,
        other => panic!("{other:?}"),
    }
}

/// An edit that puts `v` at `at`.
fn put(at: usize, v: &[u8]) -> impl FnOnce(&mut Vec<u8>) + '_ {
    move |b| b[at..at + v.len()].copy_from_slice(v)
}

#[test]
fn forged_states_are_refused() {
    let good = mid_stream().dev.state_bytes();
    let rx = queue(0);
    assert_eq!(refused(&good, put(LINK, &[2])), "virtio-net link");
    assert_eq!(refused(&good, put(STATUS_AT, &[0x2F])), "virtio status");
    assert_eq!(
        refused(&good, put(STATUS_AT, &[0x4F])),
        "virtio status",
        "no reason"
    );
    assert_eq!(
        refused(&good, put(STATUS_AT, &[0x07])),
        "virtio status",
        "no FEATURES_OK"
    );
    let unknown = (FEATURES | 1 << 28).to_le_bytes();
    assert_eq!(
        refused(&good, put(DRIVER_FEATURES_AT, &unknown)),
        "virtio driver features"
    );
    let legacy = (FEATURES & 0xFFFF_FFFF).to_le_bytes();
    assert_eq!(
        refused(&good, put(DRIVER_FEATURES_AT, &legacy)),
        "virtio driver features"
    );
    assert_eq!(refused(&good, put(ISR, &[4])), "virtio interrupt status");
    assert_eq!(refused(&good, put(BROKEN, &[2])), "virtio broken");
    assert_eq!(refused(&good, put(rx, &[2])), "virtio queue notified");
    assert_eq!(refused(&good, put(rx + 1, &[3, 0])), "virtio queue size");
    assert_eq!(
        refused(&good, put(rx + 1, &[0, 2])),
        "virtio queue size",
        "512"
    );
    assert_eq!(
        refused(&good, put(rx + 1, &[0, 0])),
        "virtio queue size",
        "ready, no size"
    );
    assert_eq!(refused(&good, put(rx + 3, &[2])), "virtio queue ready");
    assert_eq!(
        refused(&good, put(rx + 4, &[8])),
        "virtio queue address",
        "descriptors"
    );
    assert_eq!(
        refused(&good, put(rx + 12, &[1])),
        "virtio queue address",
        "driver area"
    );
    assert_eq!(
        refused(&good, put(rx + 20, &[2])),
        "virtio queue address",
        "device area"
    );
    assert_eq!(refused(&good, put(rx + 28, &[9])), "virtio queue index");
    let fresh = VirtioNet::new(MAC).state_bytes();
    let q = queue(1);
    assert_eq!(
        refused(&fresh, put(q + 28, &[1, 0, 1, 0])),
        "virtio queue index",
        "stopped"
    );
}

#[test]
fn forged_broken_reasons_are_refused() {
    let mut g = Guest::ready(8);
    g.chain(TXQ, &[(0, 40, F_INDIRECT)]);
    assert_eq!(g.transmit(1).0.sent, 0);
    let good = g.dev.state_bytes();
    assert_eq!(
        VirtioNet::from_state_bytes(&good).unwrap().broken(),
        Some(QueueError::Indirect)
    );
    let tag = BROKEN + 1;
    assert_eq!(refused(&good, put(tag, &[9])), "virtio broken reason");
    assert_eq!(
        refused(&good, put(tag + 1, &[1])),
        "virtio broken reason",
        "not canonical"
    );
    let wide = |b: &mut Vec<u8>| (b[tag], b[tag + 3]) = (3, 1);
    assert_eq!(
        refused(&good, wide),
        "virtio broken reason",
        "an avail index over 16 bits"
    );
    let mut ok = good.clone();
    ok[tag] = 3;
    ok[tag + 1..tag + 9].fill(0);
    assert_eq!(
        VirtioNet::from_state_bytes(&ok).unwrap().broken(),
        Some(QueueError::AvailIndex(0))
    );
    assert_eq!(
        refused(&good, put(STATUS_AT, &[0x0F])),
        "virtio status",
        "a reason, no flag"
    );
}

#[test]
fn truncated_and_trailing_states_are_refused() {
    let good = mid_stream().dev.state_bytes();
    for n in 0..good.len() {
        assert!(
            matches!(
                VirtioNet::from_state_bytes(&good[..n]),
                Err(StateError::Truncated { .. })
            ),
            "{n} bytes"
        );
    }
    let mut long = good.clone();
    long.push(0);
    assert!(matches!(
        VirtioNet::from_state_bytes(&long),
        Err(StateError::Trailing { .. })
    ));
}
