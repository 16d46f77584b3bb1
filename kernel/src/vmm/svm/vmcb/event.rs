// SPDX-License-Identifier: MIT OR Apache-2.0
//! Event injection and interrupted-event information (AMD64 APM Vol. 2, 15.20 "Event
//! Injection", 15.7.2 "Intercepts During IDT Interrupt Delivery"), and what to inject again
//! after an exit that interrupted an event's delivery ([`EventInfo::reinjection`]).

use core::fmt;

/// The kind of event in an [`EventInfo`] (APM Vol. 2, 15.20: TYPE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum EventType {
    /// External or virtual interrupt (INTR).
    External = 0,
    /// NMI (the vector is ignored).
    Nmi = 2,
    /// Exception (fault or trap).
    Exception = 3,
    /// Software interrupt (INTn).
    SoftwareInterrupt = 4,
}

/// An event to inject (EVENTINJ, VMCB offset 0x0A8) or one whose delivery an intercept
/// interrupted (EXITINTINFO, offset 0x088); both use this format (APM Vol. 2, 15.20 "Event
/// Injection"; 15.7.2): bits 7:0 vector, 10:8 type, 11 error code valid, 31 valid,
/// 63:32 error code.
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct EventInfo(pub u64);

impl EventInfo {
    const TYPE_SHIFT: u32 = 8;
    const ERROR_VALID: u64 = 1 << 11;
    const VALID: u64 = 1 << 31;

    /// No event.
    pub const NONE: EventInfo = EventInfo(0);

    const fn event(vector: u8, kind: EventType, error_code: Option<u32>) -> Self {
        let mut v = (vector as u64) | ((kind as u64) << Self::TYPE_SHIFT) | Self::VALID;
        if let Some(e) = error_code {
            v |= Self::ERROR_VALID | ((e as u64) << 32);
        }
        Self(v)
    }

    /// An external interrupt with `vector`.
    pub const fn external(vector: u8) -> Self {
        Self::event(vector, EventType::External, None)
    }

    /// An NMI.
    pub const fn nmi() -> Self {
        Self::event(2, EventType::Nmi, None)
    }

    /// Exception `vector`, with an error code if it pushes one (see
    /// [`exception_has_error_code`]). Injecting #BP or #OF this way does not advance RIP.
    pub const fn exception(vector: u8, error_code: Option<u32>) -> Self {
        Self::event(vector, EventType::Exception, error_code)
    }

    /// A software interrupt (INTn) with `vector`. RIP must already point past the INTn.
    pub const fn software_interrupt(vector: u8) -> Self {
        Self::event(vector, EventType::SoftwareInterrupt, None)
    }

    /// Whether an event is present (bit 31).
    pub const fn valid(self) -> bool {
        self.0 & Self::VALID != 0
    }

    /// Vector (bits 7:0).
    pub const fn vector(self) -> u8 {
        self.0 as u8
    }

    /// Event type, or `None` for a reserved encoding (1, 5-7).
    pub const fn event_type(self) -> Option<EventType> {
        match (self.0 >> Self::TYPE_SHIFT) & 7 {
            0 => Some(EventType::External),
            2 => Some(EventType::Nmi),
            3 => Some(EventType::Exception),
            4 => Some(EventType::SoftwareInterrupt),
            _ => None,
        }
    }

    /// Whether this is a software event: a software interrupt (INTn, type 4), or #BP or #OF
    /// reported as an exception, which only INT3 and INTO raise (APM Vol. 2, 8.2.4 and 8.2.5).
    /// Their return address is the instruction after them, which a re-injection with RIP on
    /// the instruction would get wrong.
    pub const fn is_software_event(self) -> bool {
        match self.event_type() {
            Some(EventType::SoftwareInterrupt) => true,
            Some(EventType::Exception) => matches!(self.vector(), 3 | 4),
            _ => false,
        }
    }

