// SPDX-License-Identifier: MIT OR Apache-2.0
//! A guest's device state as one versioned blob, what the primary sends with each checkpoint
//! and the backup restores when it takes over.
//!
//! Layout (little endian, sections are a `u32` length and that many bytes):
//!
//! ```text
//! blob    = magic "CSDV", version u16, chipset section, bus section, nic section
//! chipset = guest RAM bytes u64, guest time ns u64,
//!           PIC, PIT, RTC, I/O APIC, local APIC, PM registers          (ChipsetState)
//! bus     = { device id u32, device section }*                       (PortBus)
//! nic     = empty (no network card), or device id u32, device section  (virtio::VirtioNet)
//! ```
//!
//! Guest time in the chipset section is the time at which the state was saved: the backup's
//! clock resumes from it ([`super::clock::GuestClock::resume`]), and the PIT and PIC continue
//! from their saved backlog and requests, so every timer tick reaches the guest exactly once
//! across a failover; the local APIC keeps its timer as absolute guest times, so its countdown
//! continues exactly too.
//!
//! Version history: 1 had the PIC, PIT and RTC only; 2 gave the UART its receiver and interrupt
//! state (`serial/state.rs`); 3 added the I/O APIC, the local APIC and the ACPI PM registers;
//! 4 added the network card's section. A
//! blob of another version is refused, naming both versions. Restores are all or nothing: on
//! any error the guest's devices are as they were.

#[cfg(test)]
mod tests;

use alloc::vec::Vec;

use super::PortBus;
use super::interrupts::Interrupts;
use super::ioapic::IoApic;
use super::lapic::Lapic;
use super::pic::Pic;
use super::pit::Pit;
use super::pm::Pm;
use super::rtc::Rtc;
use super::state::{DeviceId, DeviceState, StateError, StateReader, StateWriter, ensure};
use super::virtio::VirtioNet;

/// First bytes of every device state blob ("Castor device state").
pub const MAGIC: [u8; 4] = *b"CSDV";
/// The format version this build writes and reads (see the version history above).
pub const VERSION: u16 = 4;
/// The longest blob (or section) accepted; what this build writes is far shorter (about 1100
/// bytes at most, see the tests).
pub const MAX_LEN: usize = 4096;

// Well inside what the checkpoint stream carries for a device state record.
const _: () = assert!(MAX_LEN * 16 <= castor_ft::stream::MAX_DEVICE_STATE_LEN);

/// A reader over `bytes`, if they are not longer than [`MAX_LEN`].
fn bounded(bytes: &[u8]) -> Result<StateReader<'_>, StateError> {
    if bytes.len() > MAX_LEN {
        return Err(StateError::TooLong {
            len: bytes.len(),
            max: MAX_LEN,
        });
    }
    Ok(StateReader::new(bytes))
}

/// The chipset's devices and the guest time at which they were saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChipsetState {
    /// The interrupt controllers: PIC, I/O APIC, local APIC.
    pub interrupts: Interrupts,
    /// The interval timer.
    pub pit: Pit,
    /// The real-time clock and CMOS memory.
    pub rtc: Rtc,
    /// The ACPI power-management registers.
    pub pm: Pm,
    /// Guest RAM in bytes (what the CMOS describes).
    pub ram: u64,
    /// Guest time when saved, in ns; never before the PIT's time.
    pub guest_ns: u64,
}

impl ChipsetState {
    /// The chipset section.
    pub fn save_state(&self) -> Vec<u8> {
        let mut w = StateWriter::new();
        w.u64(self.ram);
        w.u64(self.guest_ns);
        self.interrupts.pic.save_state(&mut w);
        self.pit.save_state(&mut w);
        self.rtc.save_state(&mut w);
        self.interrupts.ioapic.save_state(&mut w);
        self.interrupts.lapic.save_state(&mut w);
        self.pm.save_state(&mut w);
        w.into_bytes()
    }

    /// A chipset section saved by [`save_state`](Self::save_state), for a guest with `ram`
    /// bytes of RAM.
    pub fn restore_state(bytes: &[u8], ram: u64) -> Result<Self, StateError> {
        let mut r = bounded(bytes)?;
        let saved = r.u64()?;
        if saved != ram {
            return Err(StateError::RamSize { saved, here: ram });
        }
        let guest_ns = r.u64()?;
        let pic = Pic::restore_state(&mut r)?;
        let pit = Pit::restore_state(&mut r)?;
        let rtc = Rtc::restore_state(&mut r)?;
        let ioapic = IoApic::restore_state(&mut r)?;
        let lapic = Lapic::restore_state(&mut r)?;
        let pm = Pm::restore_state(&mut r)?;
        r.finish()?;
        let state = Self {
            interrupts: Interrupts { pic, ioapic, lapic },
            pit,
            rtc,
            pm,
            ram,
            guest_ns,
        };
        for (time, field) in [
            (state.pit.now(), "PIT time after guest time"),
            (
                state.interrupts.lapic.now(),
                "local APIC time after guest time",
            ),
            (state.pm.now(), "PM time after guest time"),
        ] {
            ensure(time <= guest_ns, field, time)?;
        }
        Ok(state)
    }
}

