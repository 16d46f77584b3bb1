// SPDX-License-Identifier: MIT OR Apache-2.0
//! The 8254 programmable interval timer at ports 0x40-0x43, with the PC's port 0x61 (system
//! control port B: channel 2 gate and speaker enable, refresh toggle, OUT2), per the Intel 8254
//! datasheet (order no. 231164): "Control Word Format", "Read Operations" (counter latch and
//! read-back commands, status byte), "Modes of Operation" and Figure 19 (gate effects).
//!
//! All six modes count in binary; the BCD bit is kept and reported in the status byte but
//! counting stays binary (no PC guest uses BCD counting). A count is loaded into the counting
//! element when written, not one CLK later as on the chip (that is < 1 µs). Writing the first
//! byte of a two-byte count does not stop a mode 0 countdown.
//!
//! Time is an input. The monitor calls [`Pit::advance`] with the guest's time in nanoseconds
//! before it dispatches an access to the PIT and whenever it wants ticks accounted; every read
//! uses that time, so counts are exact functions of it. The input clock is exactly
//! 105/88 MHz (colour burst / 3 = 1 193 181.8 Hz): clock `k` starts at `k * 17600 / 21` ns.
//!
//! Ticks: each rising edge of channel 0's OUT is one tick on IRQ0. [`Pit::advance`] counts the
//! edges since the previous call in O(1) whatever the gap, and adds them to a backlog. The
//! monitor delivers the backlog one tick at a time with [`Pit::deliver`], which pulses IRQ0 only
//! when the controller holds no unacknowledged IRQ0, so every tick reaches the guest exactly once.
//! The backlog is bounded to one second's worth at the current rate; ticks beyond that are
//! dropped and counted in [`Pit::dropped_ticks`].

mod state;

use core::ops::RangeInclusive;

use super::irq::{self, ByteIo, IrqLine, IrqSink};
use crate::vmm::vcpu::Width;

/// Channel 0's data port; channels 1 and 2 follow.
pub const CHANNEL0: u16 = 0x40;
/// The control word register.
pub const CONTROL: u16 = 0x43;
/// System control port B.
pub const PORT_B: u16 = 0x61;
/// Every port the PIT decodes.
pub const PORTS: [RangeInclusive<u16>; 2] = [CHANNEL0..=CONTROL, PORT_B..=PORT_B];
/// Input clock in Hz, rounded (the exact rate is 105/88 MHz).
pub const FREQUENCY_HZ: u64 = 1_193_182;

/// Port B bits the guest may write: channel 2 gate, speaker data, parity and channel checks.
const PORT_B_WRITABLE: u8 = 0x0F;
/// The DRAM refresh request toggles every 15.085 µs (port B bit 4).
const REFRESH_PERIOD_NS: u64 = 15_085;

/// The PIT clock that is current at guest time `ns`.
fn clock_at(ns: u64) -> u64 {
    (u128::from(ns) * 21 / 17_600) as u64
}

/// The first guest time at which clock `k` is current.
fn time_of_clock(k: u64) -> u64 {
    u64::try_from((u128::from(k) * 17_600).div_ceil(21)).unwrap_or(u64::MAX)
}

/// How a channel's count is read and written (control word RW bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Lsb = 1,
    Msb = 2,
    Word = 3,
}

/// One counter. Clocks are absolute PIT clocks; the counting element is described by the
/// segment that started at `start` with the value `start_count`, so any later state is computed,
/// never stepped.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Channel {
    /// Control word M2-M0 as written (6 and 7 act as 2 and 3).
    mode_bits: u8,
    access: Access,
    bcd: bool,
    /// The count register: the last complete count written, 1-65536 (0 is written for 65536).
    reload: u32,
    /// A count was written since the control word.
    armed: bool,
    null_count: bool,
    gate: bool,
    /// The counting element runs (gate allows it, or a trigger started it).
    running: bool,
    start: u64,
    start_count: u32,
    /// Modes 0, 1, 4, 5: the countdown's OUT edge happened before `start`.
    fired: bool,
    /// Modes 2 and 3: a count written mid-period and the clock at which it is reloaded.
    next: Option<(u64, u32)>,
    /// OUT edges are accounted up to this clock.
    synced: u64,
    write_lsb: Option<u8>,
    read_msb_next: bool,
    latch: Option<u16>,
    latch_msb_next: bool,
    status: Option<u8>,
}

