// SPDX-License-Identifier: MIT OR Apache-2.0
//! Intel 8254x ("e1000": 82540EM/EP, 82545EM/GM) driver, polled, after the Intel PCI/PCI-X
//! Family of Gigabit Ethernet Controllers Software Developer's Manual (317453006EN, revision
//! 4.0; "SDM"). QEMU's and Bochs' `e1000` are the 82540EM (8086:100E).
//!
//! One receive and one transmit ring of 256 legacy descriptors, each descriptor with its own
//! preallocated 2048-byte DMA buffer: `transmit` copies the frame into the next free buffer,
//! `receive` copies the next completed frame out and hands the descriptor straight back.
//! Nothing ever blocks; every wait during bring-up is bounded. Interrupts: the receive causes
//! (RXT0, RXO, RXDMT0; SDM 13.4.20) are enabled and connected through MSI-X, MSI or, on the
//! 82540EM which has neither, legacy INTx via the I/O APIC; the handler reads ICR (clearing
//! the causes, which deasserts the level-triggered line) and counts. The data path stays polled.
//!
//! Trust: the device writes descriptors and buffers. Nothing it writes is used as an index or
//! address: ring positions are kept by the driver (RDH/TDH are never read), buffer addresses are
//! rewritten from the driver's own copy whenever a descriptor is handed back, and lengths are
//! bounded by the buffer size and the caller's buffer before any copy.
//!
//! Memory ordering (x86): descriptors and buffers are write-back RAM, cache coherent with DMA;
//! the registers are uncached MMIO (the kernel maps everything below 4 GiB that is not RAM
//! uncached). x86 is TSO: stores become visible in program order, and an uncached store is not
//! performed before earlier stores are globally visible, so a descriptor written before the
//! tail register is seen by the device when it fetches it; loads are not reordered with older
//! loads, so a status byte read before the length reads them in that order. Only the compiler
//! must be kept from reordering, hence `compiler_fence` at those two places.
//!
//! QEMU quirk: its e1000 receives nothing for ~1 s of virtual time after each RCTL write (it
//! queues or drops what arrives meanwhile), so RCTL is written exactly once, at the end of
//! bring-up, and never rewritten.

mod ring;

use core::ptr;
use core::sync::atomic::{AtomicU64, Ordering, compiler_fence};

use super::{MAX_FRAME, MIN_FRAME, Nic, NicError, NicStats};
use crate::arch::x86_64::irq::Handler;
use crate::arch::x86_64::{instr, time};
use crate::drivers::dma::DmaBuffer;
use crate::drivers::pci::interrupts::{self, Mode};
use crate::drivers::pci::{Bar, ConfigSpace, Device, reg as pcireg};
use ring::{BUF_SIZE, DESC_SIZE, DESC_STATUS, RxVerdict};

/// Receive descriptors (RDLEN must be a multiple of 128 bytes: SDM 13.4.27).
const RX_RING: usize = 256;
/// Transmit descriptors (TDLEN likewise: SDM 13.4.38).
const TX_RING: usize = 256;
const _: () =
    assert!((RX_RING * DESC_SIZE).is_multiple_of(128) && (TX_RING * DESC_SIZE).is_multiple_of(128));
const _: () = assert!(RX_RING <= 65536 && TX_RING <= 65536 && BUF_SIZE >= MAX_FRAME);

