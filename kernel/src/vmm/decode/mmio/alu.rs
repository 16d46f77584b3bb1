// SPDX-License-Identifier: MIT OR Apache-2.0
//! The arithmetic of the emulated ALU and bit-test instructions, and the status flags they set.
//!
//! Flags as each instruction page of the Intel SDM Vol. 2 ("Flags Affected") and Vol. 1, 3.4.3.1
//! and Appendix A ("EFLAGS Cross-Reference") define them; AMD APM Vol. 3, Appendix C:
//! - ADD, ADC, SUB, SBB, CMP: OF, SF, ZF, AF, CF and PF set according to the result.
//! - AND, OR, XOR, TEST: OF and CF cleared; SF, ZF, PF set according to the result; AF is
//!   undefined, and Castor clears it (as QEMU does).
//! - BT, BTS, BTR, BTC: CF is the selected bit, ZF is unaffected; OF, SF, AF and PF are
//!   undefined, and Castor leaves them unchanged.
//!
//! PF reflects only the low 8 bits of the result (set when they hold an even number of ones).

use super::insn::{AluOp, BitOp};
use crate::vmm::vcpu::Width;

/// RFLAGS.CF, carry (bit 0).
pub const CF: u64 = 1 << 0;
/// RFLAGS.PF, parity (bit 2).
pub const PF: u64 = 1 << 2;
/// RFLAGS.AF, auxiliary carry (bit 4).
pub const AF: u64 = 1 << 4;
/// RFLAGS.ZF, zero (bit 6).
pub const ZF: u64 = 1 << 6;
/// RFLAGS.SF, sign (bit 7).
pub const SF: u64 = 1 << 7;
/// RFLAGS.DF, direction (bit 10): string instructions move down when set.
pub const DF: u64 = 1 << 10;
/// RFLAGS.OF, overflow (bit 11).
pub const OF: u64 = 1 << 11;

/// The six status flags the ALU instructions write.
const STATUS: u64 = CF | PF | AF | ZF | SF | OF;

/// The mask of the low `width` bytes (1, 2, 4 or 8).
pub fn mask(width: Width) -> u64 {
    if width >= 8 {
        u64::MAX
    } else {
        (1u64 << (u32::from(width) * 8)) - 1
    }
}

/// The sign bit of a `width`-byte value.
fn sign_bit(width: Width) -> u64 {
    1u64 << (u32::from(width.clamp(1, 8)) * 8 - 1)
}

/// `value`'s low `from` bytes sign-extended to 64 bits.
pub fn sign_extend(value: u64, from: Width) -> u64 {
    let v = value & mask(from);
    if v & sign_bit(from) != 0 {
        v | !mask(from)
    } else {
        v
    }
}

/// `flag` if `condition`, else 0.
fn flag(condition: bool, flag: u64) -> u64 {
    if condition { flag } else { 0 }
}

/// Computes `a op b` at `width` bytes (operands are truncated to it). Returns the result
/// (truncated; meaningful to write back only if [`AluOp::writes_result`]) and `rflags` with the
/// status flags replaced as the SDM defines for `op` (other bits kept). ADC and SBB take their
/// carry in from `rflags`.
pub fn alu(op: AluOp, a: u64, b: u64, width: Width, rflags: u64) -> (u64, u64) {
    let m = mask(width);
    let (a, b) = (a & m, b & m);
    let carry_in = u128::from(rflags & CF != 0 && matches!(op, AluOp::Adc | AluOp::Sbb));
    let (result, cf, of, af) = match op {
        AluOp::Add | AluOp::Adc => {
            let full = u128::from(a) + u128::from(b) + carry_in;
            let r = full as u64 & m;
            let of = (a ^ r) & (b ^ r) & sign_bit(width) != 0;
            (r, full > u128::from(m), of, (a ^ b ^ r) & 0x10 != 0)
        }
        AluOp::Sub | AluOp::Sbb | AluOp::Cmp => {
            let r = a.wrapping_sub(b).wrapping_sub(carry_in as u64) & m;
            let cf = u128::from(a) < u128::from(b) + carry_in;
            let of = (a ^ b) & (a ^ r) & sign_bit(width) != 0;
            (r, cf, of, (a ^ b ^ r) & 0x10 != 0)
        }
        AluOp::And | AluOp::Test => (a & b, false, false, false),
        AluOp::Or => (a | b, false, false, false),
        AluOp::Xor => (a ^ b, false, false, false),
    };
    let flags = flag(cf, CF)
        | flag(of, OF)
        | flag(af, AF)
        | flag(result == 0, ZF)
        | flag(result & sign_bit(width) != 0, SF)
        | flag((result as u8).count_ones().is_multiple_of(2), PF);
    (result, (rflags & !STATUS) | flags)
}

/// BT/BTS/BTR/BTC on `value` (`width` bytes) with bit offset `bit` taken modulo the operand
/// size in bits (SDM Vol. 2A, "BT": the processor ignores the higher bits of an immediate).
/// Returns the new value (to write back unless BT) and `rflags` with CF set to the old bit.
pub fn bit_test(op: BitOp, value: u64, bit: u8, width: Width, rflags: u64) -> (u64, u64) {
    let bits = u32::from(width.clamp(1, 8)) * 8;
    let selected = 1u64 << (u32::from(bit) % bits);
    let new = match op {
        BitOp::Bt => value,
        BitOp::Bts => value | selected,
        BitOp::Btr => value & !selected,
        BitOp::Btc => value ^ selected,
    };
    (
        new & mask(width),
        (rflags & !CF) | flag(value & selected != 0, CF),
    )
}
