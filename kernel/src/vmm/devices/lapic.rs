// SPDX-License-Identifier: MIT OR Apache-2.0
//! The local APIC of the guest's single vCPU, in xAPIC mode (Intel SDM Vol. 3A, chapter 11
//! "Advanced Programmable Interrupt Controller (APIC)").
//!
//! Modelled: the register page (11.4.1, Table 11-1) with ID, version, TPR, APR, PPR, EOI, LDR,
//! DFR, SVR, ISR/TMR/IRR, ESR, ICR and the seven LVT entries (CMCI, timer, thermal,
//! performance counter, LINT0, LINT1, error); interrupt acceptance, priorities and EOI
//! (11.8); the timer in one-shot, periodic and TSC-deadline modes (11.5.4, see [`timer`]);
//! self-IPIs (11.6); the error register (11.5.3); software enable through SVR (11.4.7.2) and
//! global enable through IA32_APIC_BASE (11.4.3, 11.4.4).
//!
//! Not offered: x2APIC (the CPUID bit stays clear and IA32_APIC_BASE refuses its enable bit),
//! EOI-broadcast suppression (version bit 24 clear), relocating the register page (a write of
//! IA32_APIC_BASE with another base raises #GP, so the base always reads back as 0xFEE00000).
//! Only fixed and lowest-priority messages are accepted: NMI, SMI, INIT, start-up and ExtINT
//! messages (from the ICR, LINT1 or the IOAPIC) are dropped, as the back ends have no way to
//! inject them; the PIC's ExtINT reaches the vCPU through LINT0 instead
//! ([`Lapic::accepts_pic_interrupts`]). LVT thermal, performance and CMCI entries are
//! registers only: nothing raises them. The APIC ID is read-only.
//!
//! After [`Lapic::new`] the APIC is as a PC BIOS leaves it (SeaBIOS `smp_setup`): globally and
//! software enabled, spurious vector 0xFF, LINT0 in ExtINT mode (virtual wire: the 8259A's
//! INTR goes to the CPU through it, which Linux relies on until it switches to the IOAPIC) and
//! LINT1 as NMI, every other LVT entry masked.
//!
//! # Wiring (for the monitor)
//!
//! Time is an input: every call that can depend on it takes the guest time in ns (from
//! `devices::clock`), and timer expiries up to that time are accounted first.
//!
//! - MMIO at [`Lapic::mmio_base`] (4 KiB): [`Lapic::read`] / [`Lapic::write`] with the offset in
//!   the page, the access width and guest time. A write returns the vector of a level-triggered
//!   interrupt whose EOI the guest just wrote: pass it to `IoApic::eoi`.
//! - MSRs: IA32_APIC_BASE ([`Lapic::apic_base_msr`], [`Lapic::write_apic_base_msr`]) and
//!   IA32_TSC_DEADLINE ([`Lapic::tsc_deadline`], [`Lapic::write_tsc_deadline`], with the guest
//!   TSC, which must advance at the `tsc_hz` given to [`Lapic::new`], or to
//!   [`Lapic::resume_on_host`] after a restore, in step with guest time).
//!   CR8 is TPR bits 7:4 ([`Lapic::cr8`], [`Lapic::set_cr8`]).
//! - Interrupt injection: the chipset's `InterruptSource` (which knows guest time; this model
//!   cannot implement that trait itself, its methods take no time) answers `pending` with the
//!   PIC's vector when [`Lapic::accepts_pic_interrupts`] and the PIC has one, else
//!   [`Lapic::pending`]; `acknowledge` likewise with `Pic::acknowledge` or
//!   [`Lapic::acknowledge`].
//! - The IOAPIC sends to the LAPIC through [`ApicBus`], which [`Lapic`] implements.
//! - The run loop may sleep until [`Lapic::next_deadline`] (guest ns) at the latest.
//! - CPUID should report the timer's input clock, [`LapicConfig::timer_hz`] (leaf 0x15/0x16),
//!   the TSC-deadline bit (leaf 1 ECX 24) and leave x2APIC (ECX 21) clear.
//!
//! The state saves and restores completely ([`DeviceState`](super::state::DeviceState), in
//! `lapic/state.rs`); timers are kept as absolute guest times, so a restore on another host,
//! whose guest clock resumes at the saved guest time, continues every countdown exactly.

