// SPDX-License-Identifier: MIT OR Apache-2.0
//! Saved state of the 8259A pair: every register and mode of both chips. The ELCR masks are
//! wiring, not state, and the slave's INT as the master last saw it is recomputed.

use super::{Chip, Init, Pic};
use crate::vmm::devices::state::{DeviceState, StateError, StateReader, StateWriter, ensure};

impl Init {
    fn code(self) -> u8 {
        match self {
            Self::Ready => 0,
            Self::Icw2 => 1,
            Self::Icw3 => 2,
            Self::Icw4 => 3,
        }
    }

    fn from_code(v: u8) -> Result<Self, StateError> {
        Ok(match v {
            0 => Self::Ready,
            1 => Self::Icw2,
            2 => Self::Icw3,
            3 => Self::Icw4,
            _ => {
                return Err(StateError::Invalid {
                    field: "PIC initialization step",
                    value: u64::from(v),
                });
            }
        })
    }
}

impl Chip {
    fn save_state(&self, w: &mut StateWriter) {
        for v in [
            self.base,
            self.irr,
            self.levels,
            self.isr,
            self.imr,
            self.elcr,
        ] {
            w.u8(v);
        }
        w.u8(self.init.code());
        w.u8(self.icw3);
        w.u8(self.lowest);
        for f in [
            self.ltim,
            self.single,
            self.icw4_needed,
            self.auto_eoi,
            self.rotate_on_auto_eoi,
            self.special_fully_nested,
            self.read_isr,
            self.poll,
            self.special_mask,
        ] {
            w.flag(f);
        }
    }

    /// A chip whose ELCR bits outside `elcr_writable` are hard-wired to 0.
    fn restore_state(r: &mut StateReader<'_>, elcr_writable: u8) -> Result<Self, StateError> {
        let base = r.bits(0xF8, "PIC vector base (ICW2)")?;
        let (irr, levels, isr, imr) = (r.u8()?, r.u8()?, r.u8()?, r.u8()?);
        let elcr = r.bits(elcr_writable, "PIC ELCR")?;
        let init = Init::from_code(r.u8()?)?;
        let icw3 = r.u8()?;
        let lowest = r.bits(7, "PIC lowest priority level")?;
        let chip = Self {
            base,
            irr,
            levels,
            isr,
            imr,
            elcr,
            elcr_writable,
            ltim: r.flag("PIC LTIM")?,
            init,
            single: r.flag("PIC single mode")?,
            icw4_needed: r.flag("PIC ICW4 needed")?,
            icw3,
            auto_eoi: r.flag("PIC auto-EOI")?,
            rotate_on_auto_eoi: r.flag("PIC rotate on auto-EOI")?,
            special_fully_nested: r.flag("PIC special fully nested mode")?,
            lowest,
            read_isr: r.flag("PIC read ISR")?,
            poll: r.flag("PIC poll")?,
            special_mask: r.flag("PIC special mask")?,
        };
        // ICW3 is expected only in cascade mode, ICW4 only if ICW1 asked for it.
        let step = u64::from(init.code());
        ensure(
            init != Init::Icw3 || !chip.single,
            "PIC ICW3 step in single mode",
            step,
        )?;
        ensure(
            init != Init::Icw4 || chip.icw4_needed,
            "PIC ICW4 step without ICW1 IC4",
            step,
        )?;
        Ok(chip)
    }
}

impl DeviceState for Pic {
    /// Appends the pair's state.
    fn save_state(&self, w: &mut StateWriter) {
        self.master.save_state(w);
        self.slave.save_state(w);
    }