impl Channel {
    fn new(gate: bool) -> Self {
        Self {
            mode_bits: 3,
            access: Access::Word,
            bcd: false,
            reload: 0x1_0000,
            armed: false,
            null_count: true,
            gate,
            running: false,
            start: 0,
            start_count: 0x1_0000,
            fired: false,
            next: None,
            synced: 0,
            write_lsb: None,
            read_msb_next: false,
            latch: None,
            latch_msb_next: false,
            status: None,
        }
    }

    fn mode(&self) -> u8 {
        if self.mode_bits >= 6 {
            self.mode_bits - 4
        } else {
            self.mode_bits
        }
    }

    fn elapsed(&self, clk: u64) -> u64 {
        if self.running {
            clk.saturating_sub(self.start)
        } else {
            0
        }
    }

    /// `start_count` as a period (never 0).
    fn period(&self) -> u64 {
        u64::from(self.start_count.max(1))
    }

    /// Where a one-shot countdown's OUT edge falls, relative to `start`: at terminal count in
    /// modes 0 and 1, one clock after it (the end of the strobe) in modes 4 and 5.
    fn one_shot_edge(&self) -> u64 {
        u64::from(self.start_count) + u64::from(self.mode() >= 4)
    }

    /// The counting element at `clk` ("Modes of Operation").
    fn count(&self, clk: u64) -> u16 {
        if !self.running {
            return self.start_count as u16;
        }
        let d = self.elapsed(clk);
        let s = self.period();
        let c = match self.mode() {
            2 => s - d % s,
            3 => s - (2 * (d % s)) % s, // decrements by two, twice per period
            _ => u64::from(self.start_count).wrapping_sub(d),
        };
        c as u16
    }

    /// OUT at `clk`.
    fn out(&self, clk: u64) -> bool {
        let mode = self.mode();
        if !self.armed {
            return mode != 0;
        }
        if !self.running {
            return mode != 0 || self.fired;
        }
        let d = self.elapsed(clk);
        let s = self.period();
        match mode {
            0 | 1 => self.fired || d >= u64::from(self.start_count),
            2 => d % s != s - 1,
            3 => d % s < s.div_ceil(2),
            _ => self.fired || d != u64::from(self.start_count),
        }
    }

    /// Rising OUT edges at clocks in `(a, b]` of the current segment.
    fn edges(&self, a: u64, b: u64) -> u64 {
        if !self.running || b <= a {
            return 0;
        }
        match self.mode() {
            2 | 3 => {
                let s = self.period();
                b.saturating_sub(self.start) / s - a.saturating_sub(self.start) / s
            }
            _ if self.fired => 0,
            _ => {
                let e = self.start.saturating_add(self.one_shot_edge());
                u64::from(a < e && e <= b)
            }
        }
    }

    /// The clock of the first rising OUT edge after `clk`.
    fn next_edge(&self, clk: u64) -> Option<u64> {
        if !self.running {
            return None;
        }
        match self.mode() {
            2 | 3 => {
                let s = self.period();
                let k = clk.saturating_sub(self.start) / s + 1;
                Some(self.start.saturating_add(k.saturating_mul(s)))
            }
            _ if self.fired => None,
            _ => Some(self.start.saturating_add(self.one_shot_edge())).filter(|&e| e > clk),
        }
    }

    /// Accounts OUT edges up to `clk`, applying a pending mode 2/3 reload on the way.
    fn sync(&mut self, clk: u64) -> u64 {
        let mut edges = 0;
        if let Some((at, n)) = self.next
            && clk >= at
        {
            edges += self.edges(self.synced, at);
            (self.synced, self.start, self.start_count) = (at, at, n);
            self.next = None;
            self.null_count = false;
        }
        edges += self.edges(self.synced, clk);
        self.synced = self.synced.max(clk);
        edges
    }

    /// Starts a segment at `clk` with the counting element at `count`.
    fn restart(&mut self, clk: u64, count: u32, running: bool) {
        (self.start, self.start_count, self.running) = (clk, count, running);
        self.fired = false;
        self.next = None;
        self.null_count = false;
    }

    /// A control word for this channel: mode and access set, counting stops until a count is
    /// written, OUT takes its initial level.
    fn program(&mut self, v: u8) {
        let frozen = u32::from(self.count(self.synced));
        *self = Self {
            mode_bits: (v >> 1) & 7,
            access: match (v >> 4) & 3 {
                1 => Access::Lsb,
                2 => Access::Msb,
                _ => Access::Word,
            },
            bcd: v & 1 != 0,
            synced: self.synced,
            start: self.synced,
            start_count: frozen,
            ..Self::new(self.gate)
        };
    }

