// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU exception reports (Intel SDM Vol. 3A, 7.15 "Exception and Interrupt Reference").
//!
//! An exception in the hypervisor itself is a bug: the report names the vector, error code, RIP,
//! CR2/CR3 and every general register, then that CPU halts (other CPUs keep running).

use super::{instr, percpu, trap::TrapFrame};
use crate::console;

/// Mnemonic and description of exception `vector`.
pub fn name(vector: u64) -> (&'static str, &'static str) {
    match vector {
        0 => ("#DE", "divide error"),
        1 => ("#DB", "debug"),
        2 => ("NMI", "non-maskable interrupt"),
        3 => ("#BP", "breakpoint"),
        4 => ("#OF", "overflow"),
        5 => ("#BR", "bound range exceeded"),
        6 => ("#UD", "invalid opcode"),
        7 => ("#NM", "device not available"),
        8 => ("#DF", "double fault"),
        10 => ("#TS", "invalid TSS"),
        11 => ("#NP", "segment not present"),
        12 => ("#SS", "stack-segment fault"),
        13 => ("#GP", "general protection"),
        14 => ("#PF", "page fault"),
        16 => ("#MF", "x87 floating-point error"),
        17 => ("#AC", "alignment check"),
        18 => ("#MC", "machine check"),
        19 => ("#XM", "SIMD floating-point"),
        20 => ("#VE", "virtualization exception"),
        21 => ("#CP", "control protection"),
        28 => ("#HV", "hypervisor injection"),
        29 => ("#VC", "VMM communication"),
        30 => ("#SX", "security exception"),
        _ => ("#??", "reserved"),
    }
}

bitflags::bitflags! {
    /// Page-fault error code (SDM Vol. 3A, 5.7 "Page-Fault Exceptions", Figure 5-12).
    #[derive(Debug, Clone, Copy)]
    struct PageFaultError: u64 {
        /// The page was present (protection violation), else not present.
        const PRESENT = 1 << 0;
        /// The access was a write.
        const WRITE = 1 << 1;
        /// The access came from user mode.
        const USER = 1 << 2;
        /// A reserved bit was set in a paging-structure entry.
        const RESERVED_BIT = 1 << 3;
        /// The access was an instruction fetch.
        const INSTRUCTION_FETCH = 1 << 4;
    }
}

/// Decodes a page-fault error code into (kind, access, mode) words.
fn page_fault_cause(error: u64) -> (&'static str, &'static str, &'static str) {
    let e = PageFaultError::from_bits_truncate(error);
    let kind = if e.contains(PageFaultError::RESERVED_BIT) {
        "reserved bit set"
    } else if e.contains(PageFaultError::PRESENT) {
        "protection violation"
    } else {
        "not present"
    };
    let access = if e.contains(PageFaultError::INSTRUCTION_FETCH) {
        "instruction fetch"
    } else if e.contains(PageFaultError::WRITE) {
        "write"
    } else {
        "read"
    };
    let mode = if e.contains(PageFaultError::USER) {
        "user"
    } else {
        "supervisor"
    };
    (kind, access, mode)
}

/// Prints the full report for an exception taken on this CPU and halts the CPU.
pub fn report_and_halt(f: &TrapFrame) -> ! {
    let cpu = percpu::current_index();
    let (mnemonic, what) = name(f.vector);
    let cr2 = instr::read_cr2();
    console::emergency(format_args!(
        "EXCEPTION {mnemonic} (vector {}) on cpu {cpu}: {what}\n\
         error={:#x} RIP={:#018x} CS={:#06x} RFLAGS={:#018x}\n\
         RSP={:#018x} SS={:#06x} CR2={:#018x} CR3={:#018x}\n\
         RAX={:#018x} RBX={:#018x} RCX={:#018x} RDX={:#018x}\n\
         RSI={:#018x} RDI={:#018x} RBP={:#018x} R8 ={:#018x}\n\
         R9 ={:#018x} R10={:#018x} R11={:#018x} R12={:#018x}\n\
         R13={:#018x} R14={:#018x} R15={:#018x}\n",
        f.vector,
        f.error_code,
        f.rip,
        f.cs,
        f.rflags,
        f.rsp,
        f.ss,
        cr2,
        instr::read_cr3(),
        f.rax,
        f.rbx,
        f.rcx,
        f.rdx,
        f.rsi,
        f.rdi,
        f.rbp,
        f.r8,
        f.r9,
        f.r10,
        f.r11,
        f.r12,
        f.r13,
        f.r14,
        f.r15,
    ));
    if let Some(size) = super::stack::overflowed(cr2) {
        console::emergency(format_args!(
            "kernel stack overflow on cpu {cpu}: it ran into the guard page at {cr2:#x} below \
             its {} KiB stack\n",
            size / 1024
        ));
    }
    if f.vector == 14 {
        let (kind, access, mode) = page_fault_cause(f.error_code);
        console::emergency(format_args!(
            "page fault: {kind}, {access} in {mode} mode at {cr2:#x}\n"
        ));
    }
    console::emergency(format_args!("cpu {cpu} halted\n"));
    instr::halt_forever()
}
