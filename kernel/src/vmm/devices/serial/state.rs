// SPDX-License-Identifier: MIT OR Apache-2.0
//! Saved state of the UART: its registers, the byte count, and the line the guest has not
//! ended yet. Complete lines are output, not state: the monitor takes them after every exit.

use super::{IER_WRITABLE, MAX_LINE, MCR_WRITABLE, Serial};
use crate::vmm::devices::state::{DeviceState, StateError, StateReader, StateWriter, ensure};

impl DeviceState for Serial {
    /// Appends the UART's state.
    fn save_state(&self, w: &mut StateWriter) {
        for v in [self.ier, self.lcr, self.mcr, self.scratch] {
            w.u8(v);
        }
        w.u16(self.divisor);
        w.u64(self.bytes_out);
        w.u16(self.line.len() as u16); // below MAX_LINE
        w.bytes(&self.line);
    }

    /// The UART as [`save_state`](Self::save_state) left it, with no complete lines waiting.
    fn restore_state(r: &mut StateReader<'_>) -> Result<Self, StateError> {
        let ier = r.bits(IER_WRITABLE, "UART IER")?;
        let lcr = r.u8()?;
        let mcr = r.bits(MCR_WRITABLE, "UART MCR")?;
        let scratch = r.u8()?;
        let divisor = r.u16()?;
        let bytes_out = r.u64()?;
        let len = r.u16()?;
        // A line is ended when it reaches MAX_LINE bytes, and every byte in it was counted.
        ensure(
            usize::from(len) < MAX_LINE,
            "UART partial line length",
            u64::from(len),
        )?;
        ensure(u64::from(len) <= bytes_out, "UART bytes written", bytes_out)?;
        let line = r.take(usize::from(len))?;
        if let Some(&b) = line.iter().find(|&&b| b == b'\n' || b == b'\r') {
            return Err(StateError::Invalid {
                field: "UART partial line byte",
                value: u64::from(b),
            });
        }
        Ok(Self {
            ier,
            lcr,
            mcr,
            scratch,
            divisor,
            line: line.to_vec(),
            lines: alloc::vec::Vec::new(),
            bytes_out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::COM1;
    use super::*;
    use crate::testutil::round_trip;
    use crate::vmm::devices::PortDevice;

    fn out(s: &mut Serial, text: &[u8]) {
        for &b in text {
            s.write(COM1, 1, u32::from(b));
        }
    }

    #[test]
    fn dlab_and_partial_line_round_trip() {
        let mut s = Serial::default();
        s.write(COM1 + 1, 1, 0x05); // IER
        s.write(COM1 + 4, 1, 0x0B); // MCR
        s.write(COM1 + 7, 1, 0x5A); // scratch
        out(&mut s, b"done\nhalf a li");
        assert_eq!(s.take_output(false), ["done"]);
        s.write(COM1 + 3, 1, 0x83); // DLAB on, 8N1
        s.write(COM1, 1, 0x0C); // divisor 12: 9600 baud
        s.write(COM1 + 1, 1, 0x00);
        let mut q = round_trip(&s);
        assert_eq!(q.bytes_out, 14);
        assert_eq!(
            q.read(COM1, 1),
            12,
            "DLAB still set: the divisor reads back"
        );
        for port in COM1 + 1..=COM1 + 7 {
            assert_eq!(q.read(port, 1), s.read(port, 1), "port {port:#x}");
        }
        q.write(COM1 + 3, 1, 0x03);
        out(&mut q, b"ne\n");
        assert_eq!(q.take_output(false), ["half a line"]);
    }

    #[test]
    fn longest_partial_line_round_trips_and_longer_is_refused() {
        let mut s = Serial::default();
        out(&mut s, &[b'x'; MAX_LINE - 1]);
        let b = s.state_bytes();
        assert_eq!(
            Serial::from_state_bytes(&b).unwrap().line.len(),
            MAX_LINE - 1
        );
        let mut long = b[..14].to_vec();
        long[6..14].copy_from_slice(&(MAX_LINE as u64).to_le_bytes());
        long.extend_from_slice(&(MAX_LINE as u16).to_le_bytes());
        long.extend_from_slice(&[b'x'; MAX_LINE]);
        assert_eq!(
            Serial::from_state_bytes(&long),
            Err(StateError::Invalid {
                field: "UART partial line length",
                value: MAX_LINE as u64
            })
        );
    }

    #[test]
    fn impossible_states_are_refused() {
        let mut s = Serial::default();
        out(&mut s, b"abc");
        let good = s.state_bytes();
        // ier 0, lcr 1, mcr 2, scratch 3, divisor 4, bytes_out 6, length 14, line 16.
        let field = |at: usize, v: u8| {
            let mut b = good.clone();
            b[at] = v;
            match Serial::from_state_bytes(&b) {
                Err(StateError::Invalid { field, .. }) => field,
                other => panic!("{at}: {other:?}"),
            }
        };
        assert_eq!(field(0, 0x10), "UART IER");
        assert_eq!(field(2, 0x20), "UART MCR");
        assert_eq!(field(6, 2), "UART bytes written");
        assert_eq!(field(17, b'\n'), "UART partial line byte");
        assert_eq!(field(18, b'\r'), "UART partial line byte");
        let mut b = good.clone();
        (b[6], b[14]) = (9, 4);
        assert!(matches!(
            Serial::from_state_bytes(&b),
            Err(StateError::Truncated { .. })
        ));
        b.push(b'd');
        assert!(Serial::from_state_bytes(&b).is_ok());
        b.push(b'e');
        assert!(matches!(
            Serial::from_state_bytes(&b),
            Err(StateError::Trailing { .. })
        ));
    }
}
