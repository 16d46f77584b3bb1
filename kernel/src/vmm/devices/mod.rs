// SPDX-License-Identifier: MIT OR Apache-2.0
//! Virtual devices guests see, and the port bus that routes I/O exits to them.
//!
//! Device models are plain state machines with no hardware access, unit tested on the host.
//! Ports no device claims behave as on a PC with nothing there: reads return all ones, writes
//! are ignored. Every device with state saves and restores it ([`state`], [`blob`]), so a
//! backup host resumes a guest with the devices it had.

pub mod blob;
pub mod clock;
pub mod debug_exit;
pub mod interrupts;
pub mod ioapic;
pub mod irq;
pub mod lapic;
pub mod pic;
pub mod pit;
pub mod pm;
pub mod rtc;
pub mod serial;
pub mod state;
pub mod update;
pub mod virtio;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::RangeInclusive;

use self::state::{DeviceId, StateError, StateReader, StateWriter};
use crate::vmm::vcpu::Width;

/// What a device wants after a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing beyond its own state change.
    None,
    /// The guest asked to end with this status (debug-exit port).
    Exit(u32),
    /// The guest entered the soft-off state S5 (ACPI power management, `pm`): it is off.
    PowerOff,
    /// The guest asked for a system reset (the ACPI reset register, `pm`).
    Reset,
}

/// A device on the I/O port bus.
pub trait PortDevice {
    /// Ports the device decodes.
    fn ports(&self) -> RangeInclusive<u16>;
    /// An `in` of `width` bytes from `port`.
    fn read(&mut self, port: u16, width: Width) -> u32;
    /// An `out` of `width` bytes to `port`.
    fn write(&mut self, port: u16, width: Width, value: u32) -> Effect;
    /// Complete lines of guest output the device produced since the last call (`end`: the
    /// guest stopped, include a partial last line).
    fn take_output(&mut self, _end: bool) -> Vec<String> {
        Vec::new()
    }
    /// The ISA interrupt line the device drives and its level now; `None` (the default) for a
    /// device without one. The monitor samples it after every access and input.
    fn irq(&self) -> Option<(irq::IrqLine, bool)> {
        None
    }
    /// Whether input pushed now could raise the device's interrupt line (its receive interrupt
    /// is enabled and its line driver on): a guest halted with no timer armed can still be
    /// woken by typing. The default: no.
    fn wakes_on_input(&self) -> bool {
        false
    }
    /// Hands the device bytes typed at the host's console, for its receiver; returns how many
    /// it took (the default takes none: a device without input).
    fn push_input(&mut self, _input: &[u8]) -> usize {
        0
    }
    /// The stable identity under which the device's state is saved; `None` (the default) for a
    /// device without state, which the saved device state leaves out.
    fn state_id(&self) -> Option<DeviceId> {
        None
    }
    /// Appends the device's state.
    fn save_state(&self, _w: &mut StateWriter) {}
    /// Replaces the device's state with one [`save_state`](Self::save_state) wrote; on error
    /// the device is unchanged.
    fn restore_state(&mut self, _r: &mut StateReader<'_>) -> Result<(), StateError> {
        Ok(())
    }
}

/// The guest's I/O port space.
#[derive(Default)]
pub struct PortBus {
    devices: Vec<Box<dyn PortDevice>>,
    /// A device's port was written since output was last taken: only a write makes output (a
    /// UART's transmit register), so without one there is none to look for.
    written: bool,
    /// A device's port was accessed since [`take_accessed`](PortBus::take_accessed): only an
    /// access moves a device's interrupt line.
    accessed: bool,
}

fn all_ones(width: Width) -> u32 {
    match width {
        1 => 0xFF,
        2 => 0xFFFF,
        _ => u32::MAX,
    }
}

impl PortBus {
    /// Adds a device. A port claimed twice goes to the first device.
    pub fn attach(&mut self, device: Box<dyn PortDevice>) {
        self.devices.push(device);
    }

    fn find(&mut self, port: u16) -> Option<&mut Box<dyn PortDevice>> {
        self.devices.iter_mut().find(|d| d.ports().contains(&port))
    }

    /// Routes an `in`.
    pub fn read(&mut self, port: u16, width: Width) -> u32 {
        match self.find(port) {
            Some(d) => {
                let value = d.read(port, width);
                self.accessed = true;
                value
            }
            None => all_ones(width),
        }
    }

    /// Whether a device's port was accessed since the last call: its interrupt line may have
    /// moved ([`irq_lines`](Self::irq_lines)). An unclaimed port moves none.
    pub fn take_accessed(&mut self) -> bool {
        core::mem::take(&mut self.accessed)
    }

    /// Appends [`take_output`](Self::take_output) to `out`; only a test of a flag when no
    /// device was written since the last time and the guest has not ended (every exit pays
    /// for this call).
    #[inline]
    pub fn take_output_into(&mut self, out: &mut Vec<String>, end: bool) {
        if self.written || end {
            out.extend(self.take_output(end));
        }
    }

    /// Guest output lines from every device (see [`PortDevice::take_output`]).
    pub fn take_output(&mut self, end: bool) -> Vec<String> {
        if !core::mem::take(&mut self.written) && !end {
            return Vec::new();
        }
        self.devices
            .iter_mut()
            .flat_map(|d| d.take_output(end))
            .collect()
    }

    /// The interrupt lines the devices drive, with their levels (see [`PortDevice::irq`]).
    pub fn irq_lines(&self) -> impl Iterator<Item = (irq::IrqLine, bool)> + '_ {
        self.devices.iter().filter_map(|d| d.irq())
    }

    /// Whether some device's interrupt could be raised by console input
    /// ([`PortDevice::wakes_on_input`]).
    pub fn wakes_on_input(&self) -> bool {
        self.devices.iter().any(|d| d.wakes_on_input())
    }

    /// Offers console input to the devices in turn; returns how many bytes were taken.
    pub fn push_input(&mut self, input: &[u8]) -> usize {
        let mut taken = 0;
        for d in &mut self.devices {
            taken += d.push_input(&input[taken..]);
        }
        taken
    }

    /// Routes an `out`.
    pub fn write(&mut self, port: u16, width: Width, value: u32) -> Effect {
        match self.find(port) {
            Some(d) => {
                let effect = d.write(port, width, value);
                self.written = true;
                self.accessed = true;
                effect
            }
            None => Effect::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unclaimed_ports_float_high_and_claimed_ones_route() {
        let mut bus = PortBus::default();
        bus.attach(Box::new(debug_exit::DebugExit));
        assert_eq!(bus.read(0x80, 1), 0xFF);
        assert_eq!(bus.read(0x80, 2), 0xFFFF);
        assert_eq!(bus.read(0x80, 4), u32::MAX);
        assert_eq!(bus.write(0x80, 1, 0x12), Effect::None);
        assert!(!bus.take_accessed(), "an unclaimed port moves no line");
        assert_eq!(bus.write(debug_exit::PORT, 4, 3), Effect::Exit(3));
        assert!(bus.take_accessed());
        assert!(!bus.take_accessed(), "taken");
    }
}
