// SPDX-License-Identifier: MIT OR Apache-2.0
//! The xAPIC register map (Intel SDM Vol. 3A, 11.4.1, Table 11-1), the bits of each register
//! software may write, and the 256-bit vector sets behind ISR, TMR and IRR (11.8.4).

/// Local APIC ID (bits 31:24).
pub const ID: u64 = 0x020;
/// Local APIC version.
pub const VERSION: u64 = 0x030;
/// Task priority.
pub const TPR: u64 = 0x080;
/// Arbitration priority.
pub const APR: u64 = 0x090;
/// Processor priority.
pub const PPR: u64 = 0x0A0;
/// End of interrupt.
pub const EOI: u64 = 0x0B0;
/// Remote read (Pentium only; reads 0).
pub const RRD: u64 = 0x0C0;
/// Logical destination.
pub const LDR: u64 = 0x0D0;
/// Destination format.
pub const DFR: u64 = 0x0E0;
/// Spurious interrupt vector.
pub const SVR: u64 = 0x0F0;
/// In-service register, eight 32-bit words 16 bytes apart.
pub const ISR: u64 = 0x100;
/// Trigger mode register, eight words.
pub const TMR: u64 = 0x180;
/// Interrupt request register, eight words.
pub const IRR: u64 = 0x200;
/// Error status.
pub const ESR: u64 = 0x280;
/// LVT corrected machine-check error interrupt.
pub const LVT_CMCI: u64 = 0x2F0;
/// Interrupt command, bits 31:0.
pub const ICR_LOW: u64 = 0x300;
/// Interrupt command, bits 63:32.
pub const ICR_HIGH: u64 = 0x310;
/// LVT timer; thermal, performance counter, LINT0, LINT1 and error follow 16 bytes apart.
pub const LVT_TIMER: u64 = 0x320;
/// LVT error, the last of the contiguous LVT registers.
pub const LVT_ERROR: u64 = 0x370;
/// Timer initial count.
pub const TIMER_INITIAL: u64 = 0x380;
/// Timer current count.
pub const TIMER_CURRENT: u64 = 0x390;
/// Timer divide configuration.
pub const TIMER_DIVIDE: u64 = 0x3E0;

/// Version register: an integrated xAPIC (0x14) with seven LVT entries (bits 23:16 hold the
/// count minus one) and no EOI-broadcast suppression (bit 24 clear), SDM Vol. 3A, 11.4.8.
pub const VERSION_VALUE: u32 = 0x14 | (LVT_COUNT as u32 - 1) << 16;

/// LVT entries, indexed as in [`Lapic`](super::Lapic)'s table.
pub const LVT_COUNT: usize = 7;
/// Index of the CMCI entry.
pub const LVT_CMCI_INDEX: usize = 0;
/// Index of the timer entry.
pub const TIMER: usize = 1;
/// Index of the LINT0 entry.
pub const LINT0: usize = 4;
/// Index of the LINT1 entry.
pub const LINT1: usize = 5;
/// Index of the error entry.
pub const ERROR: usize = 6;

/// LVT mask bit (SDM Vol. 3A, 11.5.1, Figure 11-8).
pub const LVT_MASKED: u32 = 1 << 16;
/// Bits of each LVT entry software may write: CMCI, timer (vector, mask, mode bits 18:17),
/// thermal, performance counter (vector, delivery mode, mask), LINT0/LINT1 (vector, delivery
/// mode, polarity, trigger mode, mask), error (vector, mask). Delivery status and remote IRR are
/// read-only and always 0 here: delivery is immediate.
pub const LVT_WRITABLE: [u32; LVT_COUNT] = [
    0x1_07FF, 0x7_00FF, 0x1_07FF, 0x1_07FF, 0x1_A7FF, 0x1_A7FF, 0x1_00FF,
];

