// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the primary makes of write faults it did not ask for, of a CPU without nested dirty
//! flags, and of stuns it must refuse: never a guest error, never a lost dirty page.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::super::backup::Backup;
use super::super::message::Message;
use super::super::primary::{FaultOutcome, Primary, PrimaryConfig, PrimaryError};
use super::{BackupRam, PAGES, SimRam, config, guest_write, run_pairs};
use crate::stream::PAGE_SIZE;

/// Pumps the sender until the epoch is all out, collecting its messages.
fn drain(p: &mut Primary, ram: &mut SimRam, out: &mut Vec<Vec<u8>>) {
    while !p.sender_idle() {
        p.pump_sender(ram, usize::MAX).expect("pump");
        ram.sync_tlb();
        while let Some(m) = p.next_message() {
            out.push(m);
        }
    }
    while let Some(m) = p.next_message() {
        out.push(m);
    }
}

/// A primary past its first (full) epoch, with every page sent and writable again.
fn after_epoch_zero(track_writes: bool) -> (Primary, SimRam, Vec<Vec<u8>>) {
    let mut ram = SimRam::new();
    ram.dirty_flags = !track_writes;
    let mut p = Primary::new(&PrimaryConfig {
        track_writes,
        ..config(4)
    })
    .expect("primary");
    p.stun(&mut ram, &[], 0, b"v", b"d").expect("epoch 0");
    ram.sync_tlb();
    let mut msgs = Vec::new();
    drain(&mut p, &mut ram, &mut msgs);
    (p, ram, msgs)
}

/// Applies `msgs` on a fresh backup; returns its memory.
fn apply(msgs: &[Vec<u8>]) -> BackupRam {
    let mut backup = Backup::new(PAGES);
    let mut bram = BackupRam((0..PAGES).map(|_| Box::new([0xAA; PAGE_SIZE])).collect());
    for m in msgs {
        if let Message::Stream(bytes) = Message::decode(m).expect("decodes") {
            backup.on_stream(bytes, &mut bram).expect("applies");
        }
    }
    bram
}

#[test]
fn writes_through_stale_read_only_translations_are_spurious_not_guest_errors() {
    let (mut p, mut ram, _) = after_epoch_zero(false);
    assert!(
        ram.protected.is_empty(),
        "the sender lifted every protection"
    );
    assert_eq!(
        ram.stale.len() as u64,
        PAGES,
        "without a flush: all still cached"
    );
    // Between epochs (no epoch being sent), and during one.
    assert_eq!(guest_write(&mut p, &mut ram, 5, 1), FaultOutcome::Spurious);
    p.stun(&mut ram, &[5], 1, b"v", b"d").expect("epoch 1");
    ram.sync_tlb();
    drain(&mut p, &mut ram, &mut Vec::new());
    assert_eq!(guest_write(&mut p, &mut ram, 5, 2), FaultOutcome::Spurious);
    // After the backup is lost: every page writable, some still cached read-only.
    guest_write(&mut p, &mut ram, 9, 3);
    let dirty = ram.harvest();
    p.stun(&mut ram, &dirty, 2, b"v", b"d").expect("epoch 2");
    ram.sync_tlb();
    assert!(ram.protected.contains(&9) && ram.stale.is_empty());
    p.abandon(&mut ram, |_| {});
    ram.sync_tlb();
    assert!(ram.protected.is_empty());
    assert_eq!(guest_write(&mut p, &mut ram, 9, 4), FaultOutcome::Spurious);
    // Beyond guest RAM, or protected by somebody else: not the primary's.
    assert_eq!(p.on_write_fault(&mut ram, PAGES), Ok(FaultOutcome::NotOurs));
    ram.protected.insert(3);
    assert_eq!(p.on_write_fault(&mut ram, 3), Ok(FaultOutcome::NotOurs));
}

#[test]
fn a_cpu_without_dirty_flags_is_tracked_by_write_protection() {
    // The whole simulated pair, killed at random points, with harvests that find nothing.
    let faults = run_pairs(false);
    assert!(faults.tracked > 0, "no write was tracked by protection");
}

#[test]
fn write_tracking_protects_every_page_and_unprotects_on_abandon() {
    let (mut p, mut ram, mut msgs) = after_epoch_zero(true);
    assert_eq!(
        ram.protected.len() as u64,
        PAGES,
        "sent pages stay protected"
    );
    assert_eq!(guest_write(&mut p, &mut ram, 7, 70), FaultOutcome::Tracked);
    assert_eq!(
        guest_write(&mut p, &mut ram, 7, 71),
        FaultOutcome::NotOurs,
        "no fault"
    );
    assert!(ram.harvest().is_empty(), "the CPU sets no dirty flags");
    let report = p.stun(&mut ram, &[], 1, b"v", b"d").expect("epoch 1");
    assert_eq!(report.dirty, 1, "the tracked page is the dirty set");
    ram.sync_tlb();
    drain(&mut p, &mut ram, &mut msgs);
    assert_eq!(apply(&msgs).0[7], ram.pages[7]);
    assert_eq!(ram.protected.len() as u64, PAGES);
    p.abandon(&mut ram, |_| {});
    assert!(
        ram.protected.is_empty(),
        "unprotected, the guest writes freely"
    );
}

#[test]
fn refused_stuns_lose_no_dirty_page() {
    let (mut p, mut ram, mut msgs) = after_epoch_zero(false);
    guest_write(&mut p, &mut ram, 3, 30);
    guest_write(&mut p, &mut ram, 5, 50);
    let dirty = ram.harvest();
    // The vCPU state could not be captured: no epoch without it.
    assert_eq!(
        p.stun(&mut ram, &dirty, 1, b"", b"d"),
        Err(PrimaryError::NoVcpuState)
    );
    assert_eq!(p.current_epoch(), 1, "nothing checkpointed");
    assert!(
        p.sender_idle() && ram.protected.is_empty(),
        "nothing changed"
    );
    // A device state too large for its record: refused before anything changes.
    let huge = alloc::vec![0u8; crate::stream::MAX_DEVICE_STATE_LEN + 1];
    assert_eq!(
        p.stun(&mut ram, &[], 1, b"v", &huge),
        Err(PrimaryError::StateTooLarge {
            what: "device state",
            len: huge.len()
        })
    );
    assert_eq!(p.current_epoch(), 1, "nothing checkpointed");
    guest_write(&mut p, &mut ram, 9, 90);
    let dirty = ram.harvest();
    // A page beyond guest RAM is refused; the rest waits too.
    assert_eq!(
        p.stun(&mut ram, &[dirty[0], PAGES], 1, b"v", b"d"),
        Err(PrimaryError::NoSuchPage(PAGES))
    );
    let report = p.stun(&mut ram, &[], 2, b"v", b"d").expect("epoch 1");
    assert_eq!((report.epoch, report.dirty), (1, 3), "pages 3, 5 and 9");
    ram.sync_tlb();
    drain(&mut p, &mut ram, &mut msgs);
    let backup = apply(&msgs);
    for gfn in [3, 5, 9] {
        assert_eq!(backup.0[gfn], ram.pages[gfn], "page {gfn}");
    }
}
