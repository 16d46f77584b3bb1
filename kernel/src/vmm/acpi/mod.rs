// SPDX-License-Identifier: MIT OR Apache-2.0
//! The ACPI tables a guest finds in its memory (ACPI 6.5, chapter 5 "ACPI Software
//! Programming Model").

pub mod aml;
