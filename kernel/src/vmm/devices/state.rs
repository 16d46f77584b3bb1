// SPDX-License-Identifier: MIT OR Apache-2.0
//! A small, strict binary codec for device state, the part of a checkpoint that the backup
//! host restores into its own device models.
//!
//! [`StateWriter`] appends fixed-width little-endian fields; [`StateReader`] takes them back and
//! answers every problem with a [`StateError`] instead of a panic: missing bytes, bytes left
//! over, flags other than 0 or 1, option tags other than 0 or 1, and (through
//! [`ensure`]) any value the device model could never be in. Device models validate every field
//! they restore, so a forged or corrupted state cannot create an impossible device. The encoding
//! is canonical: a state that restores re-encodes to the same bytes.

use alloc::vec::Vec;
use core::fmt;

/// A device model whose state has the strict binary form above.
pub trait DeviceState: Sized {
    /// Appends the state.
    fn save_state(&self, w: &mut StateWriter);

    /// Reads a state [`save_state`](Self::save_state) wrote, validating every field.
    ///
    /// # Errors
    /// A [`StateError`] naming the first problem.
    fn restore_state(r: &mut StateReader<'_>) -> Result<Self, StateError>;

    /// The state alone, as bytes.
    fn state_bytes(&self) -> Vec<u8> {
        let mut w = StateWriter::new();
        self.save_state(&mut w);
        w.into_bytes()
    }

    /// Restores from exactly `bytes` (bytes left over are an error).
    ///
    /// # Errors
    /// As [`restore_state`](Self::restore_state), or [`StateError::Trailing`].
    fn from_state_bytes(bytes: &[u8]) -> Result<Self, StateError> {
        let mut r = StateReader::new(bytes);
        let state = Self::restore_state(&mut r)?;
        r.finish()?;
        Ok(state)
    }
}

/// Why a device state was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    /// The state ends early: `needed` more bytes at byte `offset`.
    Truncated {
        /// Where the missing field starts.
        offset: usize,
        /// Bytes the field needs beyond the end.
        needed: usize,
    },
    /// `extra` bytes follow a complete state or section, from byte `offset`.
    Trailing {
        /// Where the unread bytes start.
        offset: usize,
        /// How many there are.
        extra: usize,
    },
    /// A field holds a value the device could never hold.
    Invalid {
        /// Which field.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// Not a device state blob: the magic number is wrong.
    BadMagic {
        /// The first four bytes found.
        found: [u8; 4],
    },
    /// A format version this build does not read.
    Version {
        /// Version in the blob.
        found: u16,
        /// The version this build reads and writes.
        supported: u16,
    },
    /// The state holds a device this guest does not have.
    UnknownDevice(DeviceId),
    /// This guest has a device with state that the state lacks.
    MissingDevice(DeviceId),
    /// The state holds the same device twice.
    DuplicateDevice(DeviceId),
    /// The state was saved for a guest with a different amount of RAM.
    RamSize {
        /// RAM of the guest the state was saved from, in bytes.
        saved: u64,
        /// RAM of this guest, in bytes.
        here: u64,
    },
    /// Longer than any state this build writes.
    TooLong {
        /// Length found.
        len: usize,
        /// The most accepted.
        max: usize,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { offset, needed } => {
                write!(
                    f,
                    "device state truncated: {needed} bytes missing at offset {offset}"
                )
            }
            Self::Trailing { offset, extra } => {
                write!(
                    f,
                    "device state has {extra} trailing bytes at offset {offset}"
                )
            }
            Self::Invalid { field, value } => {
                write!(f, "invalid device state: {field} = {value:#x}")
            }
            Self::BadMagic { found } => {
                write!(f, "not a device state: magic {found:02x?}")
            }
            Self::Version { found, supported } => write!(
                f,
                "device state version {found} is not supported (this build reads {supported})"
            ),
            Self::UnknownDevice(id) => {
                write!(f, "device state for {id}, which this guest does not have")
            }
            Self::MissingDevice(id) => write!(f, "device state lacks {id}"),
            Self::DuplicateDevice(id) => write!(f, "device state holds {id} twice"),
            Self::RamSize { saved, here } => write!(
                f,
                "device state is for a guest with {saved} bytes of RAM, this guest has {here}"
            ),
            Self::TooLong { len, max } => {
                write!(
                    f,
                    "device state of {len} bytes is longer than the {max} accepted"
                )
            }
        }
    }
}

/// Refuses `value` of `field` unless `ok`.
pub fn ensure(ok: bool, field: &'static str, value: u64) -> Result<(), StateError> {
    if ok {
        Ok(())
    } else {
        Err(StateError::Invalid { field, value })
    }
}

/// The stable identity of a device's saved state: its kind and base port (for the APICs, their
/// ID). A backup restores a state only into a device with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(u32);

/// [`DeviceId`] kind of a 16550 UART.
const KIND_UART16550: u32 = 1;
/// [`DeviceId`] kind of a local APIC.
const KIND_LAPIC: u32 = 2;
/// [`DeviceId`] kind of an IOAPIC.
const KIND_IOAPIC: u32 = 3;
/// [`DeviceId`] kind of an ACPI power-management register block.
const KIND_ACPI_PM: u32 = 4;
/// [`DeviceId`] kind of a virtio-mmio device.
const KIND_VIRTIO_MMIO: u32 = 5;

impl DeviceId {
    /// A 16550 UART at `base`.
    pub const fn uart16550(base: u16) -> Self {
        Self(KIND_UART16550 << 16 | base as u32)
    }

