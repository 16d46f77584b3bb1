// SPDX-License-Identifier: MIT OR Apache-2.0
//! An epoch's state and dirty-list records, captured at its stun and written to the stream by
//! the sender, ahead of the epoch's first page: copying and hashing them is the sender's work,
//! not the stun's (with a CPU beside the guest, that CPU's).

use alloc::vec::Vec;

use super::{Chunks, PrimaryError};
use crate::pair::{DEVICES, OUTPUT_DEVICE};
use crate::stream::{EpochWriter, MAX_DIRTY_GFNS_PER_RECORD};

/// What the stun captured, in stream order: the vCPU state, the device state, the output the
/// epoch produced, its dirty pages (ascending, each once, all in guest RAM: the stun checked).
#[derive(Debug)]
pub(super) struct Records {
    pub(super) vcpu: Vec<u8>,
    pub(super) devices: Vec<u8>,
    pub(super) output: Vec<u8>,
    pub(super) dirty: Vec<u64>,
}

impl Records {
    /// Writes the records through `writer`.
    ///
    /// # Errors
    /// A stream error (a bug: the stun checked every bound).
    pub(super) fn write(self, writer: &mut EpochWriter<Chunks>) -> Result<(), PrimaryError> {
        writer.vcpu_state(0, &self.vcpu)?;
        writer.device_state(DEVICES, &self.devices)?;
        if !self.output.is_empty() {
            writer.device_state(OUTPUT_DEVICE, &self.output)?;
        }
        write_dirty_lists(writer, &self.dirty)
    }
}

/// Writes `dirty` (ascending) as dirty-page-list records of at most
/// [`MAX_DIRTY_GFNS_PER_RECORD`] frames each.
///
/// # Errors
/// A stream error.
pub(super) fn write_dirty_lists(
    writer: &mut EpochWriter<Chunks>,
    dirty: &[u64],
) -> Result<(), PrimaryError> {
    for part in dirty.chunks(MAX_DIRTY_GFNS_PER_RECORD) {
        writer.dirty_page_list(part)?;
    }
    Ok(())
}