/// Device registers used (SDM 13.3, table 13-2; 13.4, 13.5).
mod regs {
    /// Device control (13.4.1).
    pub const CTRL: u32 = 0x0000;
    /// Device status (13.4.2).
    pub const STATUS: u32 = 0x0008;
    /// EEPROM read (13.4.4).
    pub const EERD: u32 = 0x0014;
    /// Flow control address low.
    pub const FCAL: u32 = 0x0028;
    /// Flow control address high.
    pub const FCAH: u32 = 0x002C;
    /// Flow control type.
    pub const FCT: u32 = 0x0030;
    /// Interrupt cause read, clear on read (13.4.17).
    pub const ICR: u32 = 0x00C0;
    /// Interrupt mask set/read (13.4.20).
    pub const IMS: u32 = 0x00D0;
    /// Interrupt mask clear (13.4.21).
    pub const IMC: u32 = 0x00D8;
    /// Interrupt causes: receive descriptor minimum threshold, receiver overrun, receiver
    /// timer (a frame was stored) (13.4.17).
    pub const INT_RX: u32 = (1 << 4) | (1 << 6) | (1 << 7);
    /// Receive control (13.4.22).
    pub const RCTL: u32 = 0x0100;
    /// Flow control transmit timer value.
    pub const FCTTV: u32 = 0x0170;
    /// Transmit control (13.4.33).
    pub const TCTL: u32 = 0x0400;
    /// Transmit inter-packet gap (13.4.34).
    pub const TIPG: u32 = 0x0410;
    /// Receive descriptor base low, high, length, head, tail (13.4.25..13.4.29).
    pub const RDBAL: u32 = 0x2800;
    /// Receive descriptor base high.
    pub const RDBAH: u32 = 0x2804;
    /// Receive descriptor ring length in bytes.
    pub const RDLEN: u32 = 0x2808;
    /// Receive descriptor head.
    pub const RDH: u32 = 0x2810;
    /// Receive descriptor tail.
    pub const RDT: u32 = 0x2818;
    /// Transmit descriptor base low, high, length, head, tail (13.4.36..13.4.40).
    pub const TDBAL: u32 = 0x3800;
    /// Transmit descriptor base high.
    pub const TDBAH: u32 = 0x3804;
    /// Transmit descriptor ring length in bytes.
    pub const TDLEN: u32 = 0x3808;
    /// Transmit descriptor head.
    pub const TDH: u32 = 0x3810;
    /// Transmit descriptor tail.
    pub const TDT: u32 = 0x3818;
    /// Receive checksum control (offload enables; SDM chapter 3, receive checksum offloading).
    pub const RXCSUM: u32 = 0x5000;
    /// Multicast table array, 128 registers (13.5.1).
    pub const MTA: u32 = 0x5200;
    /// Receive address low/high pairs, 16 of them (13.5.2, 13.5.3).
    pub const RAL0: u32 = 0x5400;
    /// Receive address high 0.
    pub const RAH0: u32 = 0x5404;
    /// One past the highest register used: BAR0 must be at least this large.
    pub const END: u64 = 0x5480;

    /// CTRL: link reset.
    pub const CTRL_LRST: u32 = 1 << 3;
    /// CTRL: auto-speed detection enable.
    pub const CTRL_ASDE: u32 = 1 << 5;
    /// CTRL: set link up.
    pub const CTRL_SLU: u32 = 1 << 6;
    /// CTRL: invert loss-of-signal.
    pub const CTRL_ILOS: u32 = 1 << 7;
    /// CTRL: device reset (self clearing).
    pub const CTRL_RST: u32 = 1 << 26;
    /// CTRL: VLAN mode enable.
    pub const CTRL_VME: u32 = 1 << 30;
    /// CTRL: PHY reset.
    pub const CTRL_PHY_RST: u32 = 1 << 31;
    /// STATUS: full duplex.
    pub const STATUS_FD: u32 = 1 << 0;
    /// STATUS: link up.
    pub const STATUS_LU: u32 = 1 << 1;
}

/// Upper bound assumed for the TSC rate while it is not yet calibrated (NICs are probed before
/// the kernel calibrates the TSC): waits then last at least as long as asked on any CPU, and
/// longer on slower TSCs (at most ~10x for a 1 GHz TSC).
const TSC_HZ_BOUND: u64 = 10_000_000_000;
/// Iteration cap on every wait, in case the TSC does not advance.
const MAX_POLLS: u32 = 50_000_000;
/// The device reset completes in microseconds; allow 10 ms.
const RESET_TIMEOUT_US: u64 = 10_000;
/// After a reset the 8254x reloads its EEPROM (station address, initial CTRL bits, ...): give
/// it the 5 ms Intel's own drivers wait for the 82540/82545 before configuring the device,
/// so the reload cannot overwrite what the driver programs. (Emulators finish at once.)
const EEPROM_RELOAD_US: u64 = 5_000;
/// One EERD word read.
const EERD_TIMEOUT_US: u64 = 10_000;

