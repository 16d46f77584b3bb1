// SPDX-License-Identifier: MIT OR Apache-2.0
//! Event injection and interrupted-event information (AMD64 APM Vol. 2, 15.20 "Event
//! Injection", 15.7.2).

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
