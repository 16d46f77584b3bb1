// SPDX-License-Identifier: MIT OR Apache-2.0
//! The register file: identification, configuration space, feature negotiation, status
//! rules, queue registers, interrupts, reset.

use super::*;
use crate::vmm::devices::virtio::RxOutcome;
use crate::vmm::devices::virtio::mmio::{INT_CONFIG, INT_USED, MAGIC, VENDOR_ID};
use crate::vmm::devices::virtio::net::{VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS};

#[test]
fn identification_registers() {
    let mut g = Guest::new();
    assert_eq!(g.read(0x00), MAGIC);
    assert_eq!(g.read(0x00).to_le_bytes(), *b"virt");
    assert_eq!(g.read(0x04), 2, "version 2: not legacy");
    assert_eq!(g.read(0x08), 1, "network card");
    assert_eq!(g.read(0x0C), VENDOR_ID);
    assert_eq!(VENDOR_ID.to_le_bytes(), *b"CSTR");
    for shm in [0xB0, 0xB4] {
        assert_eq!(g.read(shm), u32::MAX, "no shared memory region: length -1");
    }
    for reserved in [
        0x18, 0x28, 0x3C, 0x40, 0x48, 0x54, 0x68, 0x74, 0x88, 0xC0, 0xF8,
    ] {
        assert_eq!(g.read(reserved), 0, "{reserved:#x}");
    }
}

#[test]
fn control_registers_take_only_aligned_32_bit_accesses() {
    let mut g = Guest::new();
    assert_eq!(g.dev.mmio_read(0x00, 2), 0);
    assert_eq!(g.dev.mmio_read(0x00, 8), 0);
    assert_eq!(g.dev.mmio_read(0x01, 4), 0);
    assert_eq!(g.dev.mmio_read(0x00, 3), 0, "no such width");
    assert_eq!(g.dev.mmio_read(0x200, 4), 0, "past the window");
    assert_eq!(g.dev.mmio_read(0x1FC, 8), 0, "straddles the end");
    assert_eq!(g.dev.mmio_read(u64::MAX, 8), 0);
    g.dev.mmio_write(STATUS, 1, 1);
    g.dev.mmio_write(STATUS, 8, 1);
    g.dev.mmio_write(u64::MAX - 1, 4, 1);
    assert_eq!(g.status(), 0);
    g.dev.mmio_write(STATUS, 4, 1);
    assert_eq!(g.status(), 1);
}

#[test]
fn configuration_space_reads_at_any_width() {
    let mut g = Guest::new();
    let bytes: Vec<u8> = (0..6)
        .map(|i| g.dev.mmio_read(0x100 + i, 1) as u8)
        .collect();
    assert_eq!(bytes, MAC, "Linux reads the MAC bytewise");
    assert_eq!(g.dev.mmio_read(0x106, 2), 1, "VIRTIO_NET_S_LINK_UP");
    assert_eq!(g.dev.mmio_read(0x100, 4), 0x1200_5452);
    assert_eq!(
        g.dev.mmio_read(0x105, 2),
        0x0156,
        "unaligned: mac[5], status low"
    );
    assert_eq!(g.dev.mmio_read(0x100, 8), 0x0001_5634_1200_5452);
    assert_eq!(g.dev.mmio_read(0x108, 2), 1, "max_virtqueue_pairs");
    assert_eq!(
        g.dev.mmio_read(0x10A, 2),
        1500,
        "the MTU (VIRTIO_NET_F_MTU)"
    );
    assert_eq!(
        g.dev.mmio_read(0x10A, 4),
        1500,
        "bytes past the fields read 0"
    );
    assert_eq!(g.dev.mmio_read(0x1F8, 8), 0);
    g.dev.mmio_write(0x100, 1, 0xFF);
    assert_eq!(g.dev.mac(), MAC, "the MAC is read-only");
    g.dev.set_link_up(false);
    assert_eq!(g.dev.mmio_read(0x106, 2), 0);
    assert_eq!(g.read(CONFIG_GENERATION), 1, "a configuration change");
    assert!(!g.dev.irq_level(), "no interrupt before DRIVER_OK");
}

#[test]
fn link_change_after_driver_ok_interrupts() {
    let mut g = Guest::ready(8);
    g.dev.set_link_up(true);
    assert!(!g.dev.irq_level(), "no change");
    g.dev.set_link_up(false);
    assert!(g.dev.irq_level());
    assert_eq!(g.ack(), u32::from(INT_CONFIG));
    assert!(!g.dev.irq_level(), "acknowledged: the line drops");
    assert_eq!(g.read(CONFIG_GENERATION), 1);
    assert!(!g.dev.link_up());
}

