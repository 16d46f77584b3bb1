// SPDX-License-Identifier: MIT OR Apache-2.0
//! The parts of a stun that [`StunReport`] times on the primary's clock: the copy of hot pages
//! into stun buffers, the write protection of cold ones, and the planning (the rest).

use alloc::vec::Vec;
use core::cell::Cell;

use super::super::primary::{GuestRam, Primary, PrimaryConfig, StunReport};
use super::{SimRam, config};
use crate::stream::PageBuf;

std::thread_local! {
    /// The test clock, in nanoseconds: advanced only by [`TimedRam`].
    static NOW: Cell<u64> = const { Cell::new(0) };
}

fn now() -> u64 {
    NOW.with(Cell::get)
}

fn advance(ns: u64) {
    NOW.with(|c| c.set(c.get() + ns));
}

/// Reading a page costs 1000 ns on the test clock, changing its protection 7.
const READ_NS: u64 = 1000;
const PROTECT_NS: u64 = 7;

struct TimedRam(SimRam);

impl GuestRam for TimedRam {
    fn page(&self, gfn: u64) -> Option<&PageBuf> {
        advance(READ_NS);
        self.0.page(gfn)
    }

    fn set_protected(&mut self, gfn: u64, protected: bool) {
        advance(PROTECT_NS);
        self.0.set_protected(gfn, protected);
    }

    fn is_protected(&self, gfn: u64) -> bool {
        self.0.is_protected(gfn)
    }
}

/// Checkpoints `dirty` and sends the whole epoch.
fn stun_and_send(p: &mut Primary, ram: &mut TimedRam, dirty: &[u64]) -> StunReport {
    let report = p.stun(ram, dirty, 0, b"v", b"d").expect("stun");
    ram.0.sync_tlb();
    while !p.sender_idle() {
        p.pump_sender(ram, usize::MAX).expect("pump");
        while p.next_message().is_some() {}
    }
    report
}

#[test]
fn the_stun_report_times_the_copy_and_the_protection_apart() {
    let mut p = Primary::new(&PrimaryConfig {
        clock: now,
        digests: false,
        ..config(8)
    })
    .expect("primary");
    let mut ram = TimedRam(SimRam::new());
    stun_and_send(&mut p, &mut ram, &[]);
    // Page 5 is written every epoch, so it is hot (copied) from its third; pages 9-11 are
    // written once, so they are cold (write-protected for the lazy sender).
    for _ in 0..3 {
        stun_and_send(&mut p, &mut ram, &[5]);
    }
    let r = stun_and_send(&mut p, &mut ram, &[5, 9, 10, 11]);
    assert_eq!((r.copied, r.protected), (1, 3));
    assert_eq!(r.copy_ns, READ_NS, "one page read to copy it");
    assert_eq!(r.protect_ns, 3 * PROTECT_NS);
    assert_eq!(r.plan_ns, 0, "nothing else touched guest memory");
}

#[test]
fn a_clock_that_reads_zero_reports_zeros() {
    let mut p = Primary::new(&config(8)).expect("primary");
    let mut ram = TimedRam(SimRam::new());
    stun_and_send(&mut p, &mut ram, &[]);
    let r = stun_and_send(&mut p, &mut ram, &[1, 2, 3]);
    assert_eq!((r.copy_ns, r.protect_ns, r.plan_ns), (0, 0, 0));
}

#[test]
fn the_stun_leaves_its_records_to_the_sender() {
    let mut p = Primary::new(&config(8)).expect("primary");
    let mut ram = TimedRam(SimRam::new());
    stun_and_send(&mut p, &mut ram, &[]);
    while p.next_message().is_some() {}
    // A state of 3,000 bytes and 40 dirty pages: nothing of the epoch is encoded at the stun
    // (the header of each epoch aside)...
    let state = [7u8; 3000];
    let dirty: Vec<u64> = (10..50).collect();
    p.stun(&mut ram, &dirty, 0, &state, b"d").expect("stun");
    let at_stun = p.stream_queued();
    assert!(at_stun < 100, "{at_stun} bytes encoded in the stun");
    // ...the sender writes the records ahead of the first page it sends.
    p.pump_sender(&mut ram, 1).expect("pump");
    assert!(
        p.stream_queued() > at_stun + state.len(),
        "the state record and a page: {} bytes",
        p.stream_queued()
    );
}
