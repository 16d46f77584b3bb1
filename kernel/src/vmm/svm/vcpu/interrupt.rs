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
//! spinlock its interrupted code held. QEMU's virtual-interrupt path
//! does not leave that behind, and on hardware the two are equivalent: the monitor asks for the
//! interrupt only when the guest can take it (RFLAGS.IF set, no interrupt shadow, no event
//! being injected), so the CPU takes it at the first instruction boundary after VMRUN, as it
//! would an injected one. V_IGN_TPR is set: the local APIC model has already checked the
//! vector against the task priority.
//!
//! Between the local APIC model's acknowledgement (the vector moved to in-service) and the
//! guest's taking it, the vector is *in flight* ([`after_exit`] follows it): an exit that came
//! first (a host interrupt at VMRUN) leaves V_IRQ set and the vector waits there; an exit that
//! cut the interrupt's delivery short (EXITINTINFO, 15.7.2) asks for it again. QEMU reports an
//! interrupted virtual interrupt as an exception of that vector; a vector of 32 or more
//! cannot be an exception (15.20), so either form is read as the interrupt.

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
/// `exit_int_info` is EXITINTINFO and `v_irq` whether V_IRQ is still set.
pub fn after_exit(in_flight: Option<u8>, exit_int_info: EventInfo, v_irq: bool) -> AfterExit {
    if let Some(vector) = interrupted_interrupt(exit_int_info) {
        return AfterExit {
            in_flight: Some(vector),
            reinject: EventInfo::NONE,
        };
    }
    AfterExit {
        // Taken once the CPU cleared V_IRQ.
        in_flight: in_flight.filter(|_| v_irq),
        reinject: exit_int_info.reinjection(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMER: u8 = 0xEC;

    #[test]
    fn an_interrupt_the_guest_took_is_done() {
        let after = after_exit(Some(TIMER), EventInfo::NONE, false);
        assert_eq!(after.in_flight, None);
        assert_eq!(after.reinject, EventInfo::NONE);
    }

    #[test]
    fn an_interrupt_not_yet_taken_waits_in_v_irq() {
        // A host interrupt stopped the guest before it could take the virtual one.
        let after = after_exit(Some(TIMER), EventInfo::NONE, true);
        assert_eq!(after.in_flight, Some(TIMER));
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
                let after = after_exit(Some(TIMER), info, v_irq);
                assert_eq!(after.in_flight, Some(TIMER), "{info:?} v_irq={v_irq}");
                assert_eq!(after.reinject, EventInfo::NONE, "{info:?} v_irq={v_irq}");
            }
        }
    }

    #[test]
    fn exceptions_and_nmis_are_injected_again_through_eventinj() {
        let page_fault = EventInfo::exception(14, Some(2));
        for in_flight in [None, Some(TIMER)] {
            let after = after_exit(in_flight, page_fault, false);
            assert_eq!(after.reinject, page_fault);
            assert_eq!(after.in_flight, None);
        }
        let after = after_exit(None, EventInfo::nmi(), false);
        assert_eq!(after.reinject, EventInfo::nmi());
        // Vector 31 is still an exception (reserved), not an interrupt.
        let after = after_exit(None, EventInfo::exception(31, None), false);
        assert_eq!(after.in_flight, None);
        assert_eq!(after.reinject, EventInfo::exception(31, None));
    }

    #[test]
    fn nothing_pending_stays_nothing() {
        // V_IRQ may be the monitor's interrupt-window request: no interrupt is in flight.
        let after = after_exit(None, EventInfo::NONE, true);
        assert_eq!(
            after,
            AfterExit {
                in_flight: None,
                reinject: EventInfo::NONE
            }
        );
    }
}