mod message;
pub mod regs;
mod state;
pub mod timer;

pub use message::{ApicBus, DeliveryMode, Message};

use self::regs::*;
use self::timer::{Mode, Timer};
use crate::vmm::vcpu::Width;

/// Default physical address of the register page (SDM Vol. 3A, 11.4.1).
pub const DEFAULT_BASE: u64 = 0xFEE0_0000;
/// Size of the register page.
pub const PAGE_SIZE: u64 = 0x1000;
/// IA32_APIC_BASE bit 8: this is the bootstrap processor (11.4.4, Figure 11-5).
pub const APIC_BASE_BSP: u64 = 1 << 8;
/// IA32_APIC_BASE bit 10: x2APIC mode (not offered).
pub const APIC_BASE_X2APIC: u64 = 1 << 10;
/// IA32_APIC_BASE bit 11: APIC global enable.
pub const APIC_BASE_ENABLE: u64 = 1 << 11;

/// What the guest cannot change about its local APIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LapicConfig {
    /// The APIC ID (the vCPU's index; CPUID leaf 1 EBX bits 31:24 and the MADT must agree).
    pub apic_id: u8,
    /// The timer's input clock in Hz, before the divider (what CPUID leaf 0x15/0x16 reports
    /// as the core crystal / bus frequency); 0 is taken as 1.
    pub timer_hz: u64,
    /// The guest TSC's rate in Hz, for TSC-deadline mode; 0 is taken as 1.
    pub tsc_hz: u64,
}

/// The MSR write raises #GP(0) (a reserved bit, x2APIC, or another base).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsrFault;

/// One xAPIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lapic {
    id: u8,
    apic_base: u64,
    tpr: u8,
    ldr: u32,
    dfr: u32,
    svr: u32,
    isr: Vectors,
    tmr: Vectors,
    irr: Vectors,
    /// ESR as the guest reads it: the errors latched by its last write.
    esr: u32,
    /// Errors detected since the last ESR write.
    esr_pending: u32,
    /// The next error raises the LVT error interrupt (re-armed by each ESR write, 11.5.3).
    error_armed: bool,
    icr_low: u32,
    icr_high: u32,
    lvt: [u32; LVT_COUNT],
    timer: Timer,
    /// Guest time up to which timer expiries are accounted.
    now: u64,
}

/// All ones in a `width`-byte value (for accesses to a globally disabled APIC, which no longer
/// decodes its page).
fn all_ones(width: Width) -> u64 {
    u64::MAX >> (64 - 8 * u32::from(width.clamp(1, 8)))
}

impl Lapic {
    /// The APIC as firmware leaves it (see the module documentation), at guest time 0.
    pub fn new(config: LapicConfig) -> Self {
        let mut l = Self::power_up(
            config.apic_id,
            DEFAULT_BASE | APIC_BASE_BSP | APIC_BASE_ENABLE,
            Timer::new(config.timer_hz, config.tsc_hz),
            0,
        );
        l.svr = SVR_ENABLE | 0xFF;
        l.lvt[LINT0] = 0x8700; // ExtINT, level
        l.lvt[LINT1] = 0x8400; // NMI, level
        l
    }

    /// The power-up state of the registers (SDM Vol. 3A, 11.4.7.1), with this ID,
    /// IA32_APIC_BASE, (idle) timer and guest time.
    fn power_up(id: u8, apic_base: u64, timer: Timer, now: u64) -> Self {
        Self {
            id,
            apic_base,
            tpr: 0,
            ldr: 0,
            dfr: u32::MAX,
            svr: 0xFF,
            isr: Vectors::default(),
            tmr: Vectors::default(),
            irr: Vectors::default(),
            esr: 0,
            esr_pending: 0,
            error_armed: true,
            icr_low: 0,
            icr_high: 0,
            lvt: [LVT_MASKED; LVT_COUNT],
            timer,
            now,
        }
    }

