// SPDX-License-Identifier: MIT OR Apache-2.0
//! A small AML encoder: the ACPI Machine Language terms a DSDT describing devices needs (ACPI
//! 6.5, chapter 20 "ACPI Machine Language (AML) Specification"), encoded as the ASL compiler
//! (`iasl`) encodes them.
//!
//! Every function returns the encoded term as bytes; terms nest by passing encoded terms as
//! the bodies of others (`scope`, `device`, `package`, `name`). Names are written as ASL
//! writes them (`"\\_SB.COM1"`, `"_HID"`, `"^PCI0"`); segments shorter than four characters
//! are padded with `_` (20.2.2). Resource templates (6.4) are built from [`Resource`]s.
//!
//! The inputs are the monitor's own constants, never guest data: a malformed name is a bug in
//! the caller and panics.

use alloc::vec::Vec;

/// ZeroOp (20.2.3).
const ZERO_OP: u8 = 0x00;
/// OneOp.
const ONE_OP: u8 = 0x01;
/// NameOp (20.2.5.1).
const NAME_OP: u8 = 0x08;
/// BytePrefix (20.2.3).
const BYTE_PREFIX: u8 = 0x0A;
/// WordPrefix.
const WORD_PREFIX: u8 = 0x0B;
/// DWordPrefix.
const DWORD_PREFIX: u8 = 0x0C;
/// StringPrefix.
const STRING_PREFIX: u8 = 0x0D;
/// QWordPrefix.
const QWORD_PREFIX: u8 = 0x0E;
/// ScopeOp (20.2.5.1).
const SCOPE_OP: u8 = 0x10;
/// BufferOp (20.2.5.4).
const BUFFER_OP: u8 = 0x11;
/// PackageOp (20.2.5.4).
const PACKAGE_OP: u8 = 0x12;
/// MethodOp (20.2.5.2).
const METHOD_OP: u8 = 0x14;
/// ExtOpPrefix.
const EXT_OP_PREFIX: u8 = 0x5B;
/// DeviceOp, after ExtOpPrefix (20.2.5.2).
const DEVICE_OP: u8 = 0x82;
/// ReturnOp (20.2.5.3).
const RETURN_OP: u8 = 0xA4;
/// OnesOp.
const ONES_OP: u8 = 0xFF;
/// RootChar (20.2.2).
const ROOT_CHAR: u8 = b'\\';
/// ParentPrefixChar.
const PARENT_PREFIX: u8 = b'^';
/// DualNamePrefix.
const DUAL_NAME_PREFIX: u8 = 0x2E;
/// MultiNamePrefix.
const MULTI_NAME_PREFIX: u8 = 0x2F;

/// The largest length a PkgLength encodes (20.2.4: 28 bits).
const MAX_PKG_LENGTH: usize = (1 << 28) - 1;

/// A PkgLength (20.2.4) for `content` bytes following it; the encoded length counts its own
/// bytes too.
///
/// # Panics
/// If the package would exceed 2^28 - 1 bytes.
pub fn pkg_length(content: usize) -> Vec<u8> {
    let (extra, total) = (0..4)
        .map(|extra| (extra, content + extra + 1))
        .find(|&(extra, total)| total < [1 << 6, 1 << 12, 1 << 20, 1 << 28][extra])
        .expect("AML package longer than 2^28 - 1 bytes");
    debug_assert!(total <= MAX_PKG_LENGTH);
    if extra == 0 {
        return alloc::vec![total as u8];
    }
    let mut out = alloc::vec![(extra as u8) << 6 | (total & 0xF) as u8];
    out.extend((0..extra).map(|i| (total >> (4 + 8 * i)) as u8));
    out
}

/// `op`, a PkgLength, then `content` (the form of every package-sized term).
fn with_pkg_length(op: &[u8], content: &[u8]) -> Vec<u8> {
    let mut out = op.to_vec();
    out.extend(pkg_length(content.len()));
    out.extend_from_slice(content);
    out
}

