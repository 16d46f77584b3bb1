// SPDX-License-Identifier: MIT OR Apache-2.0
//! Saved state of the PM registers: guest time, the stored status, enable and control bits,
//! and the timer carries the guest has acknowledged. The timer and TMR_STS are recomputed from
//! guest time, so they cannot disagree with it; SCI_EN is constant and not stored.

use super::{CNT_STORED, EN_WRITABLE, Pm, STS_STORED, carries_at};
use crate::vmm::devices::state::{DeviceState, StateError, StateReader, StateWriter, ensure};

fn bits16(r: &mut StateReader<'_>, allowed: u16, field: &'static str) -> Result<u16, StateError> {
    let v = r.u16()?;
    ensure(v & !allowed == 0, field, u64::from(v))?;
    Ok(v)
}

impl DeviceState for Pm {
    /// Appends the registers' state.
    fn save_state(&self, w: &mut StateWriter) {
        w.u64(self.now);
        w.u16(self.sts);
        w.u16(self.en);
        w.u16(self.cnt);
        w.u64(self.carries_seen);
    }

    /// The registers as [`save_state`](Self::save_state) left them.
    fn restore_state(r: &mut StateReader<'_>) -> Result<Self, StateError> {
        let now = r.u64()?;
        let sts = bits16(r, STS_STORED, "ACPI PM1 status")?;
        let en = bits16(r, EN_WRITABLE, "ACPI PM1 enable")?;
        let cnt = bits16(r, CNT_STORED, "ACPI PM1 control")?;
        let carries_seen = r.u64()?;
        // The guest can only acknowledge carries that happened.
        ensure(
            carries_seen <= carries_at(now),
            "ACPI PM timer carries seen",
            carries_seen,
        )?;
        Ok(Self {
            now,
            sts,
            en,
            cnt,
            carries_seen,
            effect: None,
        })
    }
}
