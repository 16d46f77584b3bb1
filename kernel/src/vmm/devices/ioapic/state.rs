// SPDX-License-Identifier: MIT OR Apache-2.0
//! Saved state of the IOAPIC: ID, register select, the redirection table and the pins'
//! line states.

use super::{IoApic, LEVEL, PINS, REMOTE_IRR, WRITABLE};
use crate::vmm::devices::state::{DeviceState, StateError, StateReader, StateWriter, ensure};

impl DeviceState for IoApic {
    /// Appends the IOAPIC's state.
    fn save_state(&self, w: &mut StateWriter) {
        w.u8(self.id);
        w.u8(self.select);
        self.redirection.iter().for_each(|&e| w.u64(e));
        w.u32(self.asserted);
    }

    /// The IOAPIC as [`save_state`](Self::save_state) left it.
    fn restore_state(r: &mut StateReader<'_>) -> Result<Self, StateError> {
        let id = r.bits(0xF, "IOAPIC ID")?;
        let select = r.u8()?;
        let mut redirection = [0; PINS];
        for e in &mut redirection {
            *e = r.u64()?;
            ensure(
                *e & !(WRITABLE | REMOTE_IRR) == 0,
                "IOAPIC redirection entry",
                *e,
            )?;
            // Remote IRR is only ever set, and kept, on a level-triggered pin.
            ensure(
                *e & REMOTE_IRR == 0 || *e & LEVEL != 0,
                "IOAPIC remote IRR on an edge-triggered pin",
                *e,
            )?;
        }
        let asserted = r.u32()?;
        ensure(
            asserted >> PINS == 0,
            "IOAPIC pin states",
            u64::from(asserted),
        )?;
        Ok(Self {
            id,
            select,
            redirection,
            asserted,
        })
    }
}