impl PortBus {
    /// The bus section: the state of every device that has one, under its id.
    pub fn save_state(&self) -> Vec<u8> {
        let mut w = StateWriter::new();
        for d in &self.devices {
            if let Some(id) = d.state_id() {
                w.u32(id.raw());
                w.section(|w| d.save_state(w));
            }
        }
        w.into_bytes()
    }

    /// Restores a bus section saved by [`save_state`](Self::save_state) into this bus's devices.
    /// Refused, with every device left as it was, if the section holds a device this bus does
    /// not have or one twice, lacks a device of this bus that has state, or any device refuses
    /// its state.
    pub fn restore_state(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let mut r = bounded(bytes)?;
        let mut plan: Vec<(usize, StateReader<'_>)> = Vec::new();
        while r.remaining() > 0 {
            let id = DeviceId::from_raw(r.u32()?);
            let section = r.section()?;
            let index = self
                .devices
                .iter()
                .position(|d| d.state_id() == Some(id))
                .ok_or(StateError::UnknownDevice(id))?;
            if plan.iter().any(|&(i, _)| i == index) {
                return Err(StateError::DuplicateDevice(id));
            }
            plan.push((index, section));
        }
        for (i, d) in self.devices.iter().enumerate() {
            if let Some(id) = d.state_id()
                && !plan.iter().any(|&(j, _)| j == i)
            {
                return Err(StateError::MissingDevice(id));
            }
        }
        let before: Vec<Vec<u8>> = plan
            .iter()
            .map(|&(i, _)| {
                let mut w = StateWriter::new();
                self.devices[i].save_state(&mut w);
                w.into_bytes()
            })
            .collect();
        for (k, (i, mut section)) in plan.iter().cloned().enumerate() {
            let restored = self.devices[i]
                .restore_state(&mut section)
                .and_then(|()| section.finish());
            if let Err(e) = restored {
                for (&(j, _), old) in plan.iter().zip(&before).take(k + 1) {
                    // A device takes back the state it saved itself (each device's tests
                    // prove the round trip), so this cannot fail.
                    let _ = self.devices[j].restore_state(&mut StateReader::new(old));
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

/// The sections of a device state blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sections<'a> {
    /// The chipset section ([`ChipsetState`]).
    pub chipset: &'a [u8],
    /// The bus section ([`PortBus::save_state`]).
    pub bus: &'a [u8],
    /// The network card's section ([`nic_section`]); empty for a guest without one.
    pub nic: &'a [u8],
}

/// A device state blob of a chipset and a bus section, for a guest without a network card.
pub fn encode(chipset: &[u8], bus: &[u8]) -> Vec<u8> {
    encode_with_nic(chipset, bus, &[])
}

/// A device state blob of a chipset, a bus and a network card section ([`nic_section`]).
pub fn encode_with_nic(chipset: &[u8], bus: &[u8], nic: &[u8]) -> Vec<u8> {
    let mut w = StateWriter::new();
    w.bytes(&MAGIC);
    w.u16(VERSION);
    w.section(|w| w.bytes(chipset));
    w.section(|w| w.bytes(bus));
    w.section(|w| w.bytes(nic));
    w.into_bytes()
}

/// The network card's section: empty without a card, else its id and its state.
pub fn nic_section(nic: Option<&VirtioNet>) -> Vec<u8> {
    let mut w = StateWriter::new();
    if let Some(nic) = nic {
        w.u32(DeviceId::virtio_mmio(0).raw());
        w.section(|w| nic.save_state(w));
    }
    w.into_bytes()
}

/// The network card a [`nic_section`] describes (`None`: the guest has none).
pub fn restore_nic(bytes: &[u8]) -> Result<Option<VirtioNet>, StateError> {
    let mut r = bounded(bytes)?;
    if r.remaining() == 0 {
        return Ok(None);
    }
    let id = DeviceId::from_raw(r.u32()?);
    if id != DeviceId::virtio_mmio(0) {
        return Err(StateError::UnknownDevice(id));
    }
    let mut section = r.section()?;
    let nic = VirtioNet::restore_state(&mut section)?;
    section.finish()?;
    r.finish()?;
    Ok(Some(nic))
}

/// The sections of a blob written by [`encode`]; refuses other magic numbers and versions.
pub fn decode(bytes: &[u8]) -> Result<Sections<'_>, StateError> {
    let mut r = bounded(bytes)?;
    let mut found = [0; 4];
    found.copy_from_slice(r.take(4)?);
    if found != MAGIC {
        return Err(StateError::BadMagic { found });
    }
    let version = r.u16()?;
    if version != VERSION {
        return Err(StateError::Version {
            found: version,
            supported: VERSION,
        });
    }
    let mut chipset = r.section()?;
    let mut bus = r.section()?;
    let mut nic = r.section()?;
    r.finish()?;
    Ok(Sections {
        chipset: chipset.take(chipset.remaining())?,
        bus: bus.take(bus.remaining())?,
        nic: nic.take(nic.remaining())?,
    })
}
