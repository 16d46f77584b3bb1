// SPDX-License-Identifier: MIT OR Apache-2.0
//! Saved state of the RTC: CMOS RAM, the index and NMI mask, the monitor's wall time the guest
//! clock was last brought to, the guest's offset from it, and register C's pending flags.
//! Every offset is a clock a guest can set, so any value is accepted for it.

use super::{B_SET, B_UIE, C_AF, C_UF, REG_A, REG_B, REG_C, REG_D, Rtc};
use crate::vmm::devices::state::{DeviceState, StateError, StateReader, StateWriter, ensure};

impl DeviceState for Rtc {
    /// Appends the RTC's state.
    fn save_state(&self, w: &mut StateWriter) {
        w.bytes(&self.ram);
        w.u8(self.index);
        w.flag(self.nmi_masked);
        w.u64(self.wall);
        w.i64(self.offset);
        w.u8(self.flags);
    }

    /// The RTC as [`save_state`](Self::save_state) left it.
    fn restore_state(r: &mut StateReader<'_>) -> Result<Self, StateError> {
        let mut ram = [0; 128];
        ram.copy_from_slice(r.take(128)?);
        let rtc = Self {
            ram,
            index: r.bits(0x7F, "RTC CMOS index")?,
            nmi_masked: r.flag("RTC NMI mask")?,
            wall: r.u64()?,
            offset: r.i64()?,
            flags: r.bits(C_AF | C_UF, "RTC register C flags")?,
        };
        // Register A's UIP reads 0 and cannot be written; SET clears UIE; C and D are read-only
        // and never stored.
        let a = rtc.reg(REG_A);
        ensure(a & 0x80 == 0, "RTC register A", u64::from(a))?;
        let b = rtc.reg(REG_B);
        ensure(
            b & B_SET == 0 || b & B_UIE == 0,
            "RTC register B",
            u64::from(b),
        )?;
        for i in [REG_C, REG_D] {
            ensure(
                rtc.reg(i) == 0,
                "RTC register C/D storage",
                u64::from(rtc.reg(i)),
            )?;
        }
        Ok(rtc)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DATA, HOURS, INDEX, SECONDS};
    use super::*;
    use crate::testutil::round_trip;

    const T: u64 = 1_795_306_477;

    fn write(r: &mut Rtc, index: u8, v: u8) {
        r.io_write(INDEX, 1, u32::from(index));
        r.io_write(DATA, 1, u32::from(v));
    }

    #[test]
    fn nmi_mask_index_set_mode_and_flags_round_trip() {
        let mut r = Rtc::new(64 << 20, 0);
        r.set_time(T);
        write(&mut r, REG_B, B_SET | 0x02); // guest sets the clock
        write(&mut r, HOURS, 0x07);
        write(&mut r, 0x40, 0x99); // plain CMOS byte
        r.io_write(INDEX, 1, 0x80 | u32::from(SECONDS)); // NMI off, index at seconds
        assert!(r.nmi_masked());
        let mut q = round_trip(&r);
        assert!(q.nmi_masked());
        assert_eq!(
            q.io_read(DATA, 1),
            r.io_read(DATA, 1),
            "same index, held seconds"
        );
        for rtc in [&mut r, &mut q] {
            write(rtc, REG_B, 0x12); // SET off, update interrupts on: the clock runs from 07:xx
            rtc.set_time(T + 1);
        }
        assert!(q.irq_level(), "an update ended");
        let mut q2 = round_trip(&q);
        for i in [SECONDS, HOURS, REG_C, 0x40, REG_C] {
            write(&mut q, i, 0); // the write to C is ignored; the others reach CMOS
            write(&mut q2, i, 0);
            assert_eq!(q.io_read(DATA, 1), q2.io_read(DATA, 1), "register {i:#x}");
        }
        assert_eq!(q, q2);
    }

    #[test]
    fn impossible_states_are_refused() {
        let good = Rtc::new(0, 0).state_bytes();
        let field = |at: usize, v: u8| {
            let mut b = good.clone();
            b[at] = v;
            match Rtc::from_state_bytes(&b) {
                Err(StateError::Invalid { field, .. }) => field,
                other => panic!("{at}: {other:?}"),
            }
        };
        assert_eq!(field(128, 0x80), "RTC CMOS index");
        assert_eq!(field(129, 2), "RTC NMI mask");
        assert_eq!(field(146, C_UF | 0x40), "RTC register C flags");
        assert_eq!(field(usize::from(REG_A), 0xA6), "RTC register A");
        assert_eq!(field(usize::from(REG_B), B_SET | B_UIE), "RTC register B");
        assert_eq!(field(usize::from(REG_C), 0x80), "RTC register C/D storage");
        assert_eq!(field(usize::from(REG_D), 0x80), "RTC register C/D storage");
        assert_eq!(good.len(), 147);
    }

    /// Random port traffic and wall-clock steps; after every step the RTC restores to an
    /// equal one.
    #[test]
    fn every_reachable_state_round_trips_exactly() {
        let mut x = 0x2545_F491_4F6C_DD1D_u64;
        let mut r = Rtc::new(256 << 20, 1 << 30);
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match (x >> 8) % 4 {
                0 => _ = r.io_read([INDEX, DATA][(x & 1) as usize], 1),
                1 | 2 => r.io_write([INDEX, DATA][(x & 1) as usize], 1, (x >> 32) as u32),
                _ => r.set_time(T + (x >> 50)),
            }
            round_trip(&r);
        }
    }
}
