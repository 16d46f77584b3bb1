// SPDX-License-Identifier: MIT OR Apache-2.0
//! Guest write faults on the primary, and giving up protection when the backup is gone.
//!
//! A write fault on guest RAM is one of:
//! - a page the lazy sender still needs ([`FaultOutcome::Copied`], [`FaultOutcome::SentFirst`]);
//! - with write tracking, a page's first write since the stun ([`FaultOutcome::Tracked`]);
//! - a *spurious* fault ([`FaultOutcome::Spurious`]): the nested table lets the guest write the
//!   page, but the processor used a translation it cached while the page was read-only. Lifting
//!   a protection does not flush the nested TLB (neither architecture requires it: Intel SDM
//!   Vol. 3C, 29.4.3.3, "an EPT violation that would not otherwise occur" may happen instead;
//!   KVM's `RET_PF_SPURIOUS`), so such faults are expected after the sender, a write fault or
//!   [`Primary::abandon`] unprotected a page. The guest simply resumes;
//! - anything else ([`FaultOutcome::NotOurs`]): beyond guest RAM, or protected by nobody the
//!   primary knows of.

use super::{FaultOutcome, GuestRam, Primary, PrimaryError};
use crate::epoch::lazy::{Source, WriteVerdict};

impl Primary {
    /// The guest wrote page `gfn` and the write faulted. For [`FaultOutcome::Copied`],
    /// [`FaultOutcome::SentFirst`] and [`FaultOutcome::Tracked`] the page is writable again
    /// (the caller flushes the nested TLB if the protections it tracks ask for it); for
    /// [`FaultOutcome::Spurious`] nothing changed; either way the write then proceeds.
    ///
    /// # Errors
    /// A stream error while sending the page first.
    pub fn on_write_fault(
        &mut self,
        ram: &mut dyn GuestRam,
        gfn: u64,
    ) -> Result<FaultOutcome, PrimaryError> {
        if gfn >= self.ram_pages {
            return Ok(FaultOutcome::NotOurs);
        }
        let verdict = match &mut self.sending {
            Some(sending) => sending.lazy.on_write(gfn, &mut self.pages.pool),
            None => WriteVerdict::Proceed,
        };
        let outcome = match verdict {
            WriteVerdict::CopyTo(n) => {
                self.pages.copy_in(ram, gfn, n)?;
                FaultOutcome::Copied
            }
            WriteVerdict::SendNow => {
                if let Some(sending) = &mut self.sending {
                    self.pages.send(sending, ram, gfn, Source::Guest)?;
                }
                self.complete_if_done()?;
                FaultOutcome::SentFirst
            }
            WriteVerdict::Proceed if !ram.is_protected(gfn) => return Ok(FaultOutcome::Spurious),
            WriteVerdict::Proceed if self.tracked.is_none() => return Ok(FaultOutcome::NotOurs),
            WriteVerdict::Proceed => FaultOutcome::Tracked,
        };
        if let Some(tracked) = &mut self.tracked {
            tracked.push(gfn);
        }
        ram.set_protected(gfn, false);
        Ok(outcome)
    }

    /// The backup is gone: stops checkpointing, makes every page writable again, and passes all
    /// held output to `release` (the guest runs unprotected from now on; later output need not
    /// be held). Writes through translations still cached read-only fault spuriously.
    pub fn abandon(&mut self, ram: &mut dyn GuestRam, mut release: impl FnMut(&[u8])) {
        if let Some(mut sending) = self.sending.take() {
            while let Some((gfn, _)) = sending.lazy.next() {
                if sending.lazy.sent(gfn, &mut self.pages.pool) {
                    ram.set_protected(gfn, false);
                }
            }
        }
        if self.tracked.take().is_some() {
            for gfn in 0..self.ram_pages {
                if ram.is_protected(gfn) {
                    ram.set_protected(gfn, false);
                }
            }
        }
        self.carried.clear();
        let ended = self.output.end_epoch();
        let _ = self.output.acknowledge(ended, &mut release);
        self.control.clear();
        self.idle_sink = Some(super::chunks::Chunks::default());
    }
}