/// Polls `done` until it holds or `us` microseconds pass (TSC; see [`TSC_HZ_BOUND`]) or
/// [`MAX_POLLS`] polls were made; returns whether it held.
fn wait_for(us: u64, mut done: impl FnMut() -> bool) -> bool {
    let hz = match time::tsc_hz() {
        0 => TSC_HZ_BOUND,
        hz => hz,
    };
    let ticks = hz.saturating_mul(us) / 1_000_000;
    let start = instr::rdtsc();
    for _ in 0..MAX_POLLS {
        if done() {
            return true;
        }
        if instr::rdtsc().wrapping_sub(start) >= ticks {
            break;
        }
        instr::pause();
    }
    done()
}

/// Busy-waits at least `us` microseconds (see [`wait_for`]).
fn delay_us(us: u64) {
    let _ = wait_for(us, || false);
}

/// The memory-mapped register window (BAR0).
struct Registers {
    base: u64,
}

impl Registers {
    fn read(&self, offset: u32) -> u32 {
        debug_assert!(u64::from(offset) < regs::END && offset.is_multiple_of(4));
        // SAFETY: `base` is this device's BAR0, checked in `E1000::new` to lie below 4 GiB
        // (identity mapped uncached by the kernel) and to span at least `regs::END` bytes;
        // `offset` is one of the aligned register constants above.
        unsafe { instr::mmio_read32(self.base + u64::from(offset)) }
    }

    fn write(&self, offset: u32, value: u32) {
        debug_assert!(u64::from(offset) < regs::END && offset.is_multiple_of(4));
        // SAFETY: as in `read`; the driver owns the device, so register writes are its to make.
        unsafe { instr::mmio_write32(self.base + u64::from(offset), value) }
    }

    /// Resets the device (CTRL.RST, SDM 13.4.1) with interrupts masked before and after, waits,
    /// bounded, for the bit to clear, then lets the EEPROM reload finish.
    fn reset(&self) -> Result<(), &'static str> {
        self.write(regs::IMC, u32::MAX);
        self.write(regs::CTRL, self.read(regs::CTRL) | regs::CTRL_RST);
        // The SDM asks for ~1 us before the device is accessed again after setting RST.
        delay_us(1);
        if !wait_for(RESET_TIMEOUT_US, || {
            self.read(regs::CTRL) & regs::CTRL_RST == 0
        }) {
            return Err("device reset did not complete (CTRL.RST stuck)");
        }
        delay_us(EEPROM_RELOAD_US);
        self.write(regs::IMC, u32::MAX);
        let _ = self.read(regs::ICR);
        Ok(())
    }

    /// The station address: RAL0/RAH0 as loaded from the EEPROM after reset (SDM 13.5.2; QEMU
    /// does so), else the EEPROM's words 0..2 read through EERD (SDM 13.4.4, 5.6.1; Bochs 2.7
    /// leaves RAL0/RAH0 clear after CTRL.RST).
    fn station_address(&self) -> Result<[u8; 6], &'static str> {
        if let Some(mac) =
            ring::mac_from_receive_address(self.read(regs::RAL0), self.read(regs::RAH0))
        {
            return Ok(mac);
        }
        let mut words = [0u16; 3];
        for (i, word) in words.iter_mut().enumerate() {
            self.write(regs::EERD, ring::eerd_start(i as u8));
            let mut value = None;
            if !wait_for(EERD_TIMEOUT_US, || {
                value = ring::eerd_done(self.read(regs::EERD));
                value.is_some()
            }) {
                return Err("no MAC address in RAL0/RAH0 and the EEPROM read timed out");
            }
            *word = value.unwrap_or(0);
        }
        let mac = ring::mac_from_eeprom(words);
        if !ring::is_station_mac(&mac) {
            return Err("no valid MAC address in RAL0/RAH0 or the EEPROM");
        }
        Ok(mac)
    }
}

