// SPDX-License-Identifier: MIT OR Apache-2.0
//! Saved state of the 8254: guest time, port B, the tick backlog and every counter's segment,
//! latches and access flip-flops. The PIT clock is recomputed from guest time, the counters'
//! accounting point is that clock, and the gates follow their wiring (channels 0 and 1 tied
//! high, channel 2 on port B bit 0), so none of these can disagree with the rest.

use super::{Access, Channel, FREQUENCY_HZ, PORT_B_WRITABLE, Pit, clock_at};
use crate::vmm::devices::state::{DeviceState, StateError, StateReader, StateWriter, ensure};

/// The largest count (0 written means 65536).
const MAX_COUNT: u32 = 0x1_0000;

fn count(r: &mut StateReader<'_>, min: u32, field: &'static str) -> Result<u32, StateError> {
    let v = r.u32()?;
    ensure((min..=MAX_COUNT).contains(&v), field, u64::from(v))?;
    Ok(v)
}

impl Channel {
    /// The control-word bits the read-back status byte reports (bits 5-0).
    fn config_bits(&self) -> u8 {
        ((self.access as u8) << 4) | (self.mode_bits << 1) | u8::from(self.bcd)
    }

    fn save_state(&self, w: &mut StateWriter) {
        w.u8(self.mode_bits);
        w.u8(self.access as u8);
        w.flag(self.bcd);
        w.u32(self.reload);
        w.flag(self.armed);
        w.flag(self.null_count);
        w.flag(self.running);
        w.u64(self.start);
        w.u32(self.start_count);
        w.flag(self.fired);
        w.option(self.next, |w, (at, n)| {
            w.u64(at);
            w.u32(n);
        });
        w.option(self.write_lsb, StateWriter::u8);
        w.flag(self.read_msb_next);
        w.option(self.latch, StateWriter::u16);
        w.flag(self.latch_msb_next);
        w.option(self.status, StateWriter::u8);
    }

    /// A channel saved at PIT clock `clk` whose gate input is `gate`.
    fn restore_state(r: &mut StateReader<'_>, clk: u64, gate: bool) -> Result<Self, StateError> {
        let mode_bits = r.bits(7, "PIT mode")?;
        let access = match r.u8()? {
            1 => Access::Lsb,
            2 => Access::Msb,
            3 => Access::Word,
            v => {
                return Err(StateError::Invalid {
                    field: "PIT access",
                    value: u64::from(v),
                });
            }
        };
        let ch = Self {
            mode_bits,
            access,
            bcd: r.flag("PIT BCD")?,
            reload: count(r, 1, "PIT count register")?,
            armed: r.flag("PIT armed")?,
            null_count: r.flag("PIT null count")?,
            gate,
            running: r.flag("PIT running")?,
            start: r.u64()?,
            start_count: count(r, 0, "PIT counting element")?,
            fired: r.flag("PIT fired")?,
            next: r.option("PIT pending reload", |r| {
                Ok((r.u64()?, count(r, 1, "PIT next count")?))
            })?,
            synced: clk,
            write_lsb: r.option("PIT count LSB written", StateReader::u8)?,
            read_msb_next: r.flag("PIT read flip-flop")?,
            latch: r.option("PIT latch", StateReader::u16)?,
            latch_msb_next: r.flag("PIT latch flip-flop")?,
            status: r.option("PIT status latch", StateReader::u8)?,
        };
        ch.check(clk)?;
        Ok(ch)
    }

    /// The rules every reachable channel keeps (see the transitions in `pit.rs`).
    fn check(&self, clk: u64) -> Result<(), StateError> {
        let mode = self.mode();
        let periodic = matches!(mode, 2 | 3);
        let word = self.access == Access::Word;
        ensure(self.start <= clk, "PIT segment start after now", self.start)?;
        if let Some((at, _)) = self.next {
            ensure(at > clk, "PIT pending reload not after now", at)?;
            ensure(
                periodic && self.running,
                "PIT pending reload while stopped",
                u64::from(mode),
            )?;
        }
        ensure(
            !self.running || self.armed,
            "PIT running without a count",
            1,
        )?;
        // Once armed, modes 0, 2, 3 and 4 count exactly while the gate is high; 1 and 5 run
        // from a trigger on regardless.
        if self.armed && mode != 1 && mode != 5 {
            ensure(
                self.running == self.gate,
                "PIT running against its gate",
                u64::from(mode),
            )?;
        }
        ensure(
            !self.fired || (self.armed && !periodic),
            "PIT fired",
            u64::from(mode),
        )?;
        ensure(word || self.write_lsb.is_none(), "PIT count LSB written", 1)?;
        ensure(word || !self.read_msb_next, "PIT read flip-flop", 1)?;
        ensure(
            !self.latch_msb_next || (word && self.latch.is_some()),
            "PIT latch flip-flop",
            1,
        )?;
        if let Some(s) = self.status {
            ensure(
                s & 0x3F == self.config_bits(),
                "PIT status latch",
                u64::from(s),
            )?;
        }
        Ok(())
    }
}

impl DeviceState for Pit {
    /// Appends the PIT's state.
    fn save_state(&self, w: &mut StateWriter) {
        w.u64(self.now);
        w.u8(self.port_b);
        w.u64(self.pending);
        w.u64(self.dropped);
        w.u64(self.delivered);
        for ch in &self.channels {
            ch.save_state(w);
        }
    }

    /// The PIT as [`save_state`](Self::save_state) left it.
    fn restore_state(r: &mut StateReader<'_>) -> Result<Self, StateError> {
        let now = r.u64()?;
        let clk = clock_at(now);
        let port_b = r.bits(PORT_B_WRITABLE, "PIT port B")?;
        let pending = r.u64()?;
        // The backlog never grows beyond one second's worth at the fastest rate.
        ensure(pending <= FREQUENCY_HZ, "PIT tick backlog", pending)?;
        let (dropped, delivered) = (r.u64()?, r.u64()?);
        let channels = [
            Channel::restore_state(r, clk, true)?,
            Channel::restore_state(r, clk, true)?,
            Channel::restore_state(r, clk, port_b & 1 != 0)?,
        ];
        Ok(Self {
            channels,
            now,
            clk,
            port_b,
            pending,
            dropped,
            delivered,
        })
    }
}

#[cfg(test)]
mod tests;
