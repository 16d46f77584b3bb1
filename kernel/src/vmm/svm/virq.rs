// SPDX-License-Identifier: MIT OR Apache-2.0
//! External interrupts reach an AMD-V guest as virtual interrupts (V_IRQ with the vector in
//! V_INTR_VECTOR, AMD64 APM Vol. 2, 15.21.4), not through EVENTINJ.
//!
//! Why not EVENTINJ: QEMU's TCG (7.2, this project's test bed) delivers an injected INTR
//! inside VMRUN but leaves its vector as the CPU's pending exception number. If its CPU loop
//! stops (I/O, the end of an icount slice) before anything else resets that number (an exit,
//! another interrupt, a PAUSE), it delivers the vector a second time, as an exception, whatever
//! the guest's RFLAGS.IF. The APIC self test's long handler shows it: 4 self-IPIs ran 8 times,
//! 4 of them inside the first run. A Linux guest took a second timer interrupt in its entry
//! code with interrupts off, before SWAPGS, and died on a GS base of 0, or deadlocked on a
//! spinlock its interrupted code held. QEMU's virtual-interrupt path does not leave that
//! behind, and on hardware the two are equivalent: the monitor asks for the interrupt only
//! when the guest can take it (RFLAGS.IF set, no interrupt shadow, no event being injected),
//! so the CPU takes it at the first instruction boundary after VMRUN, as it would an injected
//! one. V_IGN_TPR is set: the local APIC model has already checked the
//! vector against the task priority.
//!
//! Between the local APIC model's acknowledgement (the vector moved to in-service) and the
//! guest's taking it, the vector is *in flight* ([`after_exit`] follows it): an exit that came
//! first (a host interrupt at VMRUN) leaves V_IRQ set and the vector waits there; an exit that
//! cut the interrupt's delivery short (EXITINTINFO, 15.7.2) asks for it again. QEMU reports an
//! interrupted virtual interrupt as an exception of that vector; a vector of 32 or more
//! cannot be an exception (15.20), so either form is read as the interrupt.
//!
//! Bochs 2.7's SVM does not take a virtual interrupt that is pending at VMRUN until the guest
//! sets RFLAGS.IF again: its guest runs on with V_IRQ set. Any other exit with the vector
//! still in V_IRQ and no interrupted delivery shows a CPU like that ([`AfterExit::ignored`]);
//! the vCPU then injects external interrupts through EVENTINJ, which such a CPU delivers at
//! VMRUN, for the rest of its life, and so do the vCPUs created after it. (On Bochs the vCPU
//! that finds out stays less exact than the later ones: its APIC self test guest counted 2
//! PIT ticks of 50 after the switch, 50 when it started with EVENTINJ; Bochs keeps some state
//! of the virtual interrupt it ignored that this code does not model.)

use crate::vmm::svm::vmcb::{EventInfo, EventType};

/// First vector that is not an exception (APM Vol. 2, 8.2).
const FIRST_INTERRUPT_VECTOR: u8 = 32;

/// What an exit leaves for the next VMRUN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AfterExit {
    /// The external interrupt still to be taken through V_IRQ.
    pub in_flight: Option<u8>,
    /// The event to inject again through EVENTINJ (an exception or NMI whose delivery the
    /// exit interrupted), or [`EventInfo::NONE`].
    pub reinject: EventInfo,
    /// The guest ran without taking the interrupt in V_IRQ although it could (it was asked
    /// for only then, and the exit is neither a host interrupt nor in its delivery).
    pub ignored: bool,
    /// The exit cut the delivery of [`in_flight`](Self::in_flight) short: it must be
    /// delivered at the next VMRUN whatever RFLAGS.IF says now (an emulator may not have
    /// rolled it back).
    pub redeliver: bool,
}

/// The vector of an external interrupt whose delivery `info` (EXITINTINFO) says was cut
/// short, in either form: INTR, or QEMU's exception with a vector of 32 or more.
fn interrupted_interrupt(info: EventInfo) -> Option<u8> {
    if !info.valid() {
        return None;
    }
    match info.event_type() {
        Some(EventType::External) => Some(info.vector()),
        Some(EventType::Exception) if info.vector() >= FIRST_INTERRUPT_VECTOR => {
            Some(info.vector())
        }
        _ => None,
    }
}

/// After an exit: `in_flight` was the interrupt waiting in V_IRQ before the VMRUN,
/// `exit_int_info` is EXITINTINFO, `v_irq` whether V_IRQ is still set and `host_interrupt`
/// whether a physical interrupt made the exit (it may come before the guest's first
/// instruction).
pub fn after_exit(
    in_flight: Option<u8>,
    exit_int_info: EventInfo,
    v_irq: bool,
    host_interrupt: bool,
) -> AfterExit {
    if let Some(vector) = interrupted_interrupt(exit_int_info) {
        return AfterExit {
            in_flight: Some(vector),
            reinject: EventInfo::NONE,
            ignored: false,
            redeliver: true,
        };
    }
    // Taken once the CPU cleared V_IRQ.
    let waiting = in_flight.filter(|_| v_irq);
    AfterExit {
        in_flight: waiting,
        reinject: exit_int_info.reinjection(),
        ignored: waiting.is_some() && !host_interrupt,
        redeliver: false,
    }
}

