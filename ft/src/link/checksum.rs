//! The Internet checksum (RFC 1071): the 16-bit one's-complement of the one's-complement sum of
//! all 16-bit big-endian words, used by the IPv4 header (RFC 791) and UDP (RFC 768).

/// Incremental Internet-checksum accumulator (RFC 1071, section 4.1).
///
/// Feed it with [`Checksum::add`] in any split of the data as long as every chunk except the
/// last has an even length, then call [`Checksum::finish`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Checksum {
    sum: u64,
}

impl Checksum {
    /// A fresh accumulator (sum zero).
    #[must_use]
    pub const fn new() -> Self {
        Self { sum: 0 }
    }

    /// Adds `data` as big-endian 16-bit words; an odd trailing byte is padded with zero.
    pub fn add(&mut self, data: &[u8]) {
        let mut chunks = data.chunks_exact(2);
        for w in &mut chunks {
            self.sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [last] = chunks.remainder() {
            self.sum += u64::from(u16::from_be_bytes([*last, 0]));
        }
    }

    /// Adds one 16-bit word.
    pub fn add_u16(&mut self, word: u16) {
        self.sum += u64::from(word);
    }

    /// Folds the carries and returns the one's complement of the sum.
    #[must_use]
    pub fn finish(self) -> u16 {
        let mut s = self.sum;
        while s > 0xFFFF {
            s = (s & 0xFFFF) + (s >> 16);
        }
        // `s` fits in 16 bits after folding.
        !(s as u16)
    }
}

/// The Internet checksum of `data` (RFC 1071). Verifying data that contains its own checksum
/// field yields 0.
#[must_use]
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut c = Checksum::new();
    c.add(data);
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2; checksum = !0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_and_split() {
        let data = [0x12, 0x34, 0x56];
        let mut c = Checksum::new();
        c.add(&data[..2]);
        c.add(&data[2..]);
        assert_eq!(c.finish(), internet_checksum(&data));
        assert_eq!(internet_checksum(&data), !(0x1234u16 + 0x5600));
    }

    #[test]
    fn carries_fold() {
        let data = [0xff; 64];
        assert_eq!(internet_checksum(&data), 0x0000);
        assert_eq!(internet_checksum(&[]), 0xffff);
    }
}