    /// The power-up state of the registers, which a global disable also returns to (11.4.3);
    /// the ID, IA32_APIC_BASE, the rates and guest time stay.
    fn reset(&mut self) {
        *self = Self::power_up(
            self.id,
            self.apic_base,
            Timer::new(self.timer.hz, self.timer.tsc_hz),
            self.now,
        );
    }

    /// The APIC ID.
    pub fn id(&self) -> u8 {
        self.id
    }

    /// Guest time up to which timer expiries are accounted (the latest time it was given).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The timer's input clock in Hz.
    pub fn timer_hz(&self) -> u64 {
        self.timer.hz
    }

    /// Resumed on a host whose TSC runs at `tsc_hz`: the guest's TSC is that host's plus an
    /// offset, so TSC deadlines the guest writes from now on are converted at that rate (one
    /// already armed keeps its guest time). Guest time itself resumes at the saved value
    /// (`devices::clock`).
    pub fn resume_on_host(&mut self, tsc_hz: u64) {
        self.timer.tsc_hz = tsc_hz.max(1);
    }

    fn hw_enabled(&self) -> bool {
        self.apic_base & APIC_BASE_ENABLE != 0
    }

    fn sw_enabled(&self) -> bool {
        self.svr & SVR_ENABLE != 0
    }

    fn timer_mode(&self) -> Mode {
        Mode::of(self.lvt[TIMER])
    }

    /// Physical address of the register page, while the APIC is globally enabled.
    pub fn mmio_base(&self) -> Option<u64> {
        self.hw_enabled()
            .then_some(self.apic_base & !(PAGE_SIZE - 1))
    }

    /// IA32_APIC_BASE (MSR 0x1B).
    pub fn apic_base_msr(&self) -> u64 {
        self.apic_base
    }

    /// A WRMSR of IA32_APIC_BASE at guest time `now`: only the global enable bit may change
    /// (the BSP bit is read-only and ignored). Clearing it returns the APIC to its power-up
    /// state (SDM Vol. 3A, 11.4.3); setting it again leaves the APIC software-disabled.
    ///
    /// # Errors
    /// [`MsrFault`] (#GP) for another base, the x2APIC bit or any reserved bit.
    pub fn write_apic_base_msr(&mut self, value: u64, now: u64) -> Result<(), MsrFault> {
        self.advance(now);
        if value & !(APIC_BASE_BSP | APIC_BASE_ENABLE) != self.apic_base & !(PAGE_SIZE - 1) {
            return Err(MsrFault);
        }
        let was = self.hw_enabled();
        self.apic_base = (self.apic_base & !APIC_BASE_ENABLE) | (value & APIC_BASE_ENABLE);
        if was && !self.hw_enabled() {
            self.reset();
        }
        Ok(())
    }

    /// IA32_TSC_DEADLINE (MSR 0x6E0): the armed deadline, 0 when disarmed or outside
    /// TSC-deadline mode (SDM Vol. 3A, 11.5.4.1).
    pub fn tsc_deadline(&self) -> u64 {
        self.timer.read_deadline(self.timer_mode())
    }

    /// A WRMSR of IA32_TSC_DEADLINE at guest time `now`, the guest TSC reading `guest_tsc`:
    /// arms the timer (0 disarms; a deadline already passed fires now). Ignored outside
    /// TSC-deadline mode.
    pub fn write_tsc_deadline(&mut self, value: u64, guest_tsc: u64, now: u64) {
        self.advance(now);
        let mode = self.timer_mode();
        self.timer.write_deadline(mode, value, guest_tsc, self.now);
        self.advance(self.now);
    }

    /// CR8: TPR bits 7:4 (SDM Vol. 3A, 11.8.6.1).
    pub fn cr8(&self) -> u64 {
        u64::from(self.tpr >> 4)
    }

