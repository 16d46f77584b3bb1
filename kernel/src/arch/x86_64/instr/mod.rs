// SPDX-License-Identifier: MIT OR Apache-2.0
//! Every privileged x86-64 instruction Castor uses, one small function each.
//!
//! Nothing outside this module issues `in`/`out`, `rdmsr`/`wrmsr`, control-register moves,
//! descriptor-table loads, `hlt`, `cli`/`sti` or `invlpg`. Each function states what the caller
//! must guarantee; the unsafe blocks here only restate that contract to the compiler.

use core::arch::asm;

pub mod svm;
pub mod vmx;

/// Reads a byte from an I/O port.
///
/// # Safety
/// The port must belong to a device the caller owns; reads can have side effects.
#[inline]
pub unsafe fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: the caller owns the port (see the function contract).
    unsafe {
        asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack, preserves_flags))
    };
    value
}

/// Writes a byte to an I/O port.
///
/// # Safety
/// The port must belong to a device the caller owns.
#[inline]
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller owns the port (see the function contract).
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    };
}

/// Reads a 32-bit value from an I/O port.
///
/// # Safety
/// The port must belong to a device the caller owns; reads can have side effects.
#[inline]
pub unsafe fn inl(port: u16) -> u32 {
    let value: u32;
    // SAFETY: the caller owns the port (see the function contract).
    unsafe {
        asm!("in eax, dx", out("eax") value, in("dx") port, options(nomem, nostack, preserves_flags))
    };
    value
}

/// Writes a 32-bit value to an I/O port.
///
/// # Safety
/// The port must belong to a device the caller owns.
#[inline]
pub unsafe fn outl(port: u16, value: u32) {
    // SAFETY: the caller owns the port (see the function contract).
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
    };
}

/// Reads a model-specific register.
///
/// # Safety
/// The MSR must exist on this CPU (else #GP).
#[inline]
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the caller guarantees the MSR exists.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Writes a model-specific register.
///
/// # Safety
/// The MSR must exist, the value must be valid for it, and the write must not break the
/// invariants the kernel relies on (e.g. EFER.LME, GS base of the current CPU).
#[inline]
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller guarantees the MSR and value are valid.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nostack, preserves_flags))
    };
}

