// SPDX-License-Identifier: MIT OR Apache-2.0
//! The hardware-independent half of the e1000 driver: descriptor encoding and decoding, ring
//! index arithmetic, the receive verdict, frame padding, MAC address handling and the register
//! values the driver programs. References are to the Intel PCI/PCI-X Family of Gigabit Ethernet
//! Controllers Software Developer's Manual (317453006EN, revision 4.0; "SDM").
//!
//! Self-contained (no crate imports) so it also builds as a test crate on the host:
//! `rustc --edition 2024 --test kernel/src/drivers/net/e1000/ring.rs -o /tmp/e1000-ring && /tmp/e1000-ring`.

/// Size of one legacy receive or transmit descriptor (SDM 3.2.3, 3.3.3).
pub const DESC_SIZE: usize = 16;
/// Byte offset of the status field in both descriptor kinds (SDM tables 3-1 and 3-8).
pub const DESC_STATUS: usize = 12;
/// Packet buffer size per descriptor: RCTL.BSIZE = 00b with BSEX = 0 (SDM 3.2.2, 13.4.22).
pub const BUF_SIZE: usize = 2048;
/// Shortest Ethernet frame without FCS: shorter frames are padded with zeros to this length.
pub const ETH_ZLEN: usize = 60;

/// Receive status: descriptor done (SDM 3.2.3.1).
pub const RX_STA_DD: u8 = 1 << 0;
/// Receive status: end of packet (SDM 3.2.3.1).
pub const RX_STA_EOP: u8 = 1 << 1;
/// Transmit command: end of packet (SDM 3.3.3.1).
pub const TX_CMD_EOP: u8 = 1 << 0;
/// Transmit command: insert FCS (SDM 3.3.3.1).
pub const TX_CMD_IFCS: u8 = 1 << 1;
/// Transmit command: report status, i.e. write DD back when done (SDM 3.3.3.1).
pub const TX_CMD_RS: u8 = 1 << 3;
/// Transmit status: descriptor done (SDM 3.3.3.2).
pub const TX_STA_DD: u8 = 1 << 0;

/// RCTL (SDM 13.4.22): receiver enable.
pub const RCTL_EN: u32 = 1 << 1;
/// RCTL: accept broadcast.
pub const RCTL_BAM: u32 = 1 << 15;
/// RCTL: strip the Ethernet CRC from received frames.
pub const RCTL_SECRC: u32 = 1 << 26;
/// RCTL as programmed: enabled, broadcast accepted, CRC stripped, 2048-byte buffers (BSIZE = 00b,
/// BSEX = 0), no long packets, no loopback, no promiscuous modes, multicast offset 0.
pub const RCTL_VALUE: u32 = RCTL_EN | RCTL_BAM | RCTL_SECRC;

/// TCTL (SDM 13.4.33): transmitter enable.
pub const TCTL_EN: u32 = 1 << 1;
/// TCTL: pad short packets.
pub const TCTL_PSP: u32 = 1 << 3;
/// TCTL as programmed: enabled, short packets padded, collision threshold CT = 0Fh, collision
/// distance COLD = 40h (the full-duplex value; SDM 14.5).
pub const TCTL_VALUE: u32 = TCTL_EN | TCTL_PSP | (0x0F << 4) | (0x40 << 12);
/// TIPG (SDM 13.4.34): IPGT = 10, IPGR1 = 8, IPGR2 = 6, the IEEE 802.3 values for copper
/// 82540/82545 parts (SDM 14.5, table 13-77).
pub const TIPG_VALUE: u32 = 10 | (8 << 10) | (6 << 20);

/// RAH: address valid (SDM 13.5.3).
pub const RAH_AV: u32 = 1 << 31;
/// EERD (SDM 13.4.4, 82540/82545/82546 layout): start a read.
pub const EERD_START: u32 = 1 << 0;
/// EERD: the read is done and DATA holds the word.
pub const EERD_DONE: u32 = 1 << 4;

/// The index after `i` in a ring of `n` descriptors.
pub const fn next(i: usize, n: usize) -> usize {
    if i + 1 >= n { 0 } else { i + 1 }
}

/// Descriptors handed to the hardware and not yet reclaimed: those from `clean` (oldest in
/// flight) up to, not including, `tail` (the next one software fills; the TDT value).
pub const fn in_flight(clean: usize, tail: usize, n: usize) -> usize {
    (tail + n - clean) % n
}

/// Whether one more transmit descriptor may be queued. One slot always stays empty: TDT may
/// never catch up with TDH, since head == tail means an empty ring (SDM 3.4).
pub const fn tx_has_room(clean: usize, tail: usize, n: usize) -> bool {
    in_flight(clean, tail, n) + 1 < n
}

/// Length put on the wire (before the FCS) for a frame of `len` bytes: short frames are padded
/// with zeros to 60 bytes by the driver itself.
pub const fn padded_len(len: usize) -> usize {
    if len < ETH_ZLEN { ETH_ZLEN } else { len }
}