    /// A complete count written at `clk` (0 means 65536).
    fn load(&mut self, clk: u64, n: u16) {
        let n = if n == 0 { 0x1_0000 } else { u32::from(n) };
        self.reload = n;
        self.null_count = true;
        match self.mode() {
            0 | 4 => self.restart(clk, n, self.gate),
            1 | 5 if !self.armed => {
                // Waits for a gate trigger with OUT high.
                (self.start_count, self.fired) = (n, true);
            }
            1 | 5 => {} // takes effect at the next trigger
            _ if self.armed && self.running => {
                let s = self.period();
                let boundary = clk.saturating_sub(self.start) / s + 1;
                let at = self.start.saturating_add(boundary.saturating_mul(s));
                self.next = Some((at, n));
            }
            _ => self.restart(clk, n, self.gate),
        }
        self.armed = true;
    }

    /// The gate input changes at `clk` (Figure 19).
    fn set_gate(&mut self, clk: u64, high: bool) {
        let rising = high && !self.gate;
        let falling = !high && self.gate;
        self.gate = high;
        if !self.armed {
            return;
        }
        match self.mode() {
            0 | 4 if falling && self.running => {
                // Counting suspends; keep where it stood.
                let d = self.elapsed(clk);
                let edge = self.one_shot_edge();
                if self.fired || d >= edge {
                    self.fired = true;
                    self.start_count =
                        u32::from(u64::from(self.start_count).wrapping_sub(d) as u16);
                } else {
                    self.start_count -= d as u32; // d < edge <= 65537
                }
                (self.start, self.running) = (clk, false);
            }
            0 | 4 if rising => (self.start, self.running) = (clk, true),
            1 | 5 | 2 | 3 if rising => self.restart(clk, self.reload, true),
            2 | 3 if falling => {
                self.start_count = u32::from(self.count(clk));
                self.running = false;
                self.next = None;
            }
            _ => {}
        }
    }

    /// Read-back status byte ("Read-Back Command", Figure 12).
    fn status_byte(&self, clk: u64) -> u8 {
        (u8::from(self.out(clk)) << 7)
            | (u8::from(self.null_count) << 6)
            | ((self.access as u8) << 4)
            | (self.mode_bits << 1)
            | u8::from(self.bcd)
    }

    fn latch_count(&mut self, clk: u64) {
        if self.latch.is_none() {
            self.latch = Some(self.count(clk));
            self.latch_msb_next = false;
        }
    }

    fn read(&mut self, clk: u64) -> u8 {
        if let Some(status) = self.status.take() {
            return status;
        }
        let (value, msb) = match self.latch {
            Some(latched) => {
                let msb = self.access == Access::Msb || self.latch_msb_next;
                let done = self.access != Access::Word || self.latch_msb_next;
                self.latch_msb_next = !done;
                if done {
                    self.latch = None;
                }
                (latched, msb)
            }
            None => {
                let msb = self.access == Access::Msb || self.read_msb_next;
                if self.access == Access::Word {
                    self.read_msb_next = !self.read_msb_next;
                }
                (self.count(clk), msb)
            }
        };
        if msb { (value >> 8) as u8 } else { value as u8 }
    }

    fn write(&mut self, clk: u64, v: u8) {
        match self.access {
            Access::Lsb => self.load(clk, u16::from(v)),
            Access::Msb => self.load(clk, u16::from(v) << 8),
            Access::Word => match self.write_lsb.take() {
                None => self.write_lsb = Some(v),
                Some(lsb) => self.load(clk, u16::from_le_bytes([lsb, v])),
            },
        }
    }
}

/// The three counters, port B, and channel 0's tick backlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pit {
    channels: [Channel; 3],
    now: u64,
    clk: u64,
    port_b: u8,
    pending: u64,
    dropped: u64,
    delivered: u64,
}

impl Default for Pit {
    fn default() -> Self {
        Self::new()
    }
}

impl Pit {
    /// A PIT at guest time 0 with no counter programmed; channels 0 and 1 have their gates tied
    /// high, channel 2's gate is port B bit 0 (low).
    pub fn new() -> Self {
        Self {
            channels: [Channel::new(true), Channel::new(true), Channel::new(false)],
            now: 0,
            clk: 0,
            port_b: 0,
            pending: 0,
            dropped: 0,
            delivered: 0,
        }
    }