    /// What EVENTINJ must hold for the next VMRUN when this is the EXITINTINFO of an exit that
    /// interrupted the delivery of an event (APM Vol. 2, 15.7.2): that event again, except
    /// for a software event, which is dropped (`NONE`) so that the guest executes its INTn,
    /// INT3 or INTO again.
    ///
    /// The exit happened before the instruction completed, so the saved RIP is still the
    /// instruction's own. Injecting the event from there would make the handler's return
    /// address that RIP: without next-RIP support the INTn would run twice and an INT3 handler
    /// would see the INT3's address instead of the one after it; with it, EVENTINJ's return
    /// address is NextRIP, which the exit did not set for this event. Executing the
    /// instruction again delivers the same event with the right return address, now that
    /// the cause of the exit (a nested page fault, an interrupt) is dealt with. This is what KVM
    /// does for events the guest raised itself (`svm_complete_interrupts`). Exceptions
    /// (with their error codes), NMIs and external interrupts are injected again as they
    /// were; so is nothing for an invalid or reserved EXITINTINFO.
    pub const fn reinjection(self) -> EventInfo {
        if self.valid() && self.event_type().is_some() && !self.is_software_event() {
            self
        } else {
            Self::NONE
        }
    }

    /// The error code, if bit 11 says it is valid.
    pub const fn error_code(self) -> Option<u32> {
        if self.0 & Self::ERROR_VALID != 0 {
            Some((self.0 >> 32) as u32)
        } else {
            None
        }
    }
}

impl fmt::Debug for EventInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.valid() {
            return write!(f, "EventInfo(none, {:#x})", self.0);
        }
        write!(
            f,
            "EventInfo({:?} vector {}",
            self.event_type(),
            self.vector()
        )?;
        if let Some(e) = self.error_code() {
            write!(f, " error {e:#x}")?;
        }
        write!(f, ")")
    }
}

/// Whether exception `vector` pushes an error code (#DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP,
/// #VC, #SX; APM Vol. 2, 8.2 "Vectors"), and so needs one when injected.
pub const fn exception_has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// EXITINTINFO values as the CPU (or QEMU) writes them.
    const INT_0X80: EventInfo = EventInfo(0x8000_0480);
    /// INT3 as QEMU reports it (a software interrupt) and as AMD CPUs do (exception #BP).
    const INT3_SOFT: EventInfo = EventInfo(0x8000_0403);
    const INT3_EXCEPTION: EventInfo = EventInfo(0x8000_0303);
    /// INTO: #OF reported as an exception.
    const INTO_EXCEPTION: EventInfo = EventInfo(0x8000_0304);

    #[test]
    fn software_events_are_not_injected_again_so_the_instruction_runs_once() {
        for info in [INT_0X80, INT3_SOFT, INT3_EXCEPTION, INTO_EXCEPTION] {
            assert!(info.is_software_event(), "{info:?}");
            assert_eq!(info.reinjection(), EventInfo::NONE, "{info:?}");
        }
    }

    #[test]
    fn hardware_events_are_injected_again_unchanged() {
        let page_fault = EventInfo(0x0000_0006_8000_0B0E);
        assert_eq!(page_fault.error_code(), Some(6));
        for info in [
            page_fault,
            EventInfo::exception(13, Some(0)),
            EventInfo::exception(8, Some(0)),
            EventInfo::exception(1, None),
            EventInfo::exception(6, None),
            EventInfo::nmi(),
            EventInfo::external(0x20),
            EventInfo::external(3),
        ] {
            assert!(!info.is_software_event(), "{info:?}");
            assert_eq!(info.reinjection(), info, "{info:?}");
        }
    }

    #[test]
    fn nothing_or_a_reserved_type_injects_nothing() {
        assert_eq!(EventInfo::NONE.reinjection(), EventInfo::NONE);
        // Valid bit clear, other bits left over.
        assert_eq!(EventInfo(0x0000_0480).reinjection(), EventInfo::NONE);
        // Type 1 is reserved.
        assert_eq!(EventInfo(0x8000_0120).reinjection(), EventInfo::NONE);
    }
}
