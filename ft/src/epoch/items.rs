// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the output-commit buffer holds: a sequence of output *items*, each a console line or a
//! network frame the guest produced, so one buffer (and one record per checkpoint) commits
//! both kinds in the order the guest produced them.
//!
//! Layout of one item (little endian): channel `u8`, length `u16`, that many bytes. An epoch's
//! output is its items back to back. The backup decodes output that came over the network, so
//! [`Items`] refuses anything malformed (an unknown channel, a length past the end) with an
//! error instead of guessing, and stops there.

use alloc::vec::Vec;
use core::fmt;

/// Where an output item goes when it is released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// Bytes of guest console output (a line with its newline, or a final partial line).
    Console,
    /// One Ethernet frame the guest transmitted (destination MAC first, no FCS).
    Net,
}

impl Channel {
    const fn tag(self) -> u8 {
        match self {
            Self::Console => 1,
            Self::Net => 2,
        }
    }

    const fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(Self::Console),
            2 => Some(Self::Net),
            _ => None,
        }
    }
}

/// Bytes of an item's header.
pub const ITEM_HEADER_LEN: usize = 3;
/// The longest item body.
pub const MAX_ITEM_LEN: usize = u16::MAX as usize;

/// Why held output could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemError {
    /// An item's channel tag is not one this build knows.
    UnknownChannel {
        /// The tag.
        tag: u8,
        /// Byte offset of the item.
        offset: usize,
    },
    /// An item's header or body runs past the end of the output.
    Truncated {
        /// Byte offset of the item.
        offset: usize,
    },
}

impl fmt::Display for ItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownChannel { tag, offset } => {
                write!(f, "output item at byte {offset} has unknown channel {tag}")
            }
            Self::Truncated { offset } => write!(f, "output item at byte {offset} is truncated"),
        }
    }
}

/// `body` as one item of `channel`, or `None` if it is longer than [`MAX_ITEM_LEN`].
#[must_use]
pub fn item(channel: Channel, body: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(body.len()).ok()?;
    let mut out = Vec::with_capacity(ITEM_HEADER_LEN + body.len());
    out.push(channel.tag());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    Some(out)
}

/// The items of `bytes`, in order. After an error the iterator ends.
#[must_use]
pub fn items(bytes: &[u8]) -> Items<'_> {
    Items { bytes, offset: 0 }
}

/// Iterator over the items of held output (see [`items`]).
#[derive(Clone, Debug)]
pub struct Items<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for Items<'a> {
    type Item = Result<(Channel, &'a [u8]), ItemError>;

    fn next(&mut self) -> Option<Self::Item> {
        let offset = self.offset;
        let rest = self.bytes.get(offset..).filter(|r| !r.is_empty())?;
        let parsed = match *rest {
            [tag, lo, hi, ref body @ ..] => match Channel::from_tag(tag) {
                None => Err(ItemError::UnknownChannel { tag, offset }),
                Some(channel) => body
                    .get(..usize::from(u16::from_le_bytes([lo, hi])))
                    .map(|body| (channel, body))
                    .ok_or(ItemError::Truncated { offset }),
            },
            _ => Err(ItemError::Truncated { offset }),
        };
        self.offset = match parsed {
            Ok((_, body)) => offset + ITEM_HEADER_LEN + body.len(),
            Err(_) => self.bytes.len(),
        };
        Some(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn items_round_trip_in_order() {
        let mut out = item(Channel::Console, b"hello\n").unwrap();
        out.extend(item(Channel::Net, &[0xFF; 60]).unwrap());
        out.extend(item(Channel::Console, b"").unwrap());
        let got: Vec<_> = items(&out).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            got,
            vec![
                (Channel::Console, &b"hello\n"[..]),
                (Channel::Net, &[0xFF; 60][..]),
                (Channel::Console, &b""[..])
            ]
        );
    }

    #[test]
    fn an_item_longer_than_a_u16_is_refused() {
        assert!(item(Channel::Net, &vec![0; MAX_ITEM_LEN]).is_some());
        assert!(item(Channel::Net, &vec![0; MAX_ITEM_LEN + 1]).is_none());
    }

    #[test]
    fn malformed_output_is_an_error_and_ends_the_items() {
        let good = item(Channel::Net, b"frame").unwrap();
        let mut unknown = good.clone();
        unknown.extend_from_slice(&[9, 1, 0, 0]);
        let got: Vec<_> = items(&unknown).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1],
            Err(ItemError::UnknownChannel {
                tag: 9,
                offset: good.len()
            })
        );
        for cut in 1..good.len() {
            let got: Vec<_> = items(&good[..cut]).collect();
            assert_eq!(
                got,
                vec![Err(ItemError::Truncated { offset: 0 })],
                "cut {cut}"
            );
        }
        assert_eq!(items(&[]).count(), 0);
    }
}
