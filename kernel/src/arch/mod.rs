// SPDX-License-Identifier: MIT OR Apache-2.0
//! Architecture support.

pub mod x86_64;