/// Writes descriptor `i` of `ring`.
fn write_desc(ring: &DmaBuffer, i: usize, words: [u64; 2]) {
    let p = ring.ptr(i * DESC_SIZE).cast::<u64>();
    // SAFETY: `ring` holds at least `i + 1` 16-byte descriptors (callers pass indices below the
    // ring size) in identity-mapped DMA memory owned by this driver; 16-byte alignment comes
    // from the page-aligned buffer. Volatile: the device reads it.
    unsafe {
        ptr::write_volatile(p, words[0]);
        ptr::write_volatile(p.add(1), words[1]);
    }
}

/// The status byte of descriptor `i` of `ring` (offset 12 in both kinds).
fn desc_status(ring: &DmaBuffer, i: usize) -> u8 {
    // SAFETY: as in `write_desc`; a byte read of device-written memory, volatile because the
    // device writes it concurrently.
    unsafe { ptr::read_volatile(ring.ptr(i * DESC_SIZE + DESC_STATUS)) }
}

/// The second quadword of descriptor `i` of `ring`.
fn desc_upper(ring: &DmaBuffer, i: usize) -> u64 {
    // SAFETY: as in `write_desc`; an aligned 8-byte read.
    unsafe { ptr::read_volatile(ring.ptr(i * DESC_SIZE + 8).cast::<u64>()) }
}

/// The interrupt handler's view of one NIC: its registers and a count of the interrupts that
/// were its own (a legacy line may be shared).
struct IrqState {
    regs: Registers,
    count: AtomicU64,
}

