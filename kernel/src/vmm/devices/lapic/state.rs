// SPDX-License-Identifier: MIT OR Apache-2.0
//! Saved state of the local APIC: its configuration (ID, timer and TSC rates, which the
//! restoring host must offer the guest too), every register, the errors not yet latched into
//! ESR, and the timer as absolute guest times, so a restore continues the countdown exactly.

use super::regs::*;
use super::timer::{Deadline, Mode, Timer};
use super::{APIC_BASE_BSP, APIC_BASE_ENABLE, DEFAULT_BASE, Lapic};
use crate::vmm::devices::state::{DeviceState, StateError, StateReader, StateWriter, ensure};

fn vectors(r: &mut StateReader<'_>, field: &'static str) -> Result<Vectors, StateError> {
    let mut s = Vectors::default();
    for w in &mut s.0 {
        *w = r.u32()?;
    }
    ensure(!s.has_illegal(), field, u64::from(s.0[0]))?;
    Ok(s)
}

/// A 32-bit register that may only have bits of `allowed` set.
fn reg(r: &mut StateReader<'_>, allowed: u32, field: &'static str) -> Result<u32, StateError> {
    let v = r.u32()?;
    ensure(v & !allowed == 0, field, u64::from(v))?;
    Ok(v)
}

/// A rate: at least 1 Hz.
fn rate(r: &mut StateReader<'_>, field: &'static str) -> Result<u64, StateError> {
    let v = r.u64()?;
    ensure(v != 0, field, v)?;
    Ok(v)
}

impl Timer {
    fn save_state(&self, w: &mut StateWriter) {
        w.u64(self.hz);
        w.u64(self.tsc_hz);
        w.u32(self.initial);
        w.u32(self.divide);
        w.option(self.countdown, |w, c| {
            w.u64(c.start_ns);
            w.u32(c.count);
            w.u64(c.fired);
        });
        w.option(self.deadline, |w, d| {
            w.u64(d.tsc);
            w.u64(d.ns);
        });
    }

    fn restore_state(r: &mut StateReader<'_>) -> Result<Self, StateError> {
        let mut timer = Self {
            hz: rate(r, "LAPIC timer frequency")?,
            tsc_hz: rate(r, "LAPIC TSC frequency")?,
            initial: r.u32()?,
            divide: reg(r, DIVIDE_WRITABLE, "LAPIC divide configuration")?,
            countdown: None,
            deadline: None,
        };
        let countdown = r.option("LAPIC countdown", |r| Ok((r.u64()?, r.u32()?, r.u64()?)))?;
        timer.countdown =
            countdown.map(|(start_ns, count, fired)| timer.countdown_at(start_ns, count, fired));
        timer.deadline = r.option("LAPIC TSC deadline", |r| {
            Ok(Deadline {
                tsc: r.u64()?,
                ns: r.u64()?,
            })
        })?;
        Ok(timer)
    }

    /// The rules every reachable timer keeps in `mode` at guest time `now` (see `timer.rs`):
    /// a countdown runs only in one-shot or periodic mode from a count no larger than the
    /// initial one, and its next expiry is still ahead (every earlier one was accounted); a
    /// deadline is armed only in TSC-deadline mode, never for 0, and is still ahead.
    fn check(&self, mode: Mode, now: u64) -> Result<(), StateError> {
        if let Some(c) = self.countdown {
            let counts = matches!(mode, Mode::OneShot | Mode::Periodic);
            ensure(
                counts,
                "LAPIC countdown in this timer mode",
                u64::from(c.count),
            )?;
            ensure(
                (1..=self.initial).contains(&c.count),
                "LAPIC countdown count",
                u64::from(c.count),
            )?;
            ensure(
                c.start_ns <= now,
                "LAPIC countdown start after now",
                c.start_ns,
            )?;
            ensure(
                mode == Mode::Periodic || c.fired == 0,
                "LAPIC one-shot expiries",
                c.fired,
            )?;
            let next = self.expiry(mode).unwrap_or(0);
            ensure(next > now, "LAPIC countdown expiry not after now", next)?;
            let previous = self.previous_expiry().unwrap_or(0);
            ensure(previous <= now, "LAPIC countdown expiry skipped", previous)?;
        }
        if let Some(d) = self.deadline {
            ensure(
                mode == Mode::TscDeadline,
                "LAPIC deadline in this timer mode",
                d.tsc,
            )?;
            ensure(d.tsc != 0, "LAPIC TSC deadline", d.tsc)?;
            ensure(d.ns > now, "LAPIC deadline not after now", d.ns)?;
        }
        ensure(
            mode != Mode::TscDeadline || self.initial == 0,
            "LAPIC initial count in TSC-deadline mode",
            u64::from(self.initial),
        )
    }
}

