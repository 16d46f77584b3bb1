// SPDX-License-Identifier: MIT OR Apache-2.0
//! The VMCB control area (AMD64 APM Vol. 2, Table B-1) and the encodings of its smaller
//! fields: TLB control, virtual-interrupt control, interrupt shadow, nested paging, clean bits.

use core::fmt;

use bitflags::bitflags;

use super::{EventInfo, ExitCode, InterceptMisc1, InterceptMisc2, InterceptMisc3};

/// TLB_CONTROL values, VMCB offset 0x05C (APM Vol. 2, Table B-1 and 15.16.1 "TLB Flush").
/// Values 3 and 7 need flush-by-ASID (CPUID Fn8000_000A EDX bit 6); QEMU TCG accepts 3
/// without advertising it, and flushes everything on every VMRUN anyway.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlbControl(pub u8);

impl TlbControl {
    /// Do nothing.
    pub const DO_NOTHING: TlbControl = TlbControl(0);
    /// Flush the entire TLB, all ASIDs (host entries too) on VMRUN.
    pub const FLUSH_ALL: TlbControl = TlbControl(1);
    /// Flush this guest's TLB entries (its ASID) on VMRUN.
    pub const FLUSH_GUEST: TlbControl = TlbControl(3);
    /// Flush this guest's non-global TLB entries on VMRUN.
    pub const FLUSH_GUEST_NON_GLOBAL: TlbControl = TlbControl(7);
}

/// Bits of the virtual-interrupt control word, VMCB offset 0x060 (APM Vol. 2, Table B-1 and
/// 15.21 "Interrupt and LocalAPIC Support"). Use the [`ControlArea`] accessors.
pub mod int_ctl {
    /// V_TPR: the guest's virtual TPR (bits 3:0 used; 7:4 SBZ).
    pub const V_TPR_MASK: u64 = 0xF;
    /// V_IRQ: a virtual interrupt is pending. The CPU clears it when the guest takes it.
    pub const V_IRQ: u64 = 1 << 8;
    /// VGIF: the virtual global interrupt flag (with [`VGIF_ENABLE`]).
    pub const VGIF: u64 = 1 << 9;
    /// V_INTR_PRIO: priority of the pending virtual interrupt (bits 19:16).
    pub const V_INTR_PRIO_SHIFT: u32 = 16;
    /// V_INTR_PRIO field mask.
    pub const V_INTR_PRIO_MASK: u64 = 0xF << V_INTR_PRIO_SHIFT;
    /// V_IGN_TPR: the pending virtual interrupt ignores the virtual TPR.
    pub const V_IGN_TPR: u64 = 1 << 20;
    /// V_INTR_MASKING: virtualize EFLAGS.IF and the TPR (the host's IF governs physical
    /// interrupts while the guest runs; CR8 accesses use V_TPR).
    pub const V_INTR_MASKING: u64 = 1 << 24;
    /// Virtual GIF enabled.
    pub const VGIF_ENABLE: u64 = 1 << 25;
    /// AVIC enabled.
    pub const AVIC_ENABLE: u64 = 1 << 31;
    /// V_INTR_VECTOR: vector of the pending virtual interrupt (bits 39:32).
    pub const V_INTR_VECTOR_SHIFT: u32 = 32;
    /// V_INTR_VECTOR field mask.
    pub const V_INTR_VECTOR_MASK: u64 = 0xFF << V_INTR_VECTOR_SHIFT;
}

bitflags! {
    /// Guest interrupt state, VMCB offset 0x068 (APM Vol. 2, Table B-1).
    #[repr(transparent)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct InterruptState: u64 {
        /// The guest is in an interrupt shadow (after STI or MOV SS): no interrupt may be taken
        /// before the next instruction completes.
        const INTERRUPT_SHADOW = 1 << 0;
        /// The guest's RFLAGS.IF, written by the CPU at #VMEXIT (ignored by VMRUN).
        const GUEST_INTERRUPT_MASK = 1 << 1;
    }
}

bitflags! {
    /// Nested paging and encryption enables, VMCB offset 0x090 (APM Vol. 2, Table B-1).
    #[repr(transparent)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct NestedControl: u64 {
        /// NP_ENABLE: nested paging (N_CR3 holds the root).
        const NP_ENABLE = 1 << 0;
        /// Secure Encrypted Virtualization.
        const SEV_ENABLE = 1 << 1;
        /// SEV with Encrypted State.
        const SEV_ES_ENABLE = 1 << 2;
    }
}