/// A NameSeg (20.2.2): up to four characters, padded with `_`.
fn name_seg(seg: &str) -> [u8; 4] {
    let b = seg.as_bytes();
    let lead_ok = b
        .first()
        .is_some_and(|&c| c.is_ascii_uppercase() || c == b'_');
    let rest_ok = b
        .iter()
        .all(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_');
    assert!(
        b.len() <= 4 && lead_ok && rest_ok,
        "invalid AML name segment {seg:?}"
    );
    let mut out = [b'_'; 4];
    out[..b.len()].copy_from_slice(b);
    out
}

/// A NameString (20.2.2) from its ASL form: an optional `\` or `^` prefixes, then segments
/// separated by dots.
///
/// # Panics
/// On an empty segment or one of more than four characters, or a character AML names cannot
/// hold.
pub fn name_string(path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = path;
    if let Some(r) = rest.strip_prefix('\\') {
        out.push(ROOT_CHAR);
        rest = r;
    } else {
        while let Some(r) = rest.strip_prefix('^') {
            out.push(PARENT_PREFIX);
            rest = r;
        }
    }
    if rest.is_empty() {
        out.push(ZERO_OP); // NullName: the root itself
        return out;
    }
    let segs: Vec<[u8; 4]> = rest.split('.').map(name_seg).collect();
    match segs.len() {
        1 => {}
        2 => out.push(DUAL_NAME_PREFIX),
        n => {
            out.push(MULTI_NAME_PREFIX);
            out.push(u8::try_from(n).expect("AML name path of more than 255 segments"));
        }
    }
    segs.iter().for_each(|s| out.extend_from_slice(s));
    out
}

/// An integer constant in its shortest encoding, as iasl emits it (20.2.3): Zero, One, Ones
/// (all 64 bits set), or a Byte, Word, DWord or QWord constant.
pub fn integer(v: u64) -> Vec<u8> {
    match v {
        0 => alloc::vec![ZERO_OP],
        1 => alloc::vec![ONE_OP],
        u64::MAX => alloc::vec![ONES_OP],
        _ => {
            let (prefix, len) = match v {
                0..=0xFF => (BYTE_PREFIX, 1),
                0x100..=0xFFFF => (WORD_PREFIX, 2),
                0x1_0000..=0xFFFF_FFFF => (DWORD_PREFIX, 4),
                _ => (QWORD_PREFIX, 8),
            };
            let mut out = alloc::vec![prefix];
            out.extend_from_slice(&v.to_le_bytes()[..len]);
            out
        }
    }
}

/// A string constant (20.2.3): ASCII characters 0x01-0x7F, then a null.
///
/// # Panics
/// On a character outside 0x01-0x7F.
pub fn string(s: &str) -> Vec<u8> {
    assert!(
        s.bytes().all(|b| (1..0x80).contains(&b)),
        "AML strings are 7-bit ASCII without nulls: {s:?}"
    );
    let mut out = alloc::vec![STRING_PREFIX];
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    out
}

/// The 32-bit compressed EISA id of ASL's `EISAID("PNP0501")` (19.6.35): three letters of five
/// bits each and four hex digits, stored big-endian; always a DWord constant, as iasl emits it
/// (disassemblers recognise EISA ids only in that form).
///
/// # Panics
/// Unless `id` is three uppercase letters and four hex digits.
pub fn eisa_id(id: &str) -> Vec<u8> {
    let b = id.as_bytes();
    let valid = b.len() == 7
        && b[..3].iter().all(u8::is_ascii_uppercase)
        && b[3..].iter().all(u8::is_ascii_hexdigit);
    assert!(valid, "invalid EISA id {id:?}");
    let letters = b[..3]
        .iter()
        .fold(0u16, |acc, &c| acc << 5 | u16::from(c - 0x40));
    let digits = u16::from_str_radix(&id[3..], 16).unwrap_or(0);
    let mut out = alloc::vec![DWORD_PREFIX];
    out.extend_from_slice(&letters.to_be_bytes());
    out.extend_from_slice(&digits.to_be_bytes());
    out
}

/// `Name (path, value)`: a named object holding an encoded data object (20.2.5.1).
pub fn name(path: &str, value: &[u8]) -> Vec<u8> {
    let mut out = alloc::vec![NAME_OP];
    out.extend(name_string(path));
    out.extend_from_slice(value);
    out
}

/// `Package () { elements }` (20.2.5.4), of at most 255 encoded elements.
///
/// # Panics
/// With more than 255 elements.
pub fn package(elements: &[Vec<u8>]) -> Vec<u8> {
    let count = u8::try_from(elements.len()).expect("AML Package of more than 255 elements");
    let mut content = alloc::vec![count];
    elements.iter().for_each(|e| content.extend_from_slice(e));
    with_pkg_length(&[PACKAGE_OP], &content)
}

/// `Buffer () { bytes }` (20.2.5.4), its size as the shortest integer.
pub fn buffer(bytes: &[u8]) -> Vec<u8> {
    let mut content = integer(bytes.len() as u64);
    content.extend_from_slice(bytes);
    with_pkg_length(&[BUFFER_OP], &content)
}

/// `Scope (path) { body }` (20.2.5.1).
pub fn scope(path: &str, body: &[Vec<u8>]) -> Vec<u8> {
    with_pkg_length(&[SCOPE_OP], &named_body(path, &[], body))
}

/// `Device (path) { body }` (20.2.5.2).
pub fn device(path: &str, body: &[Vec<u8>]) -> Vec<u8> {
    with_pkg_length(&[EXT_OP_PREFIX, DEVICE_OP], &named_body(path, &[], body))
}

/// `Method (path, args, NotSerialized) { body }` (20.2.5.2), of at most 7 arguments.
///
/// # Panics
/// With more than 7 arguments.
pub fn method(path: &str, args: u8, body: &[Vec<u8>]) -> Vec<u8> {
    assert!(args <= 7, "AML methods take at most 7 arguments");
    with_pkg_length(&[METHOD_OP], &named_body(path, &[args], body))
}

/// `Return (value)` (20.2.5.3).
pub fn return_value(value: &[u8]) -> Vec<u8> {
    let mut out = alloc::vec![RETURN_OP];
    out.extend_from_slice(value);
    out
}

/// A NameString, `between`, then the terms of `body`.
fn named_body(path: &str, between: &[u8], body: &[Vec<u8>]) -> Vec<u8> {
    let mut content = name_string(path);
    content.extend_from_slice(between);
    body.iter().for_each(|t| content.extend_from_slice(t));
    content
}

/// One resource descriptor of a resource template (ACPI 6.5, 6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `IO (Decode16, min, max, align, len)`: an I/O port range (6.4.2.5).
    Io {
        /// Lowest base port.
        min: u16,
        /// Highest base port.
        max: u16,
        /// Base alignment.
        align: u8,
        /// Ports in the range.
        len: u8,
    },
    /// `IRQNoFlags () { n }`: an edge-triggered, active-high ISA IRQ (6.4.2.1).
    IrqNoFlags(u8),
    /// `IRQ (Level or Edge, ActiveLow or ActiveHigh, Shared or Exclusive) { n }` (6.4.2.1).
    Irq {
        /// ISA IRQ 0-15.
        irq: u8,
        /// Level triggered (else edge).
        level: bool,
        /// Active low (else high).
        active_low: bool,
        /// Shared with other devices.
        shared: bool,
    },
    /// `Interrupt (ResourceConsumer, Level or Edge, ActiveHigh or ActiveLow, Exclusive or
    /// Shared) { gsi }`: one global system interrupt (6.4.3.6), e.g. an I/O APIC pin above the
    /// ISA range, whose trigger mode the OS takes from here (for GSIs 0-15 Linux prefers the
    /// MADT's ISA defaults).
    Interrupt {
        /// The global system interrupt.
        gsi: u32,
        /// Level triggered (else edge).
        level: bool,
        /// Active low (else high).
        active_low: bool,
        /// Shared with other devices.
        shared: bool,
    },
    /// `Memory32Fixed (ReadWrite or ReadOnly, base, len)` (6.4.3.4).
    Memory32Fixed {
        /// Writable.
        writable: bool,
        /// Base address.
        base: u32,
        /// Length in bytes.
        len: u32,
    },
}