    /// The local APIC with ID `apic_id`.
    pub const fn lapic(apic_id: u8) -> Self {
        Self(KIND_LAPIC << 16 | apic_id as u32)
    }

    /// The IOAPIC with ID `ioapic_id`.
    pub const fn ioapic(ioapic_id: u8) -> Self {
        Self(KIND_IOAPIC << 16 | ioapic_id as u32)
    }

    /// An ACPI power-management register block at `base`.
    pub const fn acpi_pm(base: u16) -> Self {
        Self(KIND_ACPI_PM << 16 | base as u32)
    }

    /// The virtio-mmio device with index `index` (its slot in the guest's device list).
    pub const fn virtio_mmio(index: u8) -> Self {
        Self(KIND_VIRTIO_MMIO << 16 | index as u32)
    }

    /// The id as stored.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// An id as read from a state (any value: unknown ones are refused by the bus).
    pub const fn from_raw(raw: u32) -> Self {
        Self(raw)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = self.0 & 0xFFFF;
        match self.0 >> 16 {
            KIND_UART16550 => write!(f, "16550 UART at port {base:#x}"),
            KIND_LAPIC => write!(f, "local APIC {base}"),
            KIND_IOAPIC => write!(f, "IOAPIC {base}"),
            KIND_ACPI_PM => write!(f, "ACPI PM registers at port {base:#x}"),
            KIND_VIRTIO_MMIO => write!(f, "virtio-mmio device {base}"),
            _ => write!(f, "device {:#010x}", self.0),
        }
    }
}

/// Appends little-endian fields to a state.
#[derive(Debug)]
pub struct StateWriter {
    buf: Vec<u8>,
}

/// Bytes a writer holds before its first reallocation: more than any device's state, so a
/// checkpoint's stun does not grow its buffers by doubling through the allocator.
const INITIAL_CAPACITY: usize = 2048;

impl Default for StateWriter {
    fn default() -> Self {
        Self {
            buf: Vec::with_capacity(INITIAL_CAPACITY),
        }
    }
}

impl StateWriter {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Appends a byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Appends a 16-bit field.
    pub fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }

    /// Appends a 32-bit field.
    pub fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }

    /// Appends a 64-bit field.
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    /// Appends a signed 64-bit field.
    pub fn i64(&mut self, v: i64) {
        self.bytes(&v.to_le_bytes());
    }

    /// Appends a flag as 0 or 1.
    pub fn flag(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    /// Appends an option: tag 0, or tag 1 followed by what `put` writes.
    pub fn option<T>(&mut self, v: Option<T>, put: impl FnOnce(&mut Self, T)) {
        self.flag(v.is_some());
        if let Some(v) = v {
            put(self, v);
        }
    }

    /// Appends a section: a 32-bit length, then what `put` writes.
    pub fn section(&mut self, put: impl FnOnce(&mut Self)) {
        let at = self.buf.len();
        self.u32(0);
        put(self);
        let len = u32::try_from(self.buf.len() - at - 4).unwrap_or(u32::MAX);
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
}

/// Takes fields back from a state, refusing anything malformed.
#[derive(Debug, Clone)]
pub struct StateReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Offset of `bytes` in the whole state, for error reports.
    base: usize,
}

impl<'a> StateReader<'a> {
    /// A reader over a whole state.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            base: 0,
        }
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        let rest = &self.bytes[self.pos..];
        if rest.len() < n {
            return Err(StateError::Truncated {
                offset: self.base + self.pos,
                needed: n - rest.len(),
            });
        }
        self.pos += n;
        Ok(&rest[..n])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StateError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// Takes a byte.
    pub fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.array::<1>()?[0])
    }

    /// Takes a 16-bit field.
    pub fn u16(&mut self) -> Result<u16, StateError> {
        self.array().map(u16::from_le_bytes)
    }

    /// Takes a 32-bit field.
    pub fn u32(&mut self) -> Result<u32, StateError> {
        self.array().map(u32::from_le_bytes)
    }

    /// Takes a 64-bit field.
    pub fn u64(&mut self) -> Result<u64, StateError> {
        self.array().map(u64::from_le_bytes)
    }

    /// Takes a signed 64-bit field.
    pub fn i64(&mut self) -> Result<i64, StateError> {
        self.array().map(i64::from_le_bytes)
    }

    /// Takes a flag: 0 or 1, anything else is invalid.
    pub fn flag(&mut self, field: &'static str) -> Result<bool, StateError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(StateError::Invalid {
                field,
                value: u64::from(v),
            }),
        }
    }

    /// Takes a byte that may only have bits of `allowed` set.
    pub fn bits(&mut self, allowed: u8, field: &'static str) -> Result<u8, StateError> {
        let v = self.u8()?;
        ensure(v & !allowed == 0, field, u64::from(v))?;
        Ok(v)
    }

    /// Takes an option written by [`StateWriter::option`]; `get` reads the value.
    pub fn option<T>(
        &mut self,
        field: &'static str,
        get: impl FnOnce(&mut Self) -> Result<T, StateError>,
    ) -> Result<Option<T>, StateError> {
        if self.flag(field)? {
            get(self).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Takes a section written by [`StateWriter::section`], as a reader of its own.
    pub fn section(&mut self) -> Result<StateReader<'a>, StateError> {
        let len = self.u32()?;
        let base = self.base + self.pos;
        let bytes = self.take(usize::try_from(len).unwrap_or(usize::MAX))?;
        Ok(StateReader {
            bytes,
            pos: 0,
            base,
        })
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Ends reading: every byte must have been read.
    pub fn finish(&self) -> Result<(), StateError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(StateError::Trailing {
                offset: self.base + self.pos,
                extra,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