bitflags! {
    /// Virtualization extensions, VMCB offset 0x0B8 (APM Vol. 2, Table B-1).
    #[repr(transparent)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct VirtExt: u64 {
        /// LBR virtualization (DBGCTL and the LBR MSRs switched through the save area).
        const LBR_VIRTUALIZATION = 1 << 0;
        /// Virtualized VMSAVE/VMLOAD (guest VMSAVE/VMLOAD through nested paging).
        const VIRTUAL_VMSAVE_VMLOAD = 1 << 1;
    }
}

bitflags! {
    /// VMCB clean bits, VMCB offset 0x0C0 (APM Vol. 2, 15.15.3 "VMCB Clean Field"): a set bit
    /// tells VMRUN the group is unchanged since the last VMRUN with this VMCB on this CPU.
    /// Leaving them all 0 is always correct (and QEMU TCG has no clean-bit support).
    #[repr(transparent)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct CleanBits: u32 {
        /// Intercept vectors, TSC offset, pause filter count and threshold.
        const INTERCEPTS = 1 << 0;
        /// IOPM_BASE_PA, MSRPM_BASE_PA.
        const IOPM = 1 << 1;
        /// Guest ASID.
        const ASID = 1 << 2;
        /// V_TPR, V_IRQ, V_INTR_PRIO, V_IGN_TPR, V_INTR_MASKING, V_INTR_VECTOR (offset 0x060).
        const TPR = 1 << 3;
        /// NP_ENABLE, N_CR3, G_PAT.
        const NP = 1 << 4;
        /// CR0, CR3, CR4, EFER.
        const CRX = 1 << 5;
        /// DR6, DR7.
        const DRX = 1 << 6;
        /// GDTR, IDTR.
        const DT = 1 << 7;
        /// CS, DS, SS, ES, CPL.
        const SEG = 1 << 8;
        /// CR2.
        const CR2 = 1 << 9;
        /// DBGCTL, BR_FROM, BR_TO, LASTEXCPFROM, LASTEXCPTO.
        const LBR = 1 << 10;
        /// AVIC APIC_BAR, backing page, logical and physical table pointers.
        const AVIC = 1 << 11;
    }
}