    /// Whether `port` belongs to the PIT.
    pub fn decodes(port: u16) -> bool {
        PORTS.iter().any(|r| r.contains(&port))
    }

    /// Moves guest time to `now_ns` (earlier times are ignored: time is monotonic) and adds the
    /// channel 0 ticks since the last call to the backlog. Reads and writes happen at this time.
    pub fn advance(&mut self, now_ns: u64) {
        if now_ns > self.now {
            self.now = now_ns;
            self.clk = clock_at(now_ns);
        }
        let clk = self.clk;
        let ticks = self.channels[0].sync(clk);
        self.channels[1].sync(clk);
        self.channels[2].sync(clk);
        let cap = (FREQUENCY_HZ / self.channels[0].period()).max(1);
        let total = self.pending.saturating_add(ticks);
        self.pending = total.min(cap.max(self.pending));
        self.dropped = self.dropped.saturating_add(total - self.pending);
    }

    /// Guest time of the last [`advance`](Self::advance), in ns.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Ticks counted but not yet delivered.
    pub fn pending_ticks(&self) -> u64 {
        self.pending
    }

    /// Ticks dropped because the backlog was full.
    pub fn dropped_ticks(&self) -> u64 {
        self.dropped
    }

    /// Ticks taken from the backlog so far.
    pub fn delivered_ticks(&self) -> u64 {
        self.delivered
    }

    /// Takes one tick from the backlog, if any.
    pub fn take_tick(&mut self) -> bool {
        let any = self.pending > 0;
        if any {
            self.pending -= 1;
            self.delivered += 1;
        }
        any
    }

    /// Delivers one backlogged tick as a pulse on IRQ0, unless the controller still holds an
    /// unacknowledged IRQ0 (the tick then waits, so none merges with another). Returns whether a
    /// tick was delivered.
    pub fn deliver<S: IrqSink + ?Sized>(&mut self, sink: &mut S) -> bool {
        if self.pending == 0 || sink.is_requested(IrqLine::PIT) {
            return false;
        }
        self.take_tick();
        sink.pulse(IrqLine::PIT);
        true
    }

    /// Guest time (ns) of channel 0's next tick after the last advance, if it is counting
    /// towards one: when to wake a halted guest. Backlogged ticks are due already.
    pub fn next_deadline(&self) -> Option<u64> {
        self.channels[0].next_edge(self.clk).map(time_of_clock)
    }

    /// An `in` from one of [`PORTS`], at the time of the last advance.
    pub fn io_read(&mut self, port: u16, width: Width) -> u32 {
        irq::read_bytes(self, port, width)
    }

    /// An `out` to one of [`PORTS`], at the time of the last advance.
    pub fn io_write(&mut self, port: u16, width: Width, value: u32) {
        irq::write_bytes(self, port, width, value);
    }

    /// A control word ("Control Word Format", "Read-Back Command").
    fn control(&mut self, v: u8) {
        let clk = self.clk;
        match (v >> 6, (v >> 4) & 3) {
            (3, _) => {
                for (i, ch) in self.channels.iter_mut().enumerate() {
                    if v & (2 << i) == 0 {
                        continue;
                    }
                    if v & 0x20 == 0 {
                        ch.latch_count(clk);
                    }
                    if v & 0x10 == 0 && ch.status.is_none() {
                        ch.status = Some(ch.status_byte(clk));
                    }
                }
            }
            (sc, 0) => self.channels[usize::from(sc)].latch_count(clk),
            (sc, _) => self.channels[usize::from(sc)].program(v),
        }
    }
}

impl ByteIo for Pit {
    fn read_byte(&mut self, port: u16) -> u8 {
        let clk = self.clk;
        match port {
            0x40..=0x42 => self.channels[usize::from(port - CHANNEL0)].read(clk),
            PORT_B => {
                let refresh = (self.now / REFRESH_PERIOD_NS) & 1 != 0;
                let out2 = self.channels[2].out(clk);
                (self.port_b & PORT_B_WRITABLE) | u8::from(refresh) << 4 | u8::from(out2) << 5
            }
            _ => 0xFF, // the control word register cannot be read
        }
    }

    fn write_byte(&mut self, port: u16, v: u8) {
        let clk = self.clk;
        match port {
            0x40..=0x42 => self.channels[usize::from(port - CHANNEL0)].write(clk, v),
            CONTROL => self.control(v),
            PORT_B => {
                self.port_b = v & PORT_B_WRITABLE;
                self.channels[2].set_gate(clk, v & 1 != 0);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
