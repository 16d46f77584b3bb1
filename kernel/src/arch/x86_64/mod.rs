// SPDX-License-Identifier: MIT OR Apache-2.0
//! x86-64 support: privileged instructions, descriptor tables, interrupts, APICs, timers and
//! multiprocessor start-up.

pub mod apic;
pub mod cmos;
pub mod cpu;
pub mod exception;
pub mod gdt;
pub mod instr;
pub mod ioapic;
pub mod irq;
pub mod machine;
pub mod msr;
pub mod percpu;
pub mod pic;
pub mod pit;
pub mod pm_timer;
pub mod smp;
pub mod stack;
pub mod time;
pub mod trap;
pub mod vector;
pub mod worker;