/// SVR bits software may write: vector, APIC software enable (bit 8), focus processor
/// checking (bit 9); EOI-broadcast suppression (bit 12) is not offered (11.9).
pub const SVR_WRITABLE: u32 = 0x3FF;
/// SVR APIC software enable.
pub const SVR_ENABLE: u32 = 1 << 8;
/// ICR low bits software may write: vector, delivery mode, destination mode, level, trigger
/// mode, destination shorthand (11.6.1, Figure 11-12); delivery status reads 0.
pub const ICR_LOW_WRITABLE: u32 = 0xC_CFFF;
/// ICR high: the destination field (bits 63:56).
pub const ICR_HIGH_WRITABLE: u32 = 0xFF00_0000;
/// LDR: the logical APIC ID (bits 31:24, 11.6.2.2).
pub const LDR_WRITABLE: u32 = 0xFF00_0000;
/// DFR: the model (bits 31:28); bits 27:0 read as ones.
pub const DFR_WRITABLE: u32 = 0xF000_0000;
/// Divide configuration: bits 0, 1 and 3 (11.5.4, Figure 11-10).
pub const DIVIDE_WRITABLE: u32 = 0xB;

/// ESR "send illegal vector" (11.5.3, Figure 11-9).
pub const ESR_SEND_ILLEGAL: u32 = 1 << 5;
/// ESR "receive illegal vector".
pub const ESR_RECEIVE_ILLEGAL: u32 = 1 << 6;
/// Every ESR bit the model can set.
pub const ESR_BITS: u32 = ESR_SEND_ILLEGAL | ESR_RECEIVE_ILLEGAL;

/// The LVT index of the register at `offset`, if it is one.
pub fn lvt_index(offset: u64) -> Option<usize> {
    match offset {
        LVT_CMCI => Some(LVT_CMCI_INDEX),
        LVT_TIMER..=LVT_ERROR if offset & 0xF == 0 => {
            Some(((offset - LVT_TIMER) >> 4) as usize + TIMER)
        }
        _ => None,
    }
}

/// A set of the 256 interrupt vectors, as ISR, TMR and IRR hold them: bit `v % 32` of word
/// `v / 32` (SDM Vol. 3A, 11.8.4, Figure 11-20).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vectors(pub [u32; 8]);

impl Vectors {
    /// Whether `v` is in the set.
    pub fn get(&self, v: u8) -> bool {
        self.0[usize::from(v >> 5)] & 1 << (v & 31) != 0
    }

    /// Adds or removes `v`.
    pub fn put(&mut self, v: u8, on: bool) {
        let word = &mut self.0[usize::from(v >> 5)];
        if on {
            *word |= 1 << (v & 31);
        } else {
            *word &= !(1 << (v & 31));
        }
    }

    /// The highest vector in the set (the highest priority, 11.8.3).
    pub fn highest(&self) -> Option<u8> {
        if self.0.iter().fold(0, |any, w| any | w) == 0 {
            // The common case, on every VM entry: nothing requested (or in service).
            return None;
        }
        let (i, w) = self.0.iter().enumerate().rev().find(|(_, w)| **w != 0)?;
        Some((i as u8) << 5 | (31 - w.leading_zeros()) as u8)
    }

    /// Whether the set holds a vector below 16 (never true of a real APIC, 11.5.3).
    pub fn has_illegal(&self) -> bool {
        self.0[0] & 0xFFFF != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_sets_find_their_highest_member() {
        let mut s = Vectors::default();
        assert_eq!(s.highest(), None);
        for v in [16, 0x31, 0xFF, 0x80] {
            s.put(v, true);
        }
        assert_eq!(s.highest(), Some(0xFF));
        s.put(0xFF, false);
        assert_eq!(s.highest(), Some(0x80));
        assert!(s.get(0x31) && !s.get(0x32));
        assert_eq!(s.0[1], 1 << 17);
        assert!(!s.has_illegal());
        s.put(15, true);
        assert!(s.has_illegal());
    }

    #[test]
    fn lvt_offsets_map_to_their_entries() {
        assert_eq!(lvt_index(LVT_CMCI), Some(LVT_CMCI_INDEX));
        assert_eq!(lvt_index(LVT_TIMER), Some(TIMER));
        assert_eq!(lvt_index(0x350), Some(LINT0));
        assert_eq!(lvt_index(0x360), Some(LINT1));
        assert_eq!(lvt_index(LVT_ERROR), Some(ERROR));
        assert_eq!(lvt_index(0x380), None);
        assert_eq!(lvt_index(0x324), None);
        assert_eq!(VERSION_VALUE, 0x0006_0014);
    }
}