impl Handler for IrqState {
    fn handle(&self) {
        // Reading ICR clears the causes and deasserts INTx (SDM 13.4.17). It also reports
        // masked causes (e.g. transmit done), so only enabled ones make the interrupt ours.
        if self.regs.read(regs::ICR) & regs::INT_RX != 0 {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An 8254x NIC, brought up and polled.
pub struct E1000 {
    regs: Registers,
    mac: [u8; 6],
    rx_ring: DmaBuffer,
    rx_bufs: DmaBuffer,
    /// Next receive descriptor to look at.
    rx_next: usize,
    /// Inside a frame spread over several descriptors, being dropped.
    rx_discarding: bool,
    tx_ring: DmaBuffer,
    tx_bufs: DmaBuffer,
    /// Next transmit descriptor to fill (the TDT value).
    tx_tail: usize,
    /// Oldest transmit descriptor not yet reclaimed.
    tx_clean: usize,
    stats: NicStats,
    /// Interrupts connected: how, and the handler's state (never freed, like its vector).
    irq: Option<(Mode, &'static IrqState)>,
}

impl E1000 {
    /// Brings up the NIC at `d`: checks BAR0, enables memory decoding, resets the device,
    /// reads the station address, allocates and programs both rings and enables the receiver
    /// and transmitter (SDM 14.3 general configuration, 14.4 receive and 14.5 transmit
    /// initialization). Errors say what failed; nothing is left enabled for DMA then.
    pub fn new(d: &Device, cfg: &dyn ConfigSpace) -> Result<Self, &'static str> {
        let base = match d.bars[0] {
            Bar::Memory { base, size, .. } => {
                if base == 0 {
                    return Err("BAR0 not assigned");
                }
                if base.checked_add(size).is_none_or(|end| end > 1 << 32) {
                    return Err("BAR0 above 4 GiB (not mapped)");
                }
                if size < regs::END {
                    return Err("BAR0 too small for the register set");
                }
                base
            }
            Bar::Io { .. } => return Err("BAR0 is I/O space, expected memory"),
            Bar::None => return Err("BAR0 not implemented"),
        };
        // Bus mastering only once the device is reset and its rings are set up.
        d.enable(cfg, pcireg::COMMAND_MEMORY);
        let regs = Registers { base };
        if regs.read(regs::STATUS) == u32::MAX {
            return Err("device does not respond (STATUS reads all ones)");
        }
        regs.reset()?;
        let mac = regs.station_address()?;

        let oom = "out of DMA memory for the rings";
        let rx_ring = DmaBuffer::new(RX_RING * DESC_SIZE).ok_or(oom)?;
        let rx_bufs = DmaBuffer::new(RX_RING * BUF_SIZE).ok_or(oom)?;
        let tx_ring = DmaBuffer::new(TX_RING * DESC_SIZE).ok_or(oom)?;
        let tx_bufs = DmaBuffer::new(TX_RING * BUF_SIZE).ok_or(oom)?;

        d.enable(cfg, pcireg::COMMAND_BUS_MASTER);
        let mut nic = Self {
            regs,
            mac,
            rx_ring,
            rx_bufs,
            rx_next: 0,
            rx_discarding: false,
            tx_ring,
            tx_bufs,
            tx_tail: 0,
            tx_clean: 0,
            stats: NicStats::default(),
            irq: None,
        };
        nic.start();
        nic.connect_interrupts(d, cfg);
        let status = nic.regs.read(regs::STATUS);
        log::debug!(
            "e1000 {}: link {}, {} duplex",
            d.address,
            if status & regs::STATUS_LU != 0 {
                "up"
            } else {
                "down"
            },
            if status & regs::STATUS_FD != 0 {
                "full"
            } else {
                "half"
            }
        );
        Ok(nic)
    }

    /// Connects the device's interrupt (MSI-X, MSI, else INTx) to a counting handler and
    /// enables the receive causes; without one the NIC stays purely polled.
    fn connect_interrupts(&mut self, d: &Device, cfg: &dyn ConfigSpace) {
        let state: &'static IrqState = alloc::boxed::Box::leak(alloc::boxed::Box::new(IrqState {
            regs: Registers {
                base: self.regs.base,
            },
            count: AtomicU64::new(0),
        }));
        match interrupts::connect(d, cfg, state) {
            Ok(mode) => {
                let _ = self.regs.read(regs::ICR);
                self.regs.write(regs::IMS, regs::INT_RX);
                log::info!("pci {} e1000: {mode}", d.address);
                self.irq = Some((mode, state));
            }
            Err(why) => log::info!("pci {} e1000: polled, no interrupts ({why})", d.address),
        }
    }

