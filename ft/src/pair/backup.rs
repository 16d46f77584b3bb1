// SPDX-License-Identifier: MIT OR Apache-2.0
//! The backup's side of the pair: checkpoint stream in, applied epochs and acknowledgements
//! out, and on takeover the state to resume the guest from.
//!
//! An epoch is applied only when the [`EpochAssembler`] has it whole with its digest, record
//! count and number verified, and only if it is the next epoch (none skipped) and carries the
//! vCPU and device state. Anything else is refused with a reason and changes nothing: the
//! backup keeps the last epoch it applied, which is what it resumes from.
//!
//! The one exception are pre-copy rounds ([`crate::pair::primary`]'s `precopy`): epochs
//! without any state, sent before the first checkpoint while a guest that already runs is
//! being protected. Their pages are applied (there is nothing resumable yet that they could
//! spoil), but they give the backup nothing to resume from; after the first checkpoint a
//! stateless epoch is refused like any other epoch missing its state.
//!
//! Output: each epoch carries the guest output it produced. The primary releases an epoch's
//! output when the acknowledgement reaches it; the backup learns that either from the
//! primary's `RELEASED` or, sooner, from the link confirming the primary received the
//! acknowledgement (the primary releases before its link confirms). On takeover the backup
//! releases the output of the applied epochs not known to be released. The only place a line
//! can appear twice is the moment between the primary's release and that confirmation leaving
//! it; nothing can be lost.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use super::{DEVICES, OUTPUT_DEVICE};
use crate::stream::{
    ApplyError, DecodeError, Epoch, EpochAssembler, HEADER_LEN, PageStore, StreamHeader,
};

/// Why the backup refused part of the stream. It keeps its last applied epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackupError {
    /// The stream header is malformed or names another guest RAM size.
    Header(&'static str),
    /// Stream bytes came before the header.
    NoHeader,
    /// An epoch failed decoding or verification.
    Rejected(DecodeError),
    /// The epoch is not the one after the last applied.
    OutOfOrder {
        /// Received.
        got: u64,
        /// Expected.
        expected: u64,
    },
    /// The epoch lacks the vCPU or device state.
    MissingState(u64),
    /// Its pages could not be applied.
    Apply(ApplyError),
}

impl fmt::Display for BackupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(why) => write!(f, "bad checkpoint stream header: {why}"),
            Self::NoHeader => f.write_str("checkpoint stream bytes before its header"),
            Self::Rejected(e) => write!(f, "checkpoint epoch rejected: {e}"),
            Self::OutOfOrder { got, expected } => {
                write!(f, "checkpoint epoch {got} received, {expected} expected")
            }
            Self::MissingState(e) => write!(f, "checkpoint epoch {e} lacks vCPU or device state"),
            Self::Apply(e) => write!(f, "checkpoint pages not applied: {e}"),
        }
    }
}

/// An epoch the backup applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The epoch.
    pub epoch: u64,
    /// Pages it carried.
    pub pages: usize,
    /// A checkpoint the guest can resume from (`false`: a pre-copy round).
    pub checkpoint: bool,
}

/// What the backup resumes the guest from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Takeover {
    /// The last applied epoch.
    pub epoch: u64,
    /// Guest time at its checkpoint.
    pub guest_time: u64,
    /// vCPU 0's state.
    pub vcpu: Vec<u8>,
    /// The devices' state.
    pub devices: Vec<u8>,
    /// Output of applied epochs that no `RELEASED` notice covered, oldest first: release it.
    pub unreleased_output: Vec<u8>,
}

/// The backup. See the [module docs](self).
#[derive(Debug)]
pub struct Backup {
    ram_pages: u64,
    assembler: Option<EpochAssembler>,
    last: Option<Takeover>,
    /// The epoch expected next.
    expected: u64,
    released_through: Option<u64>,
    /// Output of applied epochs not yet covered by `RELEASED`.
    unreleased: VecDeque<(u64, Vec<u8>)>,
}

impl Backup {
    /// A backup for a guest of `ram_pages` pages, waiting for the stream header.
    #[must_use]
    pub fn new(ram_pages: u64) -> Self {
        Self {
            ram_pages,
            assembler: None,
            last: None,
            expected: 0,
            released_through: None,
            unreleased: VecDeque::new(),
        }
    }

