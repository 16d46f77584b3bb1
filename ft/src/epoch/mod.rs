// SPDX-License-Identifier: MIT OR Apache-2.0
//! The epoch cycle's pure policy and bookkeeping (no hardware, host tested):
//!
//! - [`policy`]: how long the next epoch runs, from the workload (US20170262299: checkpoints at
//!   varying intervals).
//! - [`output`]: the output-commit buffer: guest output produced during epoch N is held until
//!   the backup acknowledges epoch N, then released in order.

pub mod output;
pub mod policy;
