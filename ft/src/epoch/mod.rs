// SPDX-License-Identifier: MIT OR Apache-2.0
//! The epoch cycle's pure policy and bookkeeping (no hardware, host tested):
//!
//! - [`policy`]: how long the next epoch runs, from the workload (US20170262299: checkpoints at
//!   varying intervals).
//! - [`lazy`]: the lazy sender's plan per epoch: hot pages copied at the stun, cold pages
//!   write-protected and streamed from guest memory, copy-on-write stun buffers (US20170177441).
//! - [`output`]: the output-commit buffer: guest output produced during epoch N is held until
//!   the backup acknowledges epoch N, then released in order.
//! - [`items`]: what that buffer holds: console lines and network frames, each tagged.

pub mod items;
pub mod lazy;
pub mod output;
pub mod policy;