/// What a HLT exit leaves the vCPU in, for a guest with RFLAGS.IF `interrupts_on` and
/// `in_flight` the interrupt acknowledged and not yet taken (waiting in V_IRQ, or for
/// EVENTINJ). HLT waits for an interrupt the guest can take (APM Vol. 3, HLT): one in flight is
/// such an interrupt (the local APIC model has delivered it already, and no other comes while
/// it is in service), so HLT ends at once and the next VMRUN delivers it; reported as a halt,
/// the vCPU would wait for another that its in-service vector holds back, for ever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterHlt {
    /// Run on: the interrupt in flight ends the halt.
    Wake,
    /// Halted until the controller has an interrupt.
    Halt,
    /// HLT with interrupts off: nothing can end it.
    Shutdown,
}

/// [`AfterHlt`] for a guest with RFLAGS.IF `interrupts_on` and `in_flight`.
pub fn after_hlt(interrupts_on: bool, in_flight: Option<u8>) -> AfterHlt {
    match (interrupts_on, in_flight) {
        (false, _) => AfterHlt::Shutdown,
        (true, Some(_)) => AfterHlt::Wake,
        (true, None) => AfterHlt::Halt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMER: u8 = 0xEC;

    #[test]
    fn an_interrupt_the_guest_took_is_done() {
        let after = after_exit(Some(TIMER), EventInfo::NONE, false, false);
        assert_eq!(after.in_flight, None);
        assert_eq!(after.reinject, EventInfo::NONE);
    }

    #[test]
    fn an_interrupt_not_yet_taken_waits_in_v_irq() {
        // A host interrupt stopped the guest before it could take the virtual one.
        let after = after_exit(Some(TIMER), EventInfo::NONE, true, true);
        assert_eq!(after.in_flight, Some(TIMER));
        assert!(!after.ignored);
        assert_eq!(
            after.reinject,
            EventInfo::NONE,
            "never injected a second way"
        );
    }

    #[test]
    fn an_interrupt_whose_delivery_was_cut_short_is_asked_for_again_not_injected() {
        for info in [
            EventInfo::external(TIMER),
            // QEMU's form of an interrupted virtual interrupt.
            EventInfo::exception(TIMER, None),
        ] {
            for v_irq in [false, true] {
                let after = after_exit(Some(TIMER), info, v_irq, false);
                assert_eq!(after.in_flight, Some(TIMER), "{info:?} v_irq={v_irq}");
                assert!(!after.ignored, "{info:?} v_irq={v_irq}");
                assert!(after.redeliver, "{info:?} v_irq={v_irq}");
                assert_eq!(after.reinject, EventInfo::NONE, "{info:?} v_irq={v_irq}");
            }
        }
    }

    #[test]
    fn exceptions_and_nmis_are_injected_again_through_eventinj() {
        let page_fault = EventInfo::exception(14, Some(2));
        for in_flight in [None, Some(TIMER)] {
            let after = after_exit(in_flight, page_fault, false, false);
            assert_eq!(after.reinject, page_fault);
            assert_eq!(after.in_flight, None);
        }
        let after = after_exit(None, EventInfo::nmi(), false, false);
        assert_eq!(after.reinject, EventInfo::nmi());
        // Vector 31 is still an exception (reserved), not an interrupt.
        let after = after_exit(None, EventInfo::exception(31, None), false, false);
        assert_eq!(after.in_flight, None);
        assert_eq!(after.reinject, EventInfo::exception(31, None));
    }

    #[test]
    fn nothing_pending_stays_nothing() {
        // V_IRQ may be the monitor's interrupt-window request: no interrupt is in flight.
        for host_interrupt in [false, true] {
            let after = after_exit(None, EventInfo::NONE, true, host_interrupt);
            assert_eq!(
                after,
                AfterExit {
                    in_flight: None,
                    reinject: EventInfo::NONE,
                    ignored: false,
                    redeliver: false,
                }
            );
        }
    }

    /// Bochs 2.7: the guest ran on (here into an I/O exit) with the interrupt still in V_IRQ.
    #[test]
    fn a_cpu_that_ran_the_guest_past_a_pending_virtual_interrupt_is_caught() {
        let after = after_exit(Some(TIMER), EventInfo::NONE, true, false);
        assert!(after.ignored);
        assert!(
            !after.redeliver,
            "the guest may have turned interrupts off since"
        );
        assert_eq!(after.in_flight, Some(TIMER), "still to be delivered");
        assert_eq!(after.reinject, EventInfo::NONE);
    }

    #[test]
    fn an_interrupt_in_flight_ends_a_halt_at_once() {
        assert_eq!(after_hlt(true, Some(TIMER)), AfterHlt::Wake);
        assert_eq!(after_hlt(true, None), AfterHlt::Halt);
        assert_eq!(after_hlt(false, Some(TIMER)), AfterHlt::Shutdown);
        assert_eq!(after_hlt(false, None), AfterHlt::Shutdown);
    }
}