/// The VMCB control area (APM Vol. 2, Table B-1), 0x400 bytes.
#[repr(C)]
pub struct ControlArea {
    /// Intercept reads of CR`n` (bit `n`).
    pub intercept_cr_read: u16, // +0x000
    /// Intercept writes of CR`n` (bit `n`).
    pub intercept_cr_write: u16, // +0x002
    /// Intercept reads of DR`n` (bit `n`).
    pub intercept_dr_read: u16, // +0x004
    /// Intercept writes of DR`n` (bit `n`).
    pub intercept_dr_write: u16, // +0x006
    /// Intercept exception vector `v` (bit `v`).
    pub intercept_exceptions: u32, // +0x008
    /// Instruction and event intercepts, first word.
    pub intercept_misc1: InterceptMisc1, // +0x00C
    /// Instruction intercepts, second word (VMRUN must be set).
    pub intercept_misc2: InterceptMisc2, // +0x010
    /// Instruction intercepts, third word.
    pub intercept_misc3: InterceptMisc3, // +0x014
    pub(super) _reserved_018: [u8; 0x24], // +0x018
    /// PAUSE filter threshold (cycles between PAUSEs that restart the count).
    pub pause_filter_threshold: u16, // +0x03C
    /// PAUSE filter count (PAUSEs before the intercept fires).
    pub pause_filter_count: u16, // +0x03E
    /// Physical address of the I/O permission map ([`super::IOPM_SIZE`], 4 KiB aligned).
    pub iopm_base_pa: u64, // +0x040
    /// Physical address of the MSR permission map ([`super::MSRPM_SIZE`], 4 KiB aligned).
    pub msrpm_base_pa: u64, // +0x048
    /// Added to the host TSC for the guest's RDTSC/RDTSCP/TSC MSR reads.
    pub tsc_offset: u64, // +0x050
    /// Guest ASID (non-zero; ASID 0 is the host's).
    pub guest_asid: u32, // +0x058
    /// TLB flush on VMRUN.
    pub tlb_control: TlbControl, // +0x05C
    pub(super) _reserved_05d: [u8; 3],    // +0x05D
    /// Virtual interrupt control: V_TPR, V_IRQ, VGIF, V_INTR_PRIO, V_IGN_TPR, V_INTR_MASKING,
    /// AVIC enable, V_INTR_VECTOR ([`int_ctl`] bits; use the accessors).
    pub int_ctl: u64, // +0x060
    /// Interrupt shadow and the guest's interrupt mask.
    pub int_state: InterruptState, // +0x068
    /// Why the guest exited.
    pub exit_code: ExitCode, // +0x070
    /// Exit-specific information.
    pub exit_info1: u64, // +0x078
    /// More exit-specific information.
    pub exit_info2: u64, // +0x080
    /// An event whose delivery was interrupted by the exit (re-inject it).
    pub exit_int_info: EventInfo, // +0x088
    /// Nested paging and SEV enables.
    pub nested_control: NestedControl, // +0x090
    /// AVIC: physical address of the guest's APIC (bits 51:0).
    pub avic_apic_bar: u64, // +0x098
    /// SEV-ES: guest-physical address of the GHCB.
    pub ghcb_gpa: u64, // +0x0A0
    /// Event to inject on VMRUN.
    pub event_inj: EventInfo, // +0x0A8
    /// Nested page table root (see `npt::ncr3`).
    pub n_cr3: u64, // +0x0B0
    /// LBR virtualization and virtualized VMSAVE/VMLOAD.
    pub virt_ext: VirtExt, // +0x0B8
    /// VMCB clean bits (keep 0 unless the CPU supports them).
    pub clean_bits: CleanBits, // +0x0C0
    pub(super) _reserved_0c4: u32,        // +0x0C4
    /// RIP of the next instruction, saved on instruction intercepts with NRIPS (0 without).
    pub next_rip: u64, // +0x0C8
    /// Number of guest instruction bytes fetched (decode assists).
    pub bytes_fetched: u8, // +0x0D0
    /// Guest instruction bytes (decode assists).
    pub guest_instruction_bytes: [u8; 15], // +0x0D1
    /// AVIC: physical address of the APIC backing page (bits 51:12).
    pub avic_backing_page: u64, // +0x0E0
    pub(super) _reserved_0e8: u64,        // +0x0E8
    /// AVIC: physical address of the logical APIC ID table (bits 51:12).
    pub avic_logical_table: u64, // +0x0F0
    /// AVIC: physical address of the physical APIC ID table (51:12) and max index (7:0).
    pub avic_physical_table: u64, // +0x0F8
    pub(super) _reserved_100: u64,        // +0x100
    /// SEV-ES: physical address of the encrypted save area (VMSA).
    pub vmsa_pa: u64, // +0x108
    pub(super) _reserved_110: [u8; 0x2D0], // +0x110
    /// Reserved for the host's own use (the CPU ignores it).
    pub host_reserved: [u8; 0x20], // +0x3E0
}

impl ControlArea {
    /// The virtual TPR (V_TPR, bits 3:0).
    pub const fn v_tpr(&self) -> u8 {
        (self.int_ctl & int_ctl::V_TPR_MASK) as u8
    }

    /// Sets the virtual TPR (low 4 bits of `tpr`).
    pub const fn set_v_tpr(&mut self, tpr: u8) {
        self.int_ctl = (self.int_ctl & !int_ctl::V_TPR_MASK) | (tpr as u64 & int_ctl::V_TPR_MASK);
    }

    /// Whether a virtual interrupt is pending (V_IRQ; the CPU clears it when the guest takes
    /// it).
    pub const fn v_irq(&self) -> bool {
        self.int_ctl & int_ctl::V_IRQ != 0
    }

    /// Makes a virtual interrupt pending with `vector` and `priority` (V_IRQ, V_INTR_VECTOR,
    /// V_INTR_PRIO), compared against V_TPR unless `ignore_tpr` (V_IGN_TPR). With the VINTR
    /// intercept this is the interrupt window: the exit comes when the guest could take it.
    pub const fn request_virtual_interrupt(&mut self, vector: u8, priority: u8, ignore_tpr: bool) {
        let mut v = self.int_ctl
            & !(int_ctl::V_INTR_VECTOR_MASK | int_ctl::V_INTR_PRIO_MASK | int_ctl::V_IGN_TPR);
        v |= int_ctl::V_IRQ
            | ((vector as u64) << int_ctl::V_INTR_VECTOR_SHIFT)
            | ((priority as u64 & 0xF) << int_ctl::V_INTR_PRIO_SHIFT);
        if ignore_tpr {
            v |= int_ctl::V_IGN_TPR;
        }
        self.int_ctl = v;
    }