impl Resource {
    /// The descriptor's bytes.
    ///
    /// # Panics
    /// For an IRQ above 15.
    fn encode(&self, out: &mut Vec<u8>) {
        let irq_mask = |irq: u8| {
            assert!(irq < 16, "ISA IRQ {irq} out of range");
            (1u16 << irq).to_le_bytes()
        };
        match *self {
            Self::Io {
                min,
                max,
                align,
                len,
            } => {
                out.extend_from_slice(&[0x47, 0x01]); // small item 8, 7 bytes; Decode16
                out.extend_from_slice(&min.to_le_bytes());
                out.extend_from_slice(&max.to_le_bytes());
                out.extend_from_slice(&[align, len]);
            }
            Self::IrqNoFlags(irq) => {
                out.push(0x22); // small item 4, 2 bytes
                out.extend_from_slice(&irq_mask(irq));
            }
            Self::Irq {
                irq,
                level,
                active_low,
                shared,
            } => {
                out.push(0x23); // small item 4, 3 bytes
                out.extend_from_slice(&irq_mask(irq));
                out.push(u8::from(!level) | u8::from(active_low) << 3 | u8::from(shared) << 4);
            }
            Self::Interrupt {
                gsi,
                level,
                active_low,
                shared,
            } => {
                // Large item 9, 6 bytes: flags (bit 0 consumer, 1 edge, 2 active low,
                // 3 shared), one table entry.
                let flags =
                    1 | u8::from(!level) << 1 | u8::from(active_low) << 2 | u8::from(shared) << 3;
                out.extend_from_slice(&[0x89, 6, 0, flags, 1]);
                out.extend_from_slice(&gsi.to_le_bytes());
            }
            Self::Memory32Fixed {
                writable,
                base,
                len,
            } => {
                out.extend_from_slice(&[0x86, 9, 0, u8::from(writable)]); // large item 6
                out.extend_from_slice(&base.to_le_bytes());
                out.extend_from_slice(&len.to_le_bytes());
            }
        }
    }
}

/// `ResourceTemplate () { resources }`: a buffer of descriptors closed by an End Tag whose
/// checksum byte is 0 (6.4.2.9: "treated as if the checksum operation succeeded"), as iasl
/// emits it.
pub fn resource_template(resources: &[Resource]) -> Vec<u8> {
    let mut bytes = Vec::new();
    resources.iter().for_each(|r| r.encode(&mut bytes));
    bytes.extend_from_slice(&[0x79, 0x00]);
    buffer(&bytes)
}

#[cfg(test)]
mod tests;
