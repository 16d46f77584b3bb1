// SPDX-License-Identifier: MIT OR Apache-2.0
//! The modem control (MCR) and modem status (MSR) registers (PC16550D datasheet 8.7 and 8.8).
//!
//! Outside loopback a terminal is attached: CTS, DSR and DCD are asserted and never change, so
//! no modem status change is ever reported. In loopback (MCR bit 4) the modem control outputs
//! feed the status inputs inside the chip: RTS to CTS, DTR to DSR, OUT1 to RI and OUT2 to DCD
//! (datasheet 8.7, MCR bit 4), and their changes set the MSR delta bits.

/// MCR bit 0: data terminal ready.
pub const MCR_DTR: u8 = 1 << 0;
/// MCR bit 1: request to send.
pub const MCR_RTS: u8 = 1 << 1;
/// MCR bit 2: OUT1.
pub const MCR_OUT1: u8 = 1 << 2;
/// MCR bit 3: OUT2, which on a PC enables the UART's interrupt line driver.
pub const MCR_OUT2: u8 = 1 << 3;
/// MCR bit 4: loopback (diagnostic) mode.
pub const MCR_LOOP: u8 = 1 << 4;
/// MCR bits a guest can set (7:5 are always 0).
pub const MCR_WRITABLE: u8 = 0x1F;

/// MSR bit 4: clear to send.
const MSR_CTS: u8 = 1 << 4;
/// MSR bit 5: data set ready.
const MSR_DSR: u8 = 1 << 5;
/// MSR bit 6: ring indicator.
const MSR_RI: u8 = 1 << 6;
/// MSR bit 7: data carrier detect.
const MSR_DCD: u8 = 1 << 7;
/// MSR bits 3:0: delta CTS, delta DSR, trailing edge RI, delta DCD.
pub const MSR_DELTAS: u8 = 0x0F;
/// The inputs with a terminal attached.
const MSR_CONNECTED: u8 = MSR_CTS | MSR_DSR | MSR_DCD;

/// The MSR input bits 7:4 with modem control `mcr`.
pub fn inputs(mcr: u8) -> u8 {
    if mcr & MCR_LOOP == 0 {
        return MSR_CONNECTED;
    }
    [
        (MCR_RTS, MSR_CTS),
        (MCR_DTR, MSR_DSR),
        (MCR_OUT1, MSR_RI),
        (MCR_OUT2, MSR_DCD),
    ]
    .iter()
    .filter(|&&(out, _)| mcr & out != 0)
    .fold(0, |msr, &(_, input)| msr | input)
}

/// The MSR delta bits set when the inputs change from `old` to `new` (datasheet 8.8): bits 0,
/// 1 and 3 on any change of CTS, DSR and DCD, bit 2 when RI goes from on to off.
pub fn deltas(old: u8, new: u8) -> u8 {
    let changed = (old ^ new) >> 4;
    let ri_fell = (old & !new & MSR_RI) >> 4;
    (changed & !(MSR_RI >> 4)) | ri_fell
}
