// SPDX-License-Identifier: MIT OR Apache-2.0
//! Saved state of the UART: its registers, the receiver (FIFO settings and the bytes the guest
//! has not read, typed input included), the interrupt state (overrun, the THRE latch, the MSR
//! deltas), the byte count, and the line the guest has not ended yet. Complete lines are
//! output, not state: the monitor takes them after every exit.
//!
//! ```text
//! ier u8, lcr u8, mcr u8, scratch u8, divisor u16, fcr u8 (bits 7:6 and 0), overrun flag,
//! thre flag, msr deltas u8 (bits 3:0), received count u8, received bytes,
//! bytes written u64, partial line length u16, partial line bytes
//! ```
//!
//! This layout came with device state blob version 2 ([`crate::vmm::devices::blob::VERSION`]);
//! a version 1 blob, whose UART had no receiver, is refused as a whole.

use super::iir::IER_WRITABLE;
use super::modem::{MCR_WRITABLE, MSR_DELTAS};
use super::rx::{FIFO_SIZE, Receiver};
use super::{MAX_LINE, Serial};
use crate::vmm::devices::state::{DeviceState, StateError, StateReader, StateWriter, ensure};

impl DeviceState for Serial {
    /// Appends the UART's state.
    fn save_state(&self, w: &mut StateWriter) {
        for v in [self.ier, self.lcr, self.mcr, self.scratch] {
            w.u8(v);
        }
        w.u16(self.divisor);
        w.u8(self.rx.fcr());
        w.flag(self.overrun);
        w.flag(self.thre);
        w.u8(self.msr_deltas);
        w.u8(self.rx.len() as u8); // at most FIFO_SIZE
        for b in self.rx.bytes() {
            w.u8(b);
        }
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
        let fcr = r.u8()?;
        let overrun = r.flag("UART overrun")?;
        let thre = r.flag("UART THRE interrupt")?;
        let msr_deltas = r.bits(MSR_DELTAS, "UART MSR deltas")?;
        let held = r.u8()?;
        ensure(
            usize::from(held) <= FIFO_SIZE,
            "UART received bytes",
            u64::from(held),
        )?;
        let received = r.take(usize::from(held))?;
        let rx = Receiver::with(fcr, received).ok_or(StateError::Invalid {
            field: "UART FCR",
            value: u64::from(fcr) | u64::from(held) << 8,
        })?;
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
            rx,
            overrun,
            thre,
            msr_deltas,
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

    /// Offsets in the state of a UART with `held` received bytes.
    const FCR: usize = 6;
    const OVERRUN: usize = 7;
    const THRE: usize = 8;
    const DELTAS: usize = 9;
    const HELD: usize = 10;
    const fn bytes_out(held: usize) -> usize {
        HELD + 1 + held
    }
    const fn line_len(held: usize) -> usize {
        bytes_out(held) + 8
    }

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
    fn received_bytes_and_interrupt_state_round_trip() {
        let mut s = Serial::default();
        s.write(COM1 + 2, 1, 0x81); // FIFOs on, trigger 8
        s.write(COM1 + 1, 1, 0x0F); // every interrupt: THRE latched
        s.write(COM1 + 4, 1, 0x10); // loopback: the modem inputs drop, MSR deltas
        out(&mut s, &[b'x'; 17]); // the 17th overruns
        s.write(COM1 + 4, 1, 0x0B);
        assert_eq!(s.push_input(b"typed"), 0, "the FIFO is full");
        let mut q = round_trip(&s);
        assert!(q.overrun && q.thre && q.msr_deltas != 0);
        assert_eq!(q.read(COM1 + 2, 1), 0xC6, "the overrun is still pending");
        assert_eq!(q.read(COM1 + 5, 1), 0x63);
        assert_eq!(q.read(COM1 + 2, 1), 0xC4, "16 bytes, trigger 8");
        let got: alloc::vec::Vec<u32> = (0..16).map(|_| q.read(COM1, 1)).collect();
        assert_eq!(got, [u32::from(b'x'); 16]);
        assert_eq!(q.push_input(b"typed"), 5);
        let q = round_trip(&q);
        assert_eq!(q.rx.bytes().collect::<alloc::vec::Vec<_>>(), b"typed");
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
        let mut long = b[..line_len(0)].to_vec();
        long[bytes_out(0)..line_len(0)].copy_from_slice(&(MAX_LINE as u64).to_le_bytes());
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
        s.write(COM1 + 2, 1, 0x01); // FIFOs on
        assert_eq!(s.push_input(b"in"), 2);
        out(&mut s, b"abc");
        let good = s.state_bytes();
        let held = 2;
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
        assert_eq!(field(FCR, 0x03), "UART FCR", "a reset bit is never kept");
        assert_eq!(field(FCR, 0x00), "UART FCR", "two bytes in a 16450's RBR");
        assert_eq!(field(OVERRUN, 2), "UART overrun");
        assert_eq!(field(THRE, 2), "UART THRE interrupt");
        assert_eq!(field(DELTAS, 0x10), "UART MSR deltas");
        assert_eq!(field(HELD, 17), "UART received bytes");
        assert_eq!(field(bytes_out(held), 2), "UART bytes written");
        assert_eq!(field(line_len(held) + 3, b'\n'), "UART partial line byte");
        assert_eq!(field(line_len(held) + 4, b'\r'), "UART partial line byte");
        let mut b = good.clone();
        (b[bytes_out(held)], b[line_len(held)]) = (9, 4);
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