    /// Programs the device after reset: address filters, link, rings, transmitter, and last
    /// the receiver (the one RCTL write).
    fn start(&self) {
        let r = &self.regs;
        // Receive address 0 = the station address, the other 15 invalid; written low then
        // high, cleared high then low (SDM 13.5.3).
        let (ral, rah) = ring::receive_address(&self.mac);
        r.write(regs::RAL0, ral);
        r.write(regs::RAH0, rah);
        for n in 1..16 {
            r.write(regs::RAH0 + 8 * n, 0);
            r.write(regs::RAL0 + 8 * n, 0);
        }
        // No multicast (SDM 14.4), no flow control (14.3: zero FCAL/FCAH/FCT/FCTTV when unused),
        // no receive checksum offload: with IPOFLD and TUOFLD clear, IPE and TCPE are always 0,
        // so any error bit marks a bad frame. (All of these are 0 after reset already; written
        // anyway, so the driver does not depend on how completely a part or emulator resets.)
        for n in 0..128 {
            r.write(regs::MTA + 4 * n, 0);
        }
        for fc in [regs::FCAL, regs::FCAH, regs::FCT, regs::FCTTV] {
            r.write(fc, 0);
        }
        r.write(regs::RXCSUM, 0);
        // Link (SDM 14.3): set link up with auto-speed detection, no link or PHY reset, loss of
        // signal not inverted, no VLAN mode.
        let ctrl = r.read(regs::CTRL) | regs::CTRL_SLU | regs::CTRL_ASDE;
        r.write(
            regs::CTRL,
            ctrl & !(regs::CTRL_LRST
                | regs::CTRL_PHY_RST
                | regs::CTRL_ILOS
                | regs::CTRL_VME
                | regs::CTRL_RST),
        );

        // Receive ring (SDM 14.4): every descriptor owns its buffer; the hardware gets all but
        // one (head 0, tail RX_RING - 1).
        for i in 0..RX_RING {
            write_desc(&self.rx_ring, i, ring::rx_desc(self.rx_buf_phys(i)));
        }
        // Transmit ring (SDM 14.5): empty (head = tail = 0); buffers are attached per frame.
        for i in 0..TX_RING {
            write_desc(&self.tx_ring, i, [self.tx_buf_phys(i), 0]);
        }
        // Descriptors in memory before the device is told where they are.
        compiler_fence(Ordering::SeqCst);
        let (rx, tx) = (self.rx_ring.phys(), self.tx_ring.phys());
        r.write(regs::RDBAL, rx as u32);
        r.write(regs::RDBAH, (rx >> 32) as u32);
        r.write(regs::RDLEN, (RX_RING * DESC_SIZE) as u32);
        r.write(regs::RDH, 0);
        r.write(regs::RDT, (RX_RING - 1) as u32);
        r.write(regs::TDBAL, tx as u32);
        r.write(regs::TDBAH, (tx >> 32) as u32);
        r.write(regs::TDLEN, (TX_RING * DESC_SIZE) as u32);
        r.write(regs::TDH, 0);
        r.write(regs::TDT, 0);
        r.write(regs::TIPG, ring::TIPG_VALUE);
        r.write(regs::TCTL, ring::TCTL_VALUE);
        // The only RCTL write while the NIC is in use (see the module notes on QEMU).
        r.write(regs::RCTL, ring::RCTL_VALUE);
    }

    fn rx_buf_phys(&self, i: usize) -> u64 {
        self.rx_bufs.phys() + (i * BUF_SIZE) as u64
    }

    fn tx_buf_phys(&self, i: usize) -> u64 {
        self.tx_bufs.phys() + (i * BUF_SIZE) as u64
    }

    /// Reclaims transmit descriptors the device has finished (DD written back because every
    /// descriptor is queued with RS), oldest first.
    fn reclaim_tx(&mut self) {
        while self.tx_clean != self.tx_tail
            && desc_status(&self.tx_ring, self.tx_clean) & ring::TX_STA_DD != 0
        {
            self.tx_clean = ring::next(self.tx_clean, TX_RING);
        }
    }

    /// Hands receive descriptor `i` (just consumed) back to the device: its own buffer address
    /// again (whatever the device wrote), status cleared, then the tail moved onto it, so the
    /// device owns every descriptor but this one.
    fn recycle_rx(&mut self, i: usize) {
        write_desc(&self.rx_ring, i, ring::rx_desc(self.rx_buf_phys(i)));
        // The descriptor in memory before the tail write (module notes).
        compiler_fence(Ordering::SeqCst);
        self.regs.write(regs::RDT, i as u32);
        self.rx_next = ring::next(i, RX_RING);
    }
}

