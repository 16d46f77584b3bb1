// SPDX-License-Identifier: MIT OR Apache-2.0
//! The length checks the framing parsers and builders ([`super::ether`], [`super::arp`],
//! [`super::ipv4`], [`super::udp`], [`super::encap`]) start with, each with the error it gives.

use super::error::{BuildError, ParseError};

/// The fixed-size header at the start of `bytes`, and what follows it.
///
/// # Errors
/// [`ParseError::Truncated`] if `bytes` is shorter than `N`.
pub(crate) fn split_header<const N: usize>(bytes: &[u8]) -> Result<(&[u8; N], &[u8]), ParseError> {
    bytes.split_first_chunk::<N>().ok_or(ParseError::Truncated {
        needed: N,
        available: bytes.len(),
    })
}

/// The first `N` bytes of `buf`, to write a fixed-size header into.
///
/// # Errors
/// [`BuildError::BufferTooSmall`] if `buf` is shorter than `N`.
pub(crate) fn header_mut<const N: usize>(buf: &mut [u8]) -> Result<&mut [u8; N], BuildError> {
    let available = buf.len();
    buf.first_chunk_mut::<N>()
        .ok_or(BuildError::BufferTooSmall {
            needed: N,
            available,
        })
}

/// Checks that `buf` has room for `needed` bytes.
///
/// # Errors
/// [`BuildError::BufferTooSmall`] if it has not.
pub(crate) fn ensure_room(buf: &[u8], needed: usize) -> Result<(), BuildError> {
    if buf.len() < needed {
        return Err(BuildError::BufferTooSmall {
            needed,
            available: buf.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_fails_one_byte_short_and_passes_at_the_size() {
        assert_eq!(
            split_header::<4>(&[1, 2, 3]),
            Err(ParseError::Truncated {
                needed: 4,
                available: 3
            })
        );
        assert_eq!(split_header::<2>(&[1, 2, 3]), Ok((&[1, 2], &[3][..])));
        let mut buf = [0u8; 3];
        assert_eq!(
            header_mut::<4>(&mut buf),
            Err(BuildError::BufferTooSmall {
                needed: 4,
                available: 3
            })
        );
        assert_eq!(header_mut::<3>(&mut buf).map(|h| h.len()), Ok(3));
        assert!(ensure_room(&buf, 4).is_err());
        assert_eq!(ensure_room(&buf, 3), Ok(()));
    }
}
