// SPDX-License-Identifier: MIT OR Apache-2.0
//! Documented upper bounds on every length the decoder accepts.
//!
//! Together with "never more than the bytes actually present", these bound every allocation the
//! decoder makes from stream-supplied numbers. A staged epoch holds at most: one page per guest
//! frame, [`MAX_VCPUS`] vCPU blobs, [`MAX_DEVICES_PER_EPOCH`] device blobs and one dirty-list
//! entry per guest frame; the assembler's record buffer never exceeds [`MAX_RECORD_LEN`].

use super::page::PAGE_SIZE;
use super::record::{
    EPOCH_BEGIN_BODY_LEN, EPOCH_END_BODY_LEN, PAGE_HEADER_LEN, RECORD_HEADER_LEN, STATE_HEADER_LEN,
};

/// vCPU indices must be below this.
pub const MAX_VCPUS: u32 = 256;

/// Largest opaque vCPU state blob (XSAVE area with AVX-512 is about 11 KiB; the rest is
/// VMCS/VMCB guest state).
pub const MAX_VCPU_STATE_LEN: usize = 64 * 1024;

/// Largest opaque device state blob.
pub const MAX_DEVICE_STATE_LEN: usize = 64 * 1024;

/// Most device state records in one epoch.
pub const MAX_DEVICES_PER_EPOCH: usize = 256;

/// Most frame numbers in one `DirtyPageList` record (an epoch may hold several records).
pub const MAX_DIRTY_GFNS_PER_RECORD: usize = 64 * 1024;

/// Largest body of an unknown optional record (it is skipped, but must still be framed).
pub const MAX_OPTIONAL_BODY_LEN: usize = 1024 * 1024;

/// Largest guest RAM size a stream header may declare, in pages (256 TiB).
pub const MAX_RAM_PAGES: u64 = 1 << 36;

/// Largest record on the wire, header and padding included: the most the assembler buffers.
pub const MAX_RECORD_LEN: usize = RECORD_HEADER_LEN + MAX_OPTIONAL_BODY_LEN;

// Every known record's largest body fits the general bound (so MAX_RECORD_LEN bounds them all),
// and the general bound is aligned (so it needs no padding).
const _: () = {
    assert!(STATE_HEADER_LEN + MAX_VCPU_STATE_LEN <= MAX_OPTIONAL_BODY_LEN);
    assert!(STATE_HEADER_LEN + MAX_DEVICE_STATE_LEN <= MAX_OPTIONAL_BODY_LEN);
    assert!(PAGE_HEADER_LEN + PAGE_SIZE <= MAX_OPTIONAL_BODY_LEN);
    assert!(8 * MAX_DIRTY_GFNS_PER_RECORD <= MAX_OPTIONAL_BODY_LEN);
    assert!(EPOCH_BEGIN_BODY_LEN <= MAX_OPTIONAL_BODY_LEN);
    assert!(EPOCH_END_BODY_LEN <= MAX_OPTIONAL_BODY_LEN);
    assert!(MAX_OPTIONAL_BODY_LEN.is_multiple_of(8));
    assert!(MAX_OPTIONAL_BODY_LEN <= u32::MAX as usize);
};