    /// MOV to CR8: TPR becomes bits 3:0 of `value` shifted to bits 7:4 (ignored while the
    /// APIC is globally disabled, which keeps its power-up state).
    pub fn set_cr8(&mut self, value: u64) {
        if self.hw_enabled() {
            self.tpr = ((value & 0xF) as u8) << 4;
        }
    }

    /// Whether IRR holds `vector`: a request the vCPU has not acknowledged yet, so a new edge
    /// for it would merge with it (what `devices::irq::IrqSink::is_requested` asks).
    pub fn requested(&self, vector: u8) -> bool {
        self.irr.get(vector)
    }

    /// Accounts timer expiries up to guest time `now` (earlier times count as the latest one
    /// seen): each raises the LVT timer interrupt unless masked.
    #[inline]
    pub fn advance(&mut self, now: u64) {
        self.now = self.now.max(now);
        if self.timer.advance(self.timer_mode(), self.now) {
            self.raise_lvt(TIMER);
        }
    }

    /// Guest time of the next timer interrupt, if one is armed and unmasked.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.lvt[TIMER] & LVT_MASKED != 0 || !self.hw_enabled() {
            return None;
        }
        self.timer.expiry(self.timer_mode())
    }

    /// Whether the 8259A's INTR reaches the vCPU: through LINT0 in ExtINT mode (virtual wire),
    /// or directly while the APIC is globally disabled (SDM Vol. 3A, 11.4.3; as KVM's
    /// `kvm_apic_accept_pic_intr`).
    pub fn accepts_pic_interrupts(&self) -> bool {
        let lint0 = self.lvt[LINT0];
        !self.hw_enabled()
            || (lint0 & LVT_MASKED == 0
                && DeliveryMode::from_bits(lint0 >> 8) == DeliveryMode::ExtInt)
    }

    /// Processor priority (SDM Vol. 3A, 11.8.3.1): TPR, or the class of the highest vector in
    /// service if that is higher.
    pub fn ppr(&self) -> u8 {
        let isrv = self.isr.highest().unwrap_or(0);
        if self.tpr >> 4 >= isrv >> 4 {
            self.tpr
        } else {
            isrv & 0xF0
        }
    }

    /// Arbitration priority (SDM Vol. 3A, 11.6.2.4, Figure 11-15).
    fn apr(&self) -> u8 {
        let isrv = self.isr.highest().unwrap_or(0) >> 4;
        let irrv = self.irr.highest().unwrap_or(0) >> 4;
        let tpr = self.tpr >> 4;
        if tpr >= irrv && tpr > isrv {
            self.tpr
        } else {
            tpr.max(isrv).max(irrv) << 4
        }
    }

    /// Whether a message for `destination` in physical or logical mode addresses this APIC
    /// (SDM Vol. 3A, 11.6.2: 0xFF is a broadcast; logical mode in the flat or cluster model
    /// of DFR).
    pub fn matches(&self, destination: u8, logical: bool) -> bool {
        if destination == 0xFF {
            return true;
        }
        if !logical {
            return destination == self.id;
        }
        let ldr = (self.ldr >> 24) as u8;
        match self.dfr >> 28 {
            0xF => ldr & destination != 0,
            0x0 => destination >> 4 == ldr >> 4 && destination & ldr & 0xF != 0,
            _ => false,
        }
    }

    /// Accepts a fixed interrupt for `vector` into IRR, with its trigger mode in TMR (SDM
    /// Vol. 3A, 11.8.4). Refused (false) while the APIC is globally or software disabled, and
    /// for vectors 0-15, which log "receive illegal vector" (11.5.3).
    pub fn accept(&mut self, vector: u8, level_triggered: bool) -> bool {
        self.hw_enabled() && self.sw_enabled() && self.post(vector, level_triggered)
    }

    fn post(&mut self, vector: u8, level_triggered: bool) -> bool {
        if vector < 16 {
            self.log_error(ESR_RECEIVE_ILLEGAL);
            return false;
        }
        self.irr.put(vector, true);
        self.tmr.put(vector, level_triggered);
        true
    }

    /// Raises LVT entry `index` if unmasked and in fixed mode (the timer and error entries
    /// have no mode field: theirs reads as fixed).
    fn raise_lvt(&mut self, index: usize) {
        let e = self.lvt[index];
        if e & LVT_MASKED == 0 && DeliveryMode::from_bits(e >> 8) == DeliveryMode::Fixed {
            self.post(e as u8, false);
        }
    }

    /// Records `bits` in the errors pending for the next ESR write, raising the LVT error
    /// interrupt if armed (11.5.3).
    fn log_error(&mut self, bits: u32) {
        self.esr_pending |= bits;
        if core::mem::replace(&mut self.error_armed, false) {
            self.raise_lvt(ERROR);
        }
    }

    /// The vector the APIC would hand the vCPU now, at guest time `now`: the highest one in
    /// IRR whose priority class is above PPR's (SDM Vol. 3A, 11.8.3.1).
    #[inline]
    pub fn pending(&mut self, now: u64) -> Option<u8> {
        self.advance(now);
        self.deliverable()
    }

    fn deliverable(&self) -> Option<u8> {
        let v = self.irr.highest().filter(|_| self.hw_enabled())?;
        (v >> 4 > self.ppr() >> 4).then_some(v)
    }

    /// The interrupt-acknowledge cycle at guest time `now`: the pending vector moves from IRR
    /// to ISR and is returned. With nothing pending (the request was masked by a TPR raise
    /// since [`pending`](Self::pending)) the spurious vector from SVR, which sets nothing in
    /// service (SDM Vol. 3A, 11.9). `None` while globally disabled.
    pub fn acknowledge(&mut self, now: u64) -> Option<u8> {
        self.advance(now);
        if !self.hw_enabled() {
            return None;
        }
        Some(match self.deliverable() {
            Some(v) => {
                self.irr.put(v, false);
                self.isr.put(v, true);
                v
            }
            None => self.svr as u8,
        })
    }

    /// End of interrupt: the highest vector in service leaves ISR. Returns it if it was
    /// level-triggered (TMR set): its EOI goes to the IOAPIC (SDM Vol. 3A, 11.8.5).
    pub fn eoi(&mut self) -> Option<u8> {
        let v = self.isr.highest()?;
        self.isr.put(v, false);
        self.tmr.get(v).then_some(v)
    }

    /// A read of `width` bytes (1 to 8) at `offset` in the register page at guest time `now`.
    /// Each register is the first 4 bytes of its 16-byte slot; the other bytes, reserved
    /// offsets and write-only registers read 0. A globally disabled APIC reads all ones.
    pub fn read(&mut self, offset: u64, width: Width, now: u64) -> u64 {
        self.advance(now);
        if !self.hw_enabled() {
            return all_ones(width);
        }
        (0..u64::from(width.clamp(1, 8))).fold(0, |acc, i| {
            let at = offset.wrapping_add(i);
            let byte = if at < PAGE_SIZE && at & 0xF < 4 {
                (self.register(at & !0xF) >> (8 * (at & 3))) as u8
            } else {
                0
            };
            acc | u64::from(byte) << (8 * i)
        })
    }

    /// The 32-bit register in the slot at `offset` (16-byte aligned).
    fn register(&self, offset: u64) -> u32 {
        let word = |set: &Vectors, base: u64| set.0[((offset - base) >> 4) as usize];
        match offset {
            ID => u32::from(self.id) << 24,
            VERSION => VERSION_VALUE,
            TPR => u32::from(self.tpr),
            APR => u32::from(self.apr()),
            PPR => u32::from(self.ppr()),
            LDR => self.ldr,
            DFR => self.dfr,
            SVR => self.svr,
            ISR..0x180 => word(&self.isr, ISR),
            TMR..0x200 => word(&self.tmr, TMR),
            IRR..0x280 => word(&self.irr, IRR),
            ESR => self.esr,
            ICR_LOW => self.icr_low,
            ICR_HIGH => self.icr_high,
            TIMER_INITIAL => self.timer.initial,
            TIMER_CURRENT => self.timer.current(self.timer_mode(), self.now),
            TIMER_DIVIDE => self.timer.divide,
            _ => lvt_index(offset).map_or(0, |i| self.lvt[i]),
        }
    }

    /// A write of `width` bytes at `offset` at guest time `now`. Only aligned 32-bit writes
    /// reach a register (the SDM leaves others undefined; they are ignored, as in KVM), and
    /// read-only registers ignore writes. Returns the vector of a level-triggered interrupt
    /// whose EOI this was, for the IOAPIC.
    #[must_use]
    pub fn write(&mut self, offset: u64, width: Width, value: u64, now: u64) -> Option<u8> {
        self.advance(now);
        if !self.hw_enabled() || width != 4 || offset & 0xF != 0 || offset >= PAGE_SIZE {
            return None;
        }
        let v = value as u32;
        let mode = self.timer_mode();
        match offset {
            TPR => self.tpr = v as u8,
            EOI => return self.eoi(),
            LDR => self.ldr = v & LDR_WRITABLE,
            DFR => self.dfr = v | !DFR_WRITABLE,
            SVR => {
                self.svr = v & SVR_WRITABLE;
                if !self.sw_enabled() {
                    self.lvt.iter_mut().for_each(|e| *e |= LVT_MASKED);
                }
            }
            ESR => {
                self.esr = core::mem::take(&mut self.esr_pending);
                self.error_armed = true;
            }
            ICR_LOW => {
                self.icr_low = v & ICR_LOW_WRITABLE;
                self.send_ipi();
            }
            ICR_HIGH => self.icr_high = v & ICR_HIGH_WRITABLE,
            TIMER_INITIAL => self.timer.set_initial(mode, v, self.now),
            TIMER_DIVIDE => self.timer.set_divide(mode, v, self.now),
            _ => {
                if let Some(i) = lvt_index(offset) {
                    self.write_lvt(i, v);
                }
            }
        }
        None
    }

    /// An LVT write: masked regardless while software-disabled (SDM Vol. 3A, 11.4.7.2); a
    /// timer mode change goes to the timer (11.5.4.1).
    fn write_lvt(&mut self, index: usize, value: u32) {
        let mut v = value & LVT_WRITABLE[index];
        if !self.sw_enabled() {
            v |= LVT_MASKED;
        }
        if index == TIMER {
            self.timer
                .change_mode(self.timer_mode(), Mode::of(v), self.now);
        }
        self.lvt[index] = v;
    }

    /// Sends the IPI just written to ICR (SDM Vol. 3A, 11.6.1). There is one vCPU: the IPI
    /// reaches this APIC when the shorthand is "self" or "all including self" (fixed delivery
    /// only) or the destination field addresses it; "all excluding self" reaches nobody. Only
    /// fixed and lowest-priority IPIs are delivered; an illegal vector logs "send illegal
    /// vector" (and "receive illegal vector" where it arrives, 11.5.3).
    fn send_ipi(&mut self) {
        let icr = self.icr_low;
        let (vector, mode) = (icr as u8, DeliveryMode::from_bits(icr >> 8));
        if mode.is_vectored() && vector < 16 {
            self.log_error(ESR_SEND_ILLEGAL);
        }
        let to_self = match (icr >> 18) & 3 {
            0 => {
                mode.is_vectored() && self.matches((self.icr_high >> 24) as u8, icr & 1 << 11 != 0)
            }
            1 | 2 => mode == DeliveryMode::Fixed,
            _ => false,
        };
        if to_self {
            self.accept(vector, false);
        }
    }
}

impl ApicBus for Lapic {
    /// Accepts a fixed or lowest-priority message that addresses this APIC.
    fn deliver(&mut self, msg: Message) -> bool {
        msg.mode.is_vectored()
            && self.matches(msg.destination, msg.logical)
            && self.accept(msg.vector, msg.level_triggered)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod timer_tests;