    /// Withdraws a pending virtual interrupt (clears V_IRQ).
    pub const fn clear_virtual_interrupt(&mut self) {
        self.int_ctl &= !int_ctl::V_IRQ;
    }

    /// Asks for the interrupt window: a virtual interrupt (vector 0, V_TPR ignored) with the
    /// VINTR intercept, so the CPU exits as soon as the guest could take an interrupt.
    pub fn request_interrupt_window(&mut self) {
        self.request_virtual_interrupt(0, 0xF, true);
        self.intercept_misc1.insert(InterceptMisc1::VINTR);
    }

    /// Hands `vector` to the guest as a virtual interrupt it takes as soon as it can, V_TPR
    /// ignored (the interrupt controller checked the priority), without the VINTR intercept.
    pub fn hand_over_interrupt(&mut self, vector: u8) {
        self.request_virtual_interrupt(vector, 0xF, true);
        self.intercept_misc1.remove(InterceptMisc1::VINTR);
    }

    /// No virtual interrupt and no window: clears V_IRQ and the VINTR intercept.
    pub fn clear_interrupt_window(&mut self) {
        self.clear_virtual_interrupt();
        self.intercept_misc1.remove(InterceptMisc1::VINTR);
    }

    /// The pending virtual interrupt's vector (V_INTR_VECTOR).
    pub const fn v_intr_vector(&self) -> u8 {
        (self.int_ctl >> int_ctl::V_INTR_VECTOR_SHIFT) as u8
    }

    /// Whether V_INTR_MASKING is set.
    pub const fn v_intr_masking(&self) -> bool {
        self.int_ctl & int_ctl::V_INTR_MASKING != 0
    }

    /// Sets or clears V_INTR_MASKING (virtualized EFLAGS.IF and TPR).
    pub const fn set_v_intr_masking(&mut self, on: bool) {
        if on {
            self.int_ctl |= int_ctl::V_INTR_MASKING;
        } else {
            self.int_ctl &= !int_ctl::V_INTR_MASKING;
        }
    }

    /// Intercept exception `vector` (0..=31).
    pub const fn intercept_exception(&mut self, vector: u8) {
        self.intercept_exceptions |= 1 << (vector & 0x1F);
    }
}

impl fmt::Debug for ControlArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlArea")
            .field(
                "intercept_cr_read",
                &format_args!("{:#x}", self.intercept_cr_read),
            )
            .field(
                "intercept_cr_write",
                &format_args!("{:#x}", self.intercept_cr_write),
            )
            .field(
                "intercept_dr_read",
                &format_args!("{:#x}", self.intercept_dr_read),
            )
            .field(
                "intercept_dr_write",
                &format_args!("{:#x}", self.intercept_dr_write),
            )
            .field(
                "intercept_exceptions",
                &format_args!("{:#x}", self.intercept_exceptions),
            )
            .field("intercept_misc1", &self.intercept_misc1)
            .field("intercept_misc2", &self.intercept_misc2)
            .field("intercept_misc3", &self.intercept_misc3)
            .field("pause_filter_threshold", &self.pause_filter_threshold)
            .field("pause_filter_count", &self.pause_filter_count)
            .field("iopm_base_pa", &format_args!("{:#x}", self.iopm_base_pa))
            .field("msrpm_base_pa", &format_args!("{:#x}", self.msrpm_base_pa))
            .field("tsc_offset", &format_args!("{:#x}", self.tsc_offset))
            .field("guest_asid", &self.guest_asid)
            .field("tlb_control", &self.tlb_control)
            .field("int_ctl", &format_args!("{:#x}", self.int_ctl))
            .field("int_state", &self.int_state)
            .field("exit_code", &self.exit_code)
            .field("exit_info1", &format_args!("{:#x}", self.exit_info1))
            .field("exit_info2", &format_args!("{:#x}", self.exit_info2))
            .field("exit_int_info", &self.exit_int_info)
            .field("nested_control", &self.nested_control)
            .field("event_inj", &self.event_inj)
            .field("n_cr3", &format_args!("{:#x}", self.n_cr3))
            .field("virt_ext", &self.virt_ext)
            .field("clean_bits", &self.clean_bits)
            .field("next_rip", &format_args!("{:#x}", self.next_rip))
            .finish_non_exhaustive()
    }
}