impl Nic for E1000 {
    fn name(&self) -> &'static str {
        "e1000"
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), NicError> {
        let len = frame.len();
        if !(MIN_FRAME..=MAX_FRAME).contains(&len) {
            return Err(NicError::BadLength(len));
        }
        if !ring::tx_has_room(self.tx_clean, self.tx_tail, TX_RING) {
            self.reclaim_tx();
            if !ring::tx_has_room(self.tx_clean, self.tx_tail, TX_RING) {
                self.stats.tx_full += 1;
                return Err(NicError::Full);
            }
        }
        let i = self.tx_tail;
        let wire_len = ring::padded_len(len);
        let buf = self.tx_bufs.ptr(i * BUF_SIZE);
        // SAFETY: buffer `i` is BUF_SIZE (>= MAX_FRAME >= wire_len) bytes of this driver's DMA
        // memory, not owned by the device (its descriptor is not between TDH and TDT); `frame`
        // is a separate allocation. Zero padding makes short frames 60 bytes on the wire
        // without relying on TCTL.PSP.
        unsafe {
            ptr::copy_nonoverlapping(frame.as_ptr(), buf, len);
            ptr::write_bytes(buf.add(len), 0, wire_len - len);
        }
        let cmd = ring::TX_CMD_EOP | ring::TX_CMD_IFCS | ring::TX_CMD_RS;
        write_desc(
            &self.tx_ring,
            i,
            ring::tx_desc(self.tx_buf_phys(i), wire_len as u16, cmd),
        );
        self.tx_tail = ring::next(i, TX_RING);
        // Buffer and descriptor in memory before the tail write (module notes).
        compiler_fence(Ordering::SeqCst);
        self.regs.write(regs::TDT, self.tx_tail as u32);
        self.stats.tx_frames += 1;
        Ok(())
    }

    /// Receive address 1 (SDM 13.5.3: low then high, the high word's Address Valid bit last);
    /// the receiver needs no RCTL write for it.
    fn accept_unicast(&mut self, mac: [u8; 6]) -> bool {
        let (ral, rah) = ring::receive_address(&mac);
        self.regs.write(regs::RAL0 + 8, ral);
        self.regs.write(regs::RAH0 + 8, rah);
        true
    }

    fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        let max = buf.len().min(MAX_FRAME);
        // Dropped frames are skipped; at most one ring's worth per call.
        for _ in 0..RX_RING {
            let i = self.rx_next;
            if desc_status(&self.rx_ring, i) & ring::RX_STA_DD == 0 {
                return None;
            }
            // Status (DD) read before the length and errors (module notes).
            compiler_fence(Ordering::SeqCst);
            let wb = ring::rx_decode(desc_upper(&self.rx_ring, i));
            let delivered = match ring::rx_verdict(wb, MIN_FRAME, max, &mut self.rx_discarding) {
                RxVerdict::Deliver(len) => {
                    // SAFETY: `len <= max <= buf.len()` and `len <= BUF_SIZE` (rx_verdict), so
                    // both ranges are in bounds; buffer `i` belongs to the driver while its
                    // descriptor has DD set and is not yet handed back.
                    unsafe {
                        ptr::copy_nonoverlapping(
                            self.rx_bufs.ptr(i * BUF_SIZE),
                            buf.as_mut_ptr(),
                            len,
                        );
                    }
                    self.stats.rx_frames += 1;
                    Some(len)
                }
                RxVerdict::Drop { count } => {
                    if count {
                        self.stats.rx_dropped += 1;
                    }
                    None
                }
            };
            self.recycle_rx(i);
            if delivered.is_some() {
                return delivered;
            }
        }
        None
    }

    fn poll(&mut self) {
        self.reclaim_tx();
    }

    fn stats(&self) -> NicStats {
        self.stats
    }

    fn interrupts(&self) -> Option<(&'static str, u64)> {
        self.irq
            .map(|(mode, state)| (mode.name(), state.count.load(Ordering::Relaxed)))
    }

    fn route_interrupts(&mut self, apic_id: u32) -> bool {
        self.irq
            .is_some_and(|(mode, _)| interrupts::route(&mode, apic_id))
    }
}

impl Drop for E1000 {
    /// Stops all DMA before the rings and buffers (dropped after this) are freed.
    fn drop(&mut self) {
        self.regs.write(regs::RCTL, 0);
        self.regs.write(regs::TCTL, 0);
        if let Err(e) = self.regs.reset() {
            log::error!("e1000: {e} while shutting down");
        }
    }
}