/// A legacy transmit descriptor (SDM 3.3.3) as its two little-endian quadwords: buffer address;
/// then length (bits 15:0), CSO = 0, CMD (bits 31:24), STA = 0, CSS = 0, special = 0.
pub const fn tx_desc(buffer: u64, len: u16, cmd: u8) -> [u64; 2] {
    [buffer, len as u64 | (cmd as u64) << 24]
}

/// A receive descriptor handed to the hardware (SDM 3.2.3): buffer address, and status, errors,
/// length all zero.
pub const fn rx_desc(buffer: u64) -> [u64; 2] {
    [buffer, 0]
}

/// What the hardware wrote back into the second quadword of a receive descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxWriteBack {
    /// Bytes stored in the buffer.
    pub length: u16,
    /// Status (DD, EOP, ...).
    pub status: u8,
    /// Errors (CE, SE, SEQ, CXE, TCPE, IPE, RXE).
    pub errors: u8,
}

/// Decodes the second quadword of a receive descriptor (SDM 3.2.3: length 15:0, checksum 31:16,
/// status 39:32, errors 47:40, special 63:48).
pub const fn rx_decode(upper: u64) -> RxWriteBack {
    RxWriteBack {
        length: upper as u16,
        status: (upper >> 32) as u8,
        errors: (upper >> 40) as u8,
    }
}

/// What to do with a completed receive descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxVerdict {
    /// A whole, error-free frame of this many bytes: hand it to the caller.
    Deliver(usize),
    /// Drop it; `count` says whether this is the first descriptor of the dropped frame (so each
    /// dropped frame is counted once).
    Drop {
        /// Count the frame in `rx_dropped`.
        count: bool,
    },
}

/// Judges a completed receive descriptor. `discarding` carries state across descriptors: a
/// frame spread over several descriptors (no EOP on the first) cannot happen with 2048-byte
/// buffers and long packets off, so it is dropped, up to and including its EOP descriptor. A
/// frame with any error bit (checksum offload is off, so all of them are frame errors), or a
/// length outside `min..=max` (`max` at most the buffer size), is dropped too. Nothing the
/// device writes can make the result exceed `max`.
pub fn rx_verdict(wb: RxWriteBack, min: usize, max: usize, discarding: &mut bool) -> RxVerdict {
    if wb.status & RX_STA_EOP == 0 {
        let first = !*discarding;
        *discarding = true;
        return RxVerdict::Drop { count: first };
    }
    if core::mem::take(discarding) {
        return RxVerdict::Drop { count: false };
    }
    let len = usize::from(wb.length);
    if wb.errors != 0 || len < min || len > max || len > BUF_SIZE {
        return RxVerdict::Drop { count: true };
    }
    RxVerdict::Deliver(len)
}

/// Whether `mac` can be a station address: not all zeros, not a group (multicast or broadcast)
/// address.
pub fn is_station_mac(mac: &[u8; 6]) -> bool {
    mac != &[0; 6] && mac[0] & 1 == 0
}

/// The station address from RAL0/RAH0 (SDM 13.5.2, 13.5.3: bytes in ascending order, RAL
/// holding the first four), if marked valid and usable.
pub fn mac_from_receive_address(ral: u32, rah: u32) -> Option<[u8; 6]> {
    let (l, h) = (ral.to_le_bytes(), rah.to_le_bytes());
    let mac = [l[0], l[1], l[2], l[3], h[0], h[1]];
    (rah & RAH_AV != 0 && is_station_mac(&mac)).then_some(mac)
}

/// RAL and RAH values that make `mac` receive address 0, marked valid.
pub fn receive_address(mac: &[u8; 6]) -> (u32, u32) {
    (
        u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]),
        u32::from(u16::from_le_bytes([mac[4], mac[5]])) | RAH_AV,
    )
}

/// The station address from EEPROM words 00h..02h (SDM 5.6.1: each word little endian).
pub fn mac_from_eeprom(words: [u16; 3]) -> [u8; 6] {
    let [a, b, c] = words.map(u16::to_le_bytes);
    [a[0], a[1], b[0], b[1], c[0], c[1]]
}

/// EERD value that starts reading EEPROM word `word` (address in bits 15:8).
pub const fn eerd_start(word: u8) -> u32 {
    EERD_START | (word as u32) << 8
}

/// The word an EERD value carries (bits 31:16) once DONE is set.
pub const fn eerd_done(eerd: u32) -> Option<u16> {
    if eerd & EERD_DONE != 0 {
        Some((eerd >> 16) as u16)
    } else {
        None
    }
}

// This file is also built on its own for the host tests (`drivers/mod.rs` names it with
// `#[path]`, which makes it resolve its submodules as a `mod.rs` would): name the file.
#[cfg(test)]
#[path = "ring/tests.rs"]
mod tests;