#[test]
fn features_ok_needs_offered_bits_and_version_1() {
    let mut g = Guest::new();
    assert!(!g.negotiate(VIRTIO_NET_F_MAC), "no VIRTIO_F_VERSION_1");
    assert!(
        !g.negotiate(FEATURES | 1 << 28),
        "indirect descriptors were not offered"
    );
    assert!(
        !g.negotiate(FEATURES | 1 << 15),
        "MRG_RXBUF was not offered"
    );
    g.set_status(status::DRIVER_OK);
    assert_eq!(
        g.status() & status::DRIVER_OK,
        0,
        "DRIVER_OK needs FEATURES_OK"
    );
    assert!(g.negotiate(VIRTIO_F_VERSION_1), "a subset is accepted");
    assert!(g.negotiate(VIRTIO_F_VERSION_1 | VIRTIO_NET_F_STATUS));
    // Frozen after FEATURES_OK.
    g.write(DRIVER_FEATURES_SEL, 0);
    g.write(DRIVER_FEATURES, u32::MAX);
    g.set_status(status::DRIVER_OK);
    assert_eq!(g.status(), 0x0F);
    let mut state = g.dev.clone();
    assert_eq!(crate::testutil::round_trip(&state), g.dev);
    state.mmio_write(STATUS, 4, 0);
    assert_eq!(state.status(), 0);
}

#[test]
fn feature_selectors_beyond_bit_63_read_zero() {
    let mut g = Guest::new();
    g.write(DEVICE_FEATURES_SEL, 2);
    assert_eq!(g.read(DEVICE_FEATURES), 0);
    g.write(DRIVER_FEATURES_SEL, 2);
    g.write(DRIVER_FEATURES, u32::MAX);
    assert!(g.negotiate(FEATURES), "bits 64 and up are not stored");
}

#[test]
fn status_bits_clear_only_by_reset() {
    let mut g = Guest::ready(8);
    g.write(STATUS, u32::from(status::ACKNOWLEDGE));
    assert_eq!(g.status(), 0x0F);
    g.write(STATUS, 0x40 | 0x0F);
    assert_eq!(g.status(), 0x0F, "DEVICE_NEEDS_RESET is the device's");
    g.write(STATUS, 0x8F);
    assert_eq!(g.status(), 0x8F, "FAILED");
    g.write(STATUS, 0);
    assert_eq!(g.status(), 0);
}

#[test]
fn queue_registers() {
    let mut g = Guest::new();
    for q in 0..2 {
        g.write(QUEUE_SEL, q);
        assert_eq!(g.read(QUEUE_NUM_MAX), 256);
    }
    g.write(QUEUE_SEL, 2);
    assert_eq!(g.read(QUEUE_NUM_MAX), 0, "no third queue");
    g.write(QUEUE_READY, 1);
    assert_eq!(g.read(QUEUE_READY), 0);
    assert_eq!(
        g.dev.broken(),
        None,
        "writes to a missing queue are ignored"
    );
    g.write(QUEUE_SEL, u32::MAX);
    g.write(QUEUE_NUM, 3);
    assert_eq!(g.dev.broken(), None);

    let mut g = Guest::ready(16);
    g.write(QUEUE_SEL, 1);
    assert_eq!(g.read(QUEUE_READY), 1);
    g.write(QUEUE_NUM, 3);
    g.write64(QUEUE_DESC, 0x7);
    assert_eq!(g.dev.broken(), None, "a ready queue's registers are frozen");
    g.write(QUEUE_READY, 0);
    assert_eq!(g.read(QUEUE_READY), 0, "Linux's vm_del_vq reads 0 back");
    g.write(QUEUE_READY, 1);
    assert_eq!(g.read(QUEUE_READY), 1);
}

#[test]
fn reset_returns_to_the_initial_state() {
    let mut g = Guest::ready(8);
    g.post_rx(2048);
    g.notify(RXQ);
    assert_eq!(
        g.dev.receive(&mut g.ram, &frame(1, 60)),
        RxOutcome::Delivered
    );
    g.dev.set_link_up(false);
    assert!(g.dev.irq_level());
    g.write(STATUS, 0);
    assert!(!g.dev.irq_level(), "interrupt status cleared");
    assert!(!g.dev.tx_pending());
    for q in 0..2 {
        g.write(QUEUE_SEL, q);
        assert_eq!(g.read(QUEUE_READY), 0);
    }
    let stats = g.dev.stats();
    assert_eq!(stats.rx_frames, 1, "counters survive a reset");
    assert_eq!(g.read(CONFIG_GENERATION), 1);
    assert_eq!(
        g.dev.receive(&mut g.ram, &frame(2, 60)),
        RxOutcome::NotReady
    );
}

#[test]
fn interrupt_ack_clears_only_the_bits_written() {
    let mut g = Guest::ready(8);
    g.post_rx(2048);
    assert_eq!(
        g.dev.receive(&mut g.ram, &frame(1, 60)),
        RxOutcome::Delivered
    );
    g.dev.set_link_up(false);
    assert_eq!(g.read(INTERRUPT_STATUS), u32::from(INT_USED | INT_CONFIG));
    g.write(INTERRUPT_ACK, u32::from(INT_USED));
    assert_eq!(g.read(INTERRUPT_STATUS), u32::from(INT_CONFIG));
    assert!(g.dev.irq_level());
    g.write(INTERRUPT_ACK, u32::from(INT_CONFIG));
    assert!(!g.dev.irq_level());
}
