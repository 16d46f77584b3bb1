// SPDX-License-Identifier: MIT OR Apache-2.0
//! The stun: when an epoch ends, harvest its dirty set, capture the vCPU and device state and
//! hand them to the checkpoint state machine, which copies hot pages and write-protects cold
//! ones; the nested TLB is flushed before the guest runs on. Each part is timed for the
//! statistics.

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use castor_ft::epoch::policy::EpochObservation;
use castor_ft::pair::primary::{DirtySource, PrimaryError, sort_unique};
use castor_ft::stream::PAGE_SIZE;

use super::Host;
use crate::arch::x86_64::time;
use crate::config::FreezePhase;
use crate::kprintln;
use crate::pair::memory::PrimaryRam;
use crate::pair::stats::StunTimes;
use crate::vmm::backend::Backend;
use crate::vmm::vcpu::Vcpu;

impl<B: Backend> Host<'_, B> {
    /// Stuns if the epoch is over and the previous one is all sent. While the sender is still
    /// busy the guest runs on (the epoch grows with the transfer, as the policy's swamped-link
    /// rule says) instead of waiting for it: a slow or dead backup never stops the guest.
    ///
    /// Frames held for the running epoch end it as soon as it has run `epoch_min` (the
    /// output-commit latency is the epoch's remaining length plus the checkpoint's transfer,
    /// US20170262299): a guest answering a client is not kept waiting a whole long epoch.
    pub(super) fn stun_if_due(&mut self) {
        // No lock: the running epoch's frames are the guest's CPU's own to know of, and only
        // its stun makes the sender busy.
        let frames_waiting = self.pipe.frames_waiting.load(Ordering::Acquire);
        if time::now_ns() >= self.epoch_end_with(frames_waiting) && self.sender_idle() {
            self.stun();
        }
    }

    /// When the running epoch ends: after its length, or after `epoch_min` once it holds
    /// frames (`frames_waiting`).
    pub(super) fn epoch_end_with(&self, frames_waiting: bool) -> u64 {
        let len = match frames_waiting {
            true => self.epoch_len.min(self.epoch_min),
            false => self.epoch_len,
        };
        self.epoch_start + len
    }

    /// Whether the previous epoch's pages are all on the stream (as the last holder of the
    /// checkpoint state published it: only a stun makes the sender busy).
    fn sender_idle(&self) -> bool {
        self.pipe.published.sender_idle()
    }

    /// Checkpoints the epoch that just ended. The guest is stopped (we are in its exit).
    pub(super) fn stun(&mut self) {
        let start = time::now_ns();
        let waited = !self.sender_idle();
        while self.protected && !self.sender_idle() {
            if self.pipe.running() {
                // Its CPU sends the pages; a lost backup ends the wait.
                self.take_news();
                core::hint::spin_loop();
            } else {
                self.pump_sender(usize::MAX);
                self.service_link();
            }
        }
        if !self.protected {
            return;
        }
        let sent_at = time::now_ns();
        self.harvest();
        let harvested = time::now_ns();
        // A failed capture (logged by the back end) is no checkpoint: the primary refuses an
        // empty state and keeps the epoch's dirty pages for the next stun.
        let state = self.vcpu.save_state();
        let cpu = match state.check() {
            Ok(()) => state.to_bytes(),
            Err(e) => {
                log::warn!("ft: primary: the vCPU state cannot be checkpointed: {e}");
                Vec::new()
            }
        };
        let devices = self.guest.save_devices();
        let captured = time::now_ns();
        let mut s = self.pipe.stun_lock();
        self.pipe
            .freeze_at(FreezePhase::Stun, s.primary.current_epoch());
        Self::move_outbox(&mut self.outbox, &mut s.primary);
        s.stats.net.add_counts(&core::mem::take(&mut self.net));
        let frames_waiting = self.pipe.frames_waiting.swap(false, Ordering::AcqRel);
        let guest_time = self.guest.chipset.now_ns();
        let mut ram = PrimaryRam(&mut self.guest.mem);
        // With a CPU beside the guest the hot pages are copied there, after the stun.
        s.primary
            .copy_hot_after_stun(self.protected && self.pipe.will_run());
        let report = s
            .primary
            .stun(&mut ram, &self.dirty, guest_time, &cpu, &devices);
        let flush = time::now_ns();
        if self.guest.mem.sync_tlb(&mut self.vcpu) {
            self.stale.flushed();
        }
        let resumed = time::now_ns();
        match report {
            Ok(report) => {
                if frames_waiting {
                    s.stats.held_frames(report.epoch);
                }
                s.stats.stunned(
                    &report,
                    &StunTimes {
                        wait: waited.then(|| sent_at - start),
                        harvest: harvested - sent_at,
                        state: captured - harvested,
                        flush: resumed - flush,
                        total: resumed - sent_at,
                    },
                    start.saturating_sub(self.epoch_start),
                );
                let observed = EpochObservation {
                    length_ns: start.saturating_sub(self.epoch_start),
                    dirty_pages: report.dirty,
                    link_bytes_per_sec: s.stats.link_bytes_per_sec(),
                    output_waiting: s.primary.output_waiting(),
                };
                self.epoch_len = self.policy.next(&observed).0;
            }
            Err(e @ PrimaryError::Stream(_)) => kprintln!("ft: primary: stun failed: {e}"),
            Err(e) => kprintln!(
                "ft: primary: epoch {} not checkpointed: {e}; its dirty pages join the next epoch",
                s.primary.current_epoch()
            ),
        }
        self.epoch_start = resumed;
        s.commit_waits = frames_waiting;
        s.stats.copies = s.primary.copy_stats();
        s.stats.maybe_report(
            resumed,
            &mut self.guest.mem,
            &self.dirty,
            self.pipe.running(),
        );
        // The epoch is the pipeline's to send: on its own CPU, from now (woken as the lock
        // goes, or started).
        self.pipe.stun_unlock(s);
        if self.protected {
            self.pipe.start();
        }
    }

    /// Gathers in `dirty` the pages written since the last harvest (by the guest: from the
    /// hardware log or the nested table walk, whose dirty flags it clears and so re-arms; by
    /// the guest's card), for a flush before the guest runs on. With write tracking, the
    /// primary learns the guest's writes from faults instead.
    pub(super) fn harvest(&mut self) {
        self.dirty.clear();
        match self.dirty_source {
            DirtySource::Log if self.vcpu.drain_dirty_log(&mut self.dirty) => {
                // The log is in first-write order. Ascending, the flags are cleared a table at
                // a time, and the checkpoint need not order the pages again.
                let ram_pages = self.guest.mem.size() / PAGE_SIZE as u64;
                sort_unique(&mut self.dirty, ram_pages, &mut self.sort_bits);
                self.guest.mem.clear_dirty(&self.dirty);
            }
            DirtySource::Log | DirtySource::Walk => self.guest.mem.harvest_dirty(&mut self.dirty),
            // The primary learns the dirty set from write faults.
            DirtySource::Protection => {}
        }
        self.dirty.append(&mut self.dma_dirty);
    }
}