    /// The last applied epoch.
    #[must_use]
    pub fn last_applied(&self) -> Option<u64> {
        self.last.as_ref().map(|t| t.epoch)
    }

    /// Takes checkpoint stream bytes (one `STREAM` message body), applying each epoch that
    /// completes to `ram` and returning them: acknowledge each.
    ///
    /// # Errors
    /// The first refusal; epochs applied before it in the same bytes are still applied (the
    /// caller acknowledges [`last_applied`](Self::last_applied)).
    pub fn on_stream(
        &mut self,
        bytes: &[u8],
        ram: &mut dyn PageStore,
    ) -> Result<Vec<Applied>, BackupError> {
        if self.assembler.is_none() {
            if bytes.len() != HEADER_LEN {
                return Err(BackupError::NoHeader);
            }
            let header =
                StreamHeader::decode(bytes).map_err(|_| BackupError::Header("malformed"))?;
            if header.ram_pages() != self.ram_pages {
                return Err(BackupError::Header("it names another guest RAM size"));
            }
            self.assembler = Some(EpochAssembler::new(&header));
            return Ok(Vec::new());
        }
        let mut done = Vec::new();
        let mut input = bytes;
        while !input.is_empty() {
            let Some(assembler) = self.assembler.as_mut() else {
                break;
            };
            let fed = assembler.feed(input);
            input = input.get(fed.consumed..).unwrap_or_default();
            match fed.outcome {
                Some(Ok(epoch)) => {
                    let applied = self.apply(epoch, ram)?;
                    done.push(applied);
                }
                Some(Err(e)) => return Err(BackupError::Rejected(e)),
                None if fed.consumed == 0 => break,
                None => {}
            }
        }
        Ok(done)
    }

    fn apply(&mut self, mut epoch: Epoch, ram: &mut dyn PageStore) -> Result<Applied, BackupError> {
        if epoch.number != self.expected {
            return Err(BackupError::OutOfOrder {
                got: epoch.number,
                expected: self.expected,
            });
        }
        let precopy = self.last.is_none() && epoch.vcpus.is_empty() && epoch.devices.is_empty();
        if precopy {
            epoch.apply_pages(ram).map_err(BackupError::Apply)?;
            self.expected += 1;
            return Ok(Applied {
                epoch: epoch.number,
                pages: epoch.pages.len(),
                checkpoint: false,
            });
        }
        let (Some(vcpu), Some(devices)) = (epoch.vcpus.remove(&0), epoch.devices.remove(&DEVICES))
        else {
            return Err(BackupError::MissingState(epoch.number));
        };
        epoch.apply_pages(ram).map_err(BackupError::Apply)?;
        if let Some(output) = epoch.devices.remove(&OUTPUT_DEVICE) {
            self.unreleased.push_back((epoch.number, output));
        }
        self.expected += 1;
        self.last = Some(Takeover {
            epoch: epoch.number,
            guest_time: epoch.guest_time,
            vcpu,
            devices,
            unreleased_output: Vec::new(),
        });
        Ok(Applied {
            epoch: epoch.number,
            pages: epoch.pages.len(),
            checkpoint: true,
        })
    }

    /// The primary released the output of every epoch up to `epoch` (its `RELEASED`, or the
    /// link's confirmation that it received our acknowledgement of `epoch`).
    pub fn on_released(&mut self, epoch: u64) {
        if self.released_through.is_some_and(|r| r >= epoch) {
            return;
        }
        self.released_through = Some(epoch);
        while self.unreleased.front().is_some_and(|(e, _)| *e <= epoch) {
            self.unreleased.pop_front();
        }
    }

    /// The primary is gone: the state to resume from (the last applied epoch) and the output
    /// to release first, or `None` if no epoch was applied (nothing to resume).
    #[must_use]
    pub fn takeover(self) -> Option<Takeover> {
        let mut last = self.last?;
        for (_, bytes) in &self.unreleased {
            last.unreleased_output.extend_from_slice(bytes);
        }
        Some(last)
    }
}