impl DeviceState for Lapic {
    /// Appends the APIC's state.
    fn save_state(&self, w: &mut StateWriter) {
        w.u8(self.id);
        w.u64(self.apic_base);
        w.u8(self.tpr);
        for v in [self.ldr, self.dfr, self.svr] {
            w.u32(v);
        }
        for set in [&self.isr, &self.tmr, &self.irr] {
            set.0.iter().for_each(|&word| w.u32(word));
        }
        w.u32(self.esr);
        w.u32(self.esr_pending);
        w.flag(self.error_armed);
        w.u32(self.icr_low);
        w.u32(self.icr_high);
        self.lvt.iter().for_each(|&e| w.u32(e));
        self.timer.save_state(w);
        w.u64(self.now);
    }

    /// The APIC as [`save_state`](Self::save_state) left it.
    fn restore_state(r: &mut StateReader<'_>) -> Result<Self, StateError> {
        let id = r.u8()?;
        let apic_base = r.u64()?;
        ensure(
            apic_base & !APIC_BASE_ENABLE == DEFAULT_BASE | APIC_BASE_BSP,
            "LAPIC IA32_APIC_BASE",
            apic_base,
        )?;
        let tpr = r.u8()?;
        let ldr = reg(r, LDR_WRITABLE, "LAPIC LDR")?;
        let dfr = r.u32()?;
        ensure(dfr | DFR_WRITABLE == u32::MAX, "LAPIC DFR", u64::from(dfr))?;
        let svr = reg(r, SVR_WRITABLE, "LAPIC SVR")?;
        let isr = vectors(r, "LAPIC ISR")?;
        let tmr = vectors(r, "LAPIC TMR")?;
        let irr = vectors(r, "LAPIC IRR")?;
        let esr = reg(r, ESR_BITS, "LAPIC ESR")?;
        let esr_pending = reg(r, ESR_BITS, "LAPIC pending errors")?;
        let error_armed = r.flag("LAPIC error interrupt armed")?;
        let icr_low = reg(r, ICR_LOW_WRITABLE, "LAPIC ICR")?;
        let icr_high = reg(r, ICR_HIGH_WRITABLE, "LAPIC ICR destination")?;
        let mut lvt = [0; LVT_COUNT];
        for (e, allowed) in lvt.iter_mut().zip(LVT_WRITABLE) {
            *e = reg(r, allowed, "LAPIC LVT entry")?;
            // Software-disabled: every entry is masked (SDM Vol. 3A, 11.4.7.2).
            ensure(
                svr & SVR_ENABLE != 0 || *e & LVT_MASKED != 0,
                "LAPIC LVT unmasked while software-disabled",
                u64::from(*e),
            )?;
        }
        let timer = Timer::restore_state(r)?;
        let now = r.u64()?;
        timer.check(Mode::of(lvt[TIMER]), now)?;
        let l = Self {
            id,
            apic_base,
            tpr,
            ldr,
            dfr,
            svr,
            isr,
            tmr,
            irr,
            esr,
            esr_pending,
            error_armed,
            icr_low,
            icr_high,
            lvt,
            timer,
            now,
        };
        // Globally disabled: the power-up state, which nothing can change until re-enabled.
        if !l.hw_enabled() {
            let mut reset = l.clone();
            reset.reset();
            ensure(reset == l, "LAPIC state while globally disabled", apic_base)?;
        }
        Ok(l)
    }
}