/// Reads CR0.
#[inline]
pub fn read_cr0() -> u64 {
    let v: u64;
    // SAFETY: reading CR0 has no side effects; the kernel runs at CPL 0.
    unsafe { asm!("mov {}, cr0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Reads CR8: this CPU's local APIC task-priority class, TPR[7:4] (SDM Vol. 3A, 11.8.6).
#[inline]
pub fn read_cr8() -> u64 {
    let v: u64;
    // SAFETY: reading CR8 has no side effects; the kernel runs at CPL 0 in 64-bit mode.
    unsafe { asm!("mov {}, cr8", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Writes CR8 (the local APIC's task-priority class).
///
/// # Safety
/// Interrupts of a priority class at or below `value` are held back until it is lowered again;
/// `value` must fit in bits 3:0.
#[inline]
pub unsafe fn write_cr8(value: u64) {
    // SAFETY: the caller accepts the masking and passes no reserved bits.
    unsafe { asm!("mov cr8, {}", in(reg) value, options(nomem, nostack, preserves_flags)) };
}

/// Reads CR2 (the faulting linear address of the last page fault).
#[inline]
pub fn read_cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects; the kernel runs at CPL 0.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// The stack pointer (RSP) where this is inlined.
#[inline(always)]
pub fn stack_pointer() -> u64 {
    let v: u64;
    // SAFETY: copying RSP into a register has no side effects.
    unsafe { asm!("mov {}, rsp", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Reads CR3 (physical address of the active PML4 plus flags).
#[inline]
pub fn read_cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effects; the kernel runs at CPL 0.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Loads CR3, switching address spaces and flushing non-global TLB entries
/// (Intel SDM Vol. 3A, 4.10.4.1).
///
/// # Safety
/// `pml4_phys` must be a valid PML4 that maps the currently executing code, the stack and every
/// structure the kernel touches afterwards, with EFER.NXE set if any entry uses the NX bit.
#[inline]
pub unsafe fn write_cr3(pml4_phys: u64) {
    // SAFETY: the caller guarantees the new tables keep the kernel mapped.
    unsafe { asm!("mov cr3, {}", in(reg) pml4_phys, options(nostack, preserves_flags)) };
}

/// Writes CR0.
///
/// # Safety
/// The new value must keep protected mode, paging and write protection on (PE, PG, WP) and be
/// valid for the current mode (SDM Vol. 3A, 2.5 "Control Registers").
#[inline]
pub unsafe fn write_cr0(value: u64) {
    // SAFETY: the caller guarantees a valid value.
    unsafe { asm!("mov cr0, {}", in(reg) value, options(nostack, preserves_flags)) };
}

/// Writes CR4.
///
/// # Safety
/// The new value must keep PAE on and only set features this CPU supports.
#[inline]
pub unsafe fn write_cr4(value: u64) {
    // SAFETY: the caller guarantees a valid value.
    unsafe { asm!("mov cr4, {}", in(reg) value, options(nostack, preserves_flags)) };
}

/// Reads CR4.
#[inline]
pub fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: reading CR4 has no side effects; the kernel runs at CPL 0.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Invalidates the TLB entry for one linear address (Intel SDM Vol. 3A, 4.10.4.1).
#[inline]
pub fn invlpg(addr: u64) {
    // SAFETY: INVLPG only drops a cached translation; it cannot break memory safety.
    unsafe { asm!("invlpg [{}]", in(reg) addr, options(nostack, preserves_flags)) };
}

/// A pointer/limit pair as loaded by LGDT and LIDT.
#[repr(C, packed)]
pub struct DescriptorTablePointer {
    /// Size of the table in bytes, minus one.
    pub limit: u16,
    /// Linear address of the table.
    pub base: u64,
}

/// Loads the interrupt descriptor table register.
///
/// # Safety
/// The table must stay valid and unmodified-in-ways-that-break-gates for as long as it is loaded.
#[inline]
pub unsafe fn lidt(ptr: &DescriptorTablePointer) {
    // SAFETY: the caller guarantees the IDT outlives its use.
    unsafe { asm!("lidt [{}]", in(reg) ptr, options(readonly, nostack, preserves_flags)) };
}

/// Disables maskable interrupts on this CPU.
#[inline]
pub fn cli() {
    // SAFETY: masking interrupts cannot violate memory safety.
    unsafe { asm!("cli", options(nomem, nostack)) };
}

/// Enables maskable interrupts on this CPU.
///
/// # Safety
/// An IDT with handlers for every vector that can arrive must be loaded.
#[inline]
pub unsafe fn sti() {
    // SAFETY: the caller guarantees the IDT is ready.
    unsafe { asm!("sti", options(nomem, nostack)) };
}

/// Enables interrupts and halts until the next one, atomically (the STI shadow covers HLT, so an
/// interrupt arriving in between still wakes the CPU).
///
/// # Safety
/// As for [`sti`].
#[inline]
pub unsafe fn sti_hlt() {
    // SAFETY: the caller guarantees the IDT is ready.
    unsafe { asm!("sti; hlt", options(nomem, nostack)) };
}

/// Opens a one-instruction window for pending maskable interrupts (STI; NOP; CLI): the STI
/// shadow covers the NOP, then any pending interrupt is taken before CLI. Used after an SVM
/// #VMEXIT for a physical interrupt, which SVM leaves pending rather than acknowledging.
///
/// # Safety
/// As for [`sti`]; the caller must be able to handle any interrupt here.
#[inline]
pub unsafe fn take_pending_interrupts() {
    // SAFETY: the caller guarantees the IDT is ready.
    unsafe { asm!("sti", "nop", "cli", options(nomem, nostack)) };
}

/// Runs this CPU's NMI handler through the IDT's NMI gate (INT 2), as if an NMI had arrived.
/// Used after a VT-x VM exit caused by an NMI, which the CPU does not deliver through the IDT
/// (SDM Vol. 3C, 26.2); NMIs stay blocked from that exit until the next IRET (28.1), which the
/// handler's IRET provides. KVM hands host NMIs over the same way.
///
/// # Safety
/// The host IDT must be loaded with an NMI handler that returns (`trap`).
#[inline]
pub unsafe fn raise_nmi() {
    // SAFETY: the caller guarantees the NMI gate leads to a handler that returns; INT from
    // CPL 0 through a DPL-0 gate is allowed.
    unsafe { asm!("int 2", options(nomem)) };
}

/// Halts this CPU until the next interrupt (or forever with interrupts masked).
#[inline]
pub fn hlt() {
    // SAFETY: HLT only waits; with interrupts masked it stops the CPU for good.
    unsafe { asm!("hlt", options(nomem, nostack, preserves_flags)) };
}

/// Returns whether maskable interrupts are enabled (RFLAGS.IF).
#[inline]
pub fn interrupts_enabled() -> bool {
    let flags: u64;
    // SAFETY: reading RFLAGS has no side effects.
    unsafe { asm!("pushfq; pop {}", out(reg) flags, options(nomem, preserves_flags)) };
    flags & (1 << 9) != 0
}

/// Reads the time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: RDTSC is unprivileged and side-effect free (CR4.TSD is never set by Castor).
    unsafe {
        asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Spin-loop hint.
#[inline]
pub fn pause() {
    core::hint::spin_loop();
}

/// Halts this CPU for good: interrupts masked, HLT in a loop (an NMI or SMI returns to the loop).
pub fn halt_forever() -> ! {
    cli();
    loop {
        hlt();
    }
}

/// Loads the global descriptor table register.
///
/// # Safety
/// The table must stay valid for as long as it is loaded; the selectors in use must remain valid.
#[inline]
pub unsafe fn lgdt(ptr: &DescriptorTablePointer) {
    // SAFETY: the caller guarantees the GDT outlives its use.
    unsafe { asm!("lgdt [{}]", in(reg) ptr, options(readonly, nostack, preserves_flags)) };
}

/// Reloads CS with `code` (by a far return) and DS/ES/SS with `data`; FS/GS get the null
/// selector (their bases are set through MSRs).
///
/// # Safety
/// Both selectors must index valid 64-bit code / data descriptors of the loaded GDT.
#[inline]
pub unsafe fn load_segments(code: u16, data: u16) {
    // SAFETY: the caller guarantees the selectors are valid in the current GDT.
    unsafe {
        asm!(
            "push {code}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {data:x}",
            "mov es, {data:x}",
            "mov ss, {data:x}",
            code = in(reg) u64::from(code),
            data = in(reg) data,
            tmp = lateout(reg) _,
            options(preserves_flags),
        )
    };
}

/// Loads the task register.
///
/// # Safety
/// `selector` must index an available 64-bit TSS descriptor in the loaded GDT whose TSS stays
/// valid for as long as it is loaded.
#[inline]
pub unsafe fn ltr(selector: u16) {
    // SAFETY: the caller guarantees the selector names a valid TSS.
    unsafe { asm!("ltr {0:x}", in(reg) selector, options(nostack, preserves_flags)) };
}

/// Reads the task register's selector.
#[inline]
pub fn str() -> u16 {
    let sel: u16;
    // SAFETY: STR only reads the task register.
    unsafe { asm!("str {0:x}", out(reg) sel, options(nomem, nostack, preserves_flags)) };
    sel
}

/// Reads the GDTR (base, limit).
#[inline]
pub fn sgdt() -> (u64, u16) {
    let mut ptr = DescriptorTablePointer { limit: 0, base: 0 };
    // SAFETY: SGDT stores 10 bytes into `ptr`, which is exactly that large.
    unsafe { asm!("sgdt [{}]", in(reg) &mut ptr, options(nostack, preserves_flags)) };
    (ptr.base, ptr.limit)
}

/// Reads the IDTR (base, limit).
#[inline]
pub fn sidt() -> (u64, u16) {
    let mut ptr = DescriptorTablePointer { limit: 0, base: 0 };
    // SAFETY: SIDT stores 10 bytes into `ptr`, which is exactly that large.
    unsafe { asm!("sidt [{}]", in(reg) &mut ptr, options(nostack, preserves_flags)) };
    (ptr.base, ptr.limit)
}

/// Reads a 32-bit value from a memory-mapped device register.
///
/// # Safety
/// `addr` must be a mapped, uncached device register that the caller owns.
#[inline]
pub unsafe fn mmio_read32(addr: u64) -> u32 {
    // SAFETY: the caller guarantees `addr` is a valid MMIO register.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// Writes a 32-bit value to a memory-mapped device register.
///
/// # Safety
/// `addr` must be a mapped, uncached device register that the caller owns.
#[inline]
pub unsafe fn mmio_write32(addr: u64, value: u32) {
    // SAFETY: the caller guarantees `addr` is a valid MMIO register.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
}
