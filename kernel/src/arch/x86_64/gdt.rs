// SPDX-License-Identifier: MIT OR Apache-2.0
//! Per-CPU GDT and TSS (Intel SDM Vol. 3A, 3.4.5 and 8.7 "Task Management in 64-bit Mode").
//!
//! Each CPU gets its own TSS, whose interrupt stack table gives the double-fault, NMI and
//! machine-check handlers known-good stacks (IST 1-3), so a kernel stack overflow is still
//! reported instead of becoming a triple fault.

use alloc::boxed::Box;
use x86_64::VirtAddr;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

use super::instr::{self, DescriptorTablePointer};
use super::percpu::PerCpu;

/// IST slot (1-based, as in the IDT gate) used for double faults.
pub const IST_DOUBLE_FAULT: u8 = 1;
/// IST slot used for NMIs.
pub const IST_NMI: u8 = 2;
/// IST slot used for machine checks.
pub const IST_MACHINE_CHECK: u8 = 3;
const IST_STACK_SIZE: usize = 16 * 1024;

/// A CPU's descriptor tables.
pub struct CpuTables {
    /// The GDT: null, kernel code, kernel data, TSS.
    pub gdt: GlobalDescriptorTable,
    /// Kernel code selector.
    pub code: SegmentSelector,
    /// Kernel data selector.
    pub data: SegmentSelector,
    /// TSS selector.
    pub tss_sel: SegmentSelector,
    /// Address of this CPU's TSS (for checks).
    pub tss_addr: u64,
}

/// Kernel code selector (same index on every CPU).
pub const KERNEL_CODE: u16 = 0x08;

fn ist_stack() -> VirtAddr {
    let stack: &'static mut [u8] = Box::leak(alloc::vec![0u8; IST_STACK_SIZE].into_boxed_slice());
    // Stacks grow down; keep the top 16-byte aligned.
    VirtAddr::new((stack.as_ptr() as u64 + IST_STACK_SIZE as u64) & !0xF)
}

/// Builds this CPU's GDT and TSS and loads them (GDTR, CS/DS/ES/SS, TR).
pub fn init(cpu: &'static PerCpu) {
    let tables = cpu.tables.call_once(|| {
        let mut tss = TaskStateSegment::new();
        tss.interrupt_stack_table[usize::from(IST_DOUBLE_FAULT - 1)] = ist_stack();
        tss.interrupt_stack_table[usize::from(IST_NMI - 1)] = ist_stack();
        tss.interrupt_stack_table[usize::from(IST_MACHINE_CHECK - 1)] = ist_stack();
        let tss: &'static TaskStateSegment = Box::leak(Box::new(tss));
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss_sel = gdt.append(Descriptor::tss_segment(tss));
        CpuTables {
            gdt,
            code,
            data,
            tss_sel,
            tss_addr: tss as *const _ as u64,
        }
    });
    debug_assert_eq!(tables.code.0, KERNEL_CODE);
    let ptr = DescriptorTablePointer {
        limit: tables.gdt.limit(),
        base: tables.gdt.entries().as_ptr() as u64,
    };
    // SAFETY: the GDT lives in this CPU's static per-CPU block (Once never moves or drops it),
    // its code/data selectors describe flat 64-bit segments, and the TSS descriptor points at a
    // leaked (never freed) TSS that is not loaded on any other CPU.
    unsafe {
        instr::lgdt(&ptr);
        instr::load_segments(tables.code.0, tables.data.0);
        instr::ltr(tables.tss_sel.0);
    }
}
