// SPDX-License-Identifier: MIT OR Apache-2.0
//! Interrupt identification (PC16550D datasheet 8.5 and Table IV, Interrupt Control Functions):
//! the pending interrupt of highest priority, as the IIR reports it.

/// IER bit 0: received data available (and, in FIFO mode, character timeout).
pub const IER_RX: u8 = 1 << 0;
/// IER bit 1: transmitter holding register empty.
pub const IER_THRE: u8 = 1 << 1;
/// IER bit 2: receiver line status.
pub const IER_LINE: u8 = 1 << 2;
/// IER bit 3: modem status.
pub const IER_MODEM: u8 = 1 << 3;
/// IER bits a guest can set (7:4 are always 0).
pub const IER_WRITABLE: u8 = 0x0F;

/// IIR bit 0: no interrupt pending.
const IIR_NONE: u8 = 1 << 0;
/// IIR bits 7:6: set while the FIFOs are enabled.
const IIR_FIFO: u8 = 0xC0;

/// An interrupt source, in the datasheet's priority order (highest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// Priority 1: overrun, parity or framing error or break (LSR bits 4:1); reset by reading
    /// the LSR.
    LineStatus,
    /// Priority 2: received data at the trigger level; reset when it drops below.
    RxData,
    /// Priority 2: character timeout, FIFO mode only (datasheet 8.10); reset by reading the
    /// RBR.
    Timeout,
    /// Priority 3: transmitter holding register empty; reset by an IIR read that reports it or
    /// a THR write.
    Thre,
    /// Priority 4: modem status change (MSR bits 3:0); reset by reading the MSR.
    Modem,
}

impl Source {
    /// IIR bits 3:1 for this source.
    const fn id(self) -> u8 {
        match self {
            Self::LineStatus => 0x06,
            Self::RxData => 0x04,
            Self::Timeout => 0x0C,
            Self::Thre => 0x02,
            Self::Modem => 0x00,
        }
    }
}

/// What the interrupt logic looks at: each source's condition, before the IER enables it.
#[derive(Debug, Clone, Copy)]
pub struct Conditions {
    /// LSR error bits are set.
    pub line_error: bool,
    /// Received bytes at or above the trigger level.
    pub rx_at_trigger: bool,
    /// Received bytes below the trigger level, in FIFO mode.
    pub rx_below_trigger: bool,
    /// The THRE interrupt is latched.
    pub thre: bool,
    /// MSR delta bits are set.
    pub modem_delta: bool,
}

/// The pending source of highest priority that `ier` enables.
pub fn pending(ier: u8, c: Conditions) -> Option<Source> {
    [
        (IER_LINE, c.line_error, Source::LineStatus),
        (IER_RX, c.rx_at_trigger, Source::RxData),
        (IER_RX, c.rx_below_trigger, Source::Timeout),
        (IER_THRE, c.thre, Source::Thre),
        (IER_MODEM, c.modem_delta, Source::Modem),
    ]
    .into_iter()
    .find(|&(enable, condition, _)| ier & enable != 0 && condition)
    .map(|(_, _, source)| source)
}

/// The IIR value reporting `source` (none: bit 0 set), with bits 7:6 set in FIFO mode.
pub fn value(source: Option<Source>, fifo: bool) -> u8 {
    let fifo = if fifo { IIR_FIFO } else { 0 };
    fifo | source.map_or(IIR_NONE, Source::id)
}
