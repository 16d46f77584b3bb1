// SPDX-License-Identifier: MIT OR Apache-2.0
//! The stream header: sent once, before the first epoch.
//!
//! | offset | size | field                                                   |
//! |-------:|-----:|---------------------------------------------------------|
//! |      0 |    8 | magic, [`MAGIC`] (`"CASTORFT"`)                          |
//! |      8 |    2 | major version, [`VERSION_MAJOR`]                         |
//! |     10 |    2 | minor version (newer minors only add optional records)  |
//! |     12 |    4 | flags; none defined (versions 1 and 2), must be zero     |
//! |     16 |    4 | guest page size, must be [`PAGE_SIZE`]                   |
//! |     20 |    4 | reserved, zero                                          |
//! |     24 |    8 | guest RAM size in pages, 1..=[`MAX_RAM_PAGES`]           |
//! |     32 |   16 | session id (`u128`)                                     |
//!
//! All integers are little-endian. The header is [`HEADER_LEN`] bytes, a multiple of 8, so the
//! first record that follows it is 8-byte aligned.

use super::error::{DecodeError, DecodeErrorKind};
use super::limits::MAX_RAM_PAGES;
use super::page::PAGE_SIZE;
use super::wire::Reader;

/// First eight bytes of every Castor checkpoint stream.
pub const MAGIC: [u8; 8] = *b"CASTORFT";

/// Major format version written and read. A different major version is rejected. Version 2
/// added the mandatory `DIRTY_PAGE_RANGES` record (`record::record_type`) and replaced the
/// 32-byte BLAKE3 epoch digest with a 16-byte XXH3-128 one ([`super::digest`]).
pub const VERSION_MAJOR: u16 = 2;

/// Minor format version written. Any minor version of [`VERSION_MAJOR`] is read.
pub const VERSION_MINOR: u16 = 0;

/// Encoded size of a [`StreamHeader`].
pub const HEADER_LEN: usize = 48;

/// Header flags defined by this version (none).
const KNOWN_FLAGS: u32 = 0;

/// The stream header: what the backup must know before it can check any record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamHeader {
    version_minor: u16,
    ram_pages: u64,
    session_id: u128,
}

impl StreamHeader {
    /// A header for the current version, or `None` if `ram_pages` is zero or above
    /// [`MAX_RAM_PAGES`].
    pub const fn new(ram_pages: u64, session_id: u128) -> Option<Self> {
        if ram_pages == 0 || ram_pages > MAX_RAM_PAGES {
            return None;
        }
        Some(Self {
            version_minor: VERSION_MINOR,
            ram_pages,
            session_id,
        })
    }

    /// Minor version the sender wrote.
    pub const fn version_minor(&self) -> u16 {
        self.version_minor
    }

    /// Guest RAM size in pages: every guest frame number in the stream is below this.
    pub const fn ram_pages(&self) -> u64 {
        self.ram_pages
    }

    /// Identifies one primary→backup checkpointing session.
    pub const fn session_id(&self) -> u128 {
        self.session_id
    }

    /// The header's wire form.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let fields: [(usize, &[u8]); 7] = [
            (0, &MAGIC),
            (8, &VERSION_MAJOR.to_le_bytes()),
            (10, &self.version_minor.to_le_bytes()),
            (12, &KNOWN_FLAGS.to_le_bytes()),
            (16, &(PAGE_SIZE as u32).to_le_bytes()),
            (24, &self.ram_pages.to_le_bytes()),
            (32, &self.session_id.to_le_bytes()),
        ];
        for (at, bytes) in fields {
            if let Some(dst) = out.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        }
        out
    }

    /// Decodes and checks a header from the start of `input` (which may hold more bytes after
    /// it; the header is always [`HEADER_LEN`] bytes long).
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(input, 0);
        if input.len() < HEADER_LEN {
            return Err(DecodeError::new(
                0,
                DecodeErrorKind::Truncated {
                    needed: HEADER_LEN as u64,
                    available: input.len() as u64,
                },
            ));
        }
        if r.array::<8>()? != MAGIC {
            return Err(DecodeError::new(0, DecodeErrorKind::BadMagic));
        }
        let major = r.u16()?;
        let minor = r.u16()?;
        if major != VERSION_MAJOR {
            return Err(DecodeError::new(
                8,
                DecodeErrorKind::UnsupportedVersion { major, minor },
            ));
        }
        let at = r.offset();
        let flags = r.u32()?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(DecodeError::new(
                at,
                DecodeErrorKind::UnknownHeaderFlags { flags },
            ));
        }
        let at = r.offset();
        let page_size = r.u32()?;
        if page_size as usize != PAGE_SIZE {
            return Err(DecodeError::new(
                at,
                DecodeErrorKind::BadPageSize { page_size },
            ));
        }
        r.reserved_u32()?;
        let at = r.offset();
        let ram_pages = r.u64()?;
        let session_id = r.u128()?;
        match Self::new(ram_pages, session_id) {
            Some(header) => Ok(Self {
                version_minor: minor,
                ..header
            }),
            None => Err(DecodeError::new(
                at,
                DecodeErrorKind::BadRamSize { ram_pages },
            )),
        }
    }
}