    /// The pair as [`save_state`](Self::save_state) left it.
    fn restore_state(r: &mut StateReader<'_>) -> Result<Self, StateError> {
        let wiring = Self::new();
        let master = Chip::restore_state(r, wiring.master.elcr_writable)?;
        let slave = Chip::restore_state(r, wiring.slave.elcr_writable)?;
        let slave_int = slave.output(slave.requests(None)).is_some();
        Ok(Self {
            master,
            slave,
            slave_int,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::round_trip;
    use crate::vmm::devices::irq::{IrqLine, IrqSink};

    #[test]
    fn mid_initialization_state_round_trips_and_finishes_the_same() {
        let mut p = Pic::new();
        p.io_write(0x21, 1, 0xF8);
        p.raise(IrqLine::PIT);
        p.io_write(0x20, 1, 0x11); // ICW1: cascade, ICW4 needed
        p.io_write(0x21, 1, 0x20); // ICW2; ICW3 is next
        p.io_write(0xA0, 1, 0x19); // slave ICW1 with LTIM; ICW2 is next
        let mut q = round_trip(&p);
        assert_eq!(q, p);
        for (port, v) in [
            (0x21, 0x04),
            (0x21, 0x03),
            (0xA1, 0x28),
            (0xA1, 0x02),
            (0xA1, 1),
        ] {
            p.io_write(port, 1, v);
            q.io_write(port, 1, v);
        }
        assert_eq!(q, p);
        p.lower(IrqLine::PIT);
        p.raise(IrqLine::PIT);
        q.lower(IrqLine::PIT);
        q.raise(IrqLine::PIT);
        assert_eq!(q.acknowledge(), Some(0x20));
        assert_eq!(p.acknowledge(), Some(0x20));
        assert_eq!(q.isr(), 0, "auto-EOI survived the restore");
    }

    #[test]
    fn pending_slave_request_and_modes_round_trip() {
        let mut p = Pic::new();
        p.io_write(0xA1, 1, 0); // unmask the slave
        p.io_write(0x4D1, 1, 0x04); // IRQ10 level-triggered
        p.raise(IrqLine::new(10).unwrap());
        p.io_write(0x20, 1, 0x6B); // special mask on, read ISR
        p.io_write(0x20, 1, 0xC4); // IR4 lowest priority
        p.io_write(0xA0, 1, 0x0C); // slave poll pending
        let q = round_trip(&p);
        assert_eq!(q, p, "including the slave's INT the master saw");
        assert_eq!(q.pending_vector(), Some(0x72));
    }

    #[test]
    fn impossible_states_are_refused() {
        let good = Pic::new().state_bytes();
        let refuse = |at: usize, v: u8, field: &str| {
            let mut b = good.clone();
            b[at] = v;
            match Pic::restore_state(&mut StateReader::new(&b)) {
                Err(StateError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("byte {at} = {v:#x}: {other:?}"),
            }
        };
        refuse(0, 0x09, "PIC vector base (ICW2)");
        refuse(5, 0x01, "PIC ELCR"); // IRQ0 is always edge-triggered
        refuse(6, 4, "PIC initialization step");
        refuse(8, 8, "PIC lowest priority level");
        refuse(9, 2, "PIC LTIM");
        // Waiting for ICW3 in single mode, or for ICW4 that ICW1 did not ask for.
        let mut b = good.clone();
        (b[6], b[10]) = (2, 1);
        assert!(Pic::restore_state(&mut StateReader::new(&b)).is_err());
        let mut b = good.clone();
        (b[6], b[11]) = (3, 0);
        assert!(Pic::restore_state(&mut StateReader::new(&b)).is_err());
        (b[6], b[11]) = (3, 1);
        assert!(Pic::restore_state(&mut StateReader::new(&b)).is_ok());
    }

    /// Random port and line traffic; after every step the saved state restores to an equal
    /// pair that re-encodes to the same bytes.
    #[test]
    fn every_reachable_state_round_trips_exactly() {
        let mut x = 0xD1B5_4A32_D192_ED03_u64;
        let mut p = Pic::new();
        let ports = [0x20, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let port = ports[(x % 6) as usize];
            match (x >> 8) % 5 {
                0 => _ = p.io_read(port, 1),
                1 | 2 => p.io_write(port, 1, (x >> 32) as u32 & 0xFF),
                3 => p.set_level(
                    IrqLine::new((x >> 24) as u8 & 15).unwrap(),
                    x & 1 << 30 != 0,
                ),
                _ => _ = p.acknowledge(),
            }
            let q = round_trip(&p);
            assert_eq!(q, p);
            assert_eq!(q.state_bytes(), p.state_bytes());
        }
    }
}
