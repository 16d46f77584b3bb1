// SPDX-License-Identifier: MIT OR Apache-2.0
//! Pre-copy: protecting a guest that is already running (re-protection after a failover or
//! after the backup was lost) without stopping it for the whole of its memory.
//!
//! ```text
//!   round 0: every page, read live while the guest runs          (dirty log armed first)
//!   round k: the pages the guest wrote during round k-1          (harvested, log re-armed)
//!   ...      until the dirty set is small, stops shrinking, or the rounds run out
//!   stun:    the first checkpoint: the pages written during the last round, vCPU and devices
//! ```
//!
//! A round is an epoch on the stream without vCPU or device state: the backup applies its
//! pages but cannot resume from it ([`crate::pair::backup`]). Its pages are read from guest
//! memory as they are when sent ([`Source::Live`](crate::epoch::lazy::Source::Live)), neither
//! copied nor protected. That is sound because the caller harvests (and so re-arms) the dirty
//! log *before* each round begins: a page written after it was read is in the next round's
//! dirty set or in the checkpoint's, and is sent again. Reads cannot tear: the guest's vCPU is
//! stopped while the sender runs on its CPU.
//!
//! The guest runs unprotected until the first checkpoint: its output is not held during the
//! rounds (there is nothing the backup could resume that produced it).

use super::{GuestRam, Primary, PrimaryError, records};
use crate::epoch::lazy::LazyEpoch;

/// A pre-copy round begun.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrecopyRound {
    /// Its epoch number on the stream.
    pub epoch: u64,
    /// Pages it sends.
    pub pages: u64,
    /// Whether it is the full copy (every page).
    pub full: bool,
}

impl Primary {
    /// Begins a pre-copy round: the full copy the first time, then `dirty`, the pages the
    /// guest wrote since the previous round began (harvested, with the log re-armed, just
    /// now). The lazy sender streams it ([`Primary::pump_sender`]) while the guest runs.
    ///
    /// # Errors
    /// [`PrimaryError::NoPrecopy`] after the first checkpoint or when tracking writes by
    /// protection; [`PrimaryError::SenderBusy`] while the previous round is being sent;
    /// [`PrimaryError::NoSuchPage`] for a page beyond guest RAM. Nothing changes then, and
    /// the dirty pages (those in guest RAM) join the next round's or the checkpoint's.
    pub fn precopy(
        &mut self,
        ram: &mut dyn GuestRam,
        dirty: &[u64],
    ) -> Result<PrecopyRound, PrimaryError> {
        if self.checkpointed {
            return Err(PrimaryError::NoPrecopy("the guest is protected already"));
        }
        if self.tracked.is_some() {
            return Err(PrimaryError::NoPrecopy(
                "dirty pages are learnt from write faults, which need a checkpoint",
            ));
        }
        let (full, pages) = self.gather(dirty);
        let refusal = match self.sending {
            Some(_) => Some(PrimaryError::SenderBusy),
            None => self.beyond_ram(&pages),
        };
        if let Some(e) = refusal {
            self.carry(full, pages);
            return Err(e);
        }
        let started = (self.clock)();
        let (epoch, mut writer) = self.begin_epoch(0)?;
        records::write_dirty_lists(&mut writer, &pages)?;
        self.start_sending(writer, None, LazyEpoch::live(&pages), full, started);
        if pages.is_empty() {
            self.pump_sender(ram, 0)?;
        }
        Ok(PrecopyRound {
            epoch,
            pages: pages.len() as u64,
            full,
        })
    }

    /// Whether the guest has been checkpointed (pre-copy is over).
    #[must_use]
    pub fn checkpointed(&self) -> bool {
        self.checkpointed
    }
}
